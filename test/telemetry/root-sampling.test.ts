/**
 * Root spans drawn before the SDK (src/telemetry/root-sampling.ts, otel/presampled-root-sampler.ts): under
 * `parentbased_traceidratio` a new trace the draw does not keep never reaches the SDK (fresh valid ids, not sampled,
 * nothing exported, no sampler call), one it keeps is recorded by the SDK on the draw's word, a caller's `traceparent` is
 * followed rather than drawn, and the draw keeps the configured share. Real SDK (BasicTracerProvider) in this process.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { propagation, trace, type Attributes, type Context, type Link, type SpanKind } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  RandomIdGenerator,
  SimpleSpanProcessor,
  type Sampler,
  type SamplingResult,
} from '@opentelemetry/sdk-trace-base';
import { presampledParentBasedSampler } from '../../otel/presampled-root-sampler.js';
import { sampleRootsBeforeTheSdk } from '../../src/telemetry/root-sampling.js';
import { contextOf, startConnectSpan, startHttpServerSpan, startProcessSpan, startPublishSpan } from '../../src/telemetry/tracing.js';

/** The URL of a publish, as the API passes it. */
const EVENTS_URL = { scheme: 'http', path: '/apps/app-id/events' };

/** Beacon's sampler for one ratio (swappable: the API keeps the first provider's tracer), counting the SDK's calls. */
class CountingSampler implements Sampler {
  calls = 0;
  inner: Sampler = presampledParentBasedSampler(1);
  shouldSample(context: Context, traceId: string, name: string, kind: SpanKind, attributes: Attributes, links: Link[]): SamplingResult {
    this.calls++;
    return this.inner.shouldSample(context, traceId, name, kind, attributes, links);
  }
  toString(): string {
    return 'Counting';
  }
}

const ids = new RandomIdGenerator();
const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT = '00f067aa0ba902b7';

describe('root spans drawn before the SDK', () => {
  const exporter = new InMemorySpanExporter();
  const sampler = new CountingSampler();
  const provider = new BasicTracerProvider({ sampler, spanProcessors: [new SimpleSpanProcessor(exporter)] });
  /** Beacon's sampler at `ratio`, and the draw registered with `random`. */
  const configure = (ratio: number, random: () => number): void => {
    sampler.inner = presampledParentBasedSampler(ratio);
    sampleRootsBeforeTheSdk({ ratio, ids, random });
  };
  before(() => {
    trace.setGlobalTracerProvider(provider);
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  });
  afterEach(() => {
    sampleRootsBeforeTheSdk(undefined);
    exporter.reset();
  });
  after(async () => {
    await provider.shutdown();
    trace.disable();
    propagation.disable();
  });

  it('a root the draw does not keep skips the SDK: fresh valid ids, not sampled, nothing exported; its children too', () => {
    configure(0.05, () => 0.5);
    const calls = sampler.calls;
    const roots = [
      startHttpServerSpan('POST', '/apps/:appId/events', {}, EVENTS_URL),
      startProcessSpan('subscribe', 'app', 'session', undefined, undefined),
    ];
    const child = startPublishSpan('public', 'c', 'app', 'e', 10, contextOf(roots[0]!));
    for (const span of roots) {
      const ctx = span.spanContext();
      assert.equal(span.isRecording(), false);
      assert.equal(trace.isSpanContextValid(ctx), true, 'fresh ids: their children and log lines read them');
      assert.equal(ctx.traceFlags, 0);
    }
    assert.equal(new Set(roots.map((s) => s.spanContext().traceId)).size, 2, 'a new trace id each');
    assert.equal(child.isRecording(), false);
    assert.equal(child.spanContext().traceId, roots[0]!.spanContext().traceId);
    // A connect span's context is read only when it records (links of `process` spans): not kept, it gets no ids.
    const connect = startConnectSpan('app', 'session', '1.2', contextOf(trace.wrapSpanContext({ traceId: '0'.repeat(32), spanId: '0'.repeat(16), traceFlags: 0 })));
    assert.equal(connect.isRecording(), false);
    assert.equal(trace.isSpanContextValid(connect.spanContext()), false);
    for (const span of [...roots, child, connect]) span.end();
    assert.equal(sampler.calls, calls, 'the SDK was not asked');
    assert.equal(exporter.getFinishedSpans().length, 0);
  });

  it('a root the draw keeps is recorded on its word, where the ratio sampler alone would drop it', () => {
    // At this ratio the SDK's trace-id comparison keeps ~1 new trace in a billion.
    const ratio = 1e-9;
    configure(ratio, () => 0);
    const kept = Array.from({ length: 20 }, () => startHttpServerSpan('POST', '/apps/:appId/events', {}, EVENTS_URL));
    for (const span of kept) {
      assert.equal(span.isRecording(), true);
      assert.equal(span.spanContext().traceFlags, 1);
      span.end();
    }
    assert.equal(exporter.getFinishedSpans().length, 20);
    const child = startPublishSpan('public', 'c', 'app', 'e', 10, contextOf(kept[0]!));
    assert.equal(child.isRecording(), true, 'the kept trace is kept whole');
    child.end();

    // Without the draw, the same sampler decides by the trace id: nothing is kept.
    exporter.reset();
    sampleRootsBeforeTheSdk(undefined);
    for (let i = 0; i < 20; i++) startHttpServerSpan('POST', '/apps/:appId/events', {}, EVENTS_URL).end();
    assert.equal(exporter.getFinishedSpans().length, 0);
  });

  it('keeps the configured share: a draw below the ratio keeps, one at or above it does not', () => {
    let k = 0;
    configure(0.25, () => (k++ % 100) / 100);
    for (let i = 0; i < 100; i++) startProcessSpan('subscribe', 'app', 'session', undefined, undefined).end();
    assert.equal(exporter.getFinishedSpans().length, 25);
    configure(0, () => 0);
    for (let i = 0; i < 10; i++) startProcessSpan('subscribe', 'app', 'session', undefined, undefined).end();
    configure(1, () => 0.999_999);
    for (let i = 0; i < 10; i++) startProcessSpan('subscribe', 'app', 'session', undefined, undefined).end();
    assert.equal(exporter.getFinishedSpans().length, 35, 'ratio 0 keeps none, ratio 1 keeps all');
  });

  it('a caller’s traceparent is followed, not drawn', () => {
    configure(0.5, () => 0);
    const notSampled = startHttpServerSpan('POST', '/apps/:appId/events', { traceparent: `00-${TRACE}-${PARENT}-00` }, EVENTS_URL);
    assert.equal(notSampled.isRecording(), false);
    configure(0.5, () => 0.9);
    const sampled = startHttpServerSpan('POST', '/apps/:appId/events', { traceparent: `00-${TRACE}-${PARENT}-01` }, EVENTS_URL);
    assert.equal(sampled.isRecording(), true);
    assert.equal(sampled.spanContext().traceId, TRACE);
    notSampled.end();
    sampled.end();
  });
});
