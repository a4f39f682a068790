/**
 * A span whose parent is not sampled is never recorded under a parent-based sampler, so Beacon does not ask the SDK for it
 * (src/telemetry/tracing.ts): the span returned carries the parent's context, nothing is exported, the sampler is not
 * called. A sampled parent, or no parent, still goes through the SDK. Real SDK (BasicTracerProvider) in this process.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Attributes, Context, Link, SpanKind } from '@opentelemetry/api';
import { AlwaysOnSampler, ParentBasedSampler, type Sampler, type SamplingResult } from '@opentelemetry/sdk-trace-base';
import {
  contextFromTraceparent,
  contextOf,
  samplerFollowsParent,
  startHttpServerSpan,
  startProcessSpan,
  startPublishSpan,
} from '../../src/telemetry/tracing.js';
import { inMemoryTracing } from '../helpers/in-memory-tracing.js';

/** The URL of a publish, as the API passes it. */
const EVENTS_URL = { scheme: 'http', path: '/apps/app-id/events' };

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT = '00f067aa0ba902b7';

/** The SDK's default sampler, counting how often the SDK consults it. */
class CountingSampler implements Sampler {
  calls = 0;
  private readonly inner = new ParentBasedSampler({ root: new AlwaysOnSampler() });
  shouldSample(context: Context, traceId: string, name: string, kind: SpanKind, attributes: Attributes, links: Link[]): SamplingResult {
    this.calls++;
    return this.inner.shouldSample(context, traceId, name, kind, attributes, links);
  }
  toString(): string {
    return 'Counting';
  }
}

describe('spans under a parent that is not sampled', () => {
  const sampler = new CountingSampler();
  const exporter = inMemoryTracing(sampler);

  it('skip the SDK: the parent context is carried, nothing is sampled, recorded or exported', () => {
    const before = sampler.calls;
    const notSampled = contextFromTraceparent(`00-${TRACE}-${PARENT}-00`);
    const publish = startPublishSpan('public', 'c', 'app', 'e', 10, notSampled);
    const http = startHttpServerSpan('POST', '/apps/:appId/events', { traceparent: `00-${TRACE}-${PARENT}-00` }, EVENTS_URL);
    const processed = startProcessSpan('subscribe', 'app', 's', undefined, `00-${TRACE}-${PARENT}-00`);
    for (const span of [publish, http, processed]) {
      assert.equal(span.isRecording(), false);
      assert.deepEqual([span.spanContext().traceId, span.spanContext().spanId, span.spanContext().traceFlags], [TRACE, PARENT, 0]);
      span.end();
    }
    assert.equal(sampler.calls, before, 'the sampler was not consulted');
    assert.equal(exporter.getFinishedSpans().length, 0);
  });

  it('a sampled parent, or none, still goes through the SDK and is recorded', () => {
    const before = sampler.calls;
    const http = startHttpServerSpan('POST', '/apps/:appId/events', { traceparent: `00-${TRACE}-${PARENT}-01` }, EVENTS_URL);
    const publish = startPublishSpan('public', 'c', 'app', 'e', 10, contextOf(http));
    const root = startProcessSpan('subscribe', 'app', 's', undefined, undefined);
    for (const span of [publish, http, root]) {
      assert.equal(span.isRecording(), true);
      span.end();
    }
    assert.equal(publish.spanContext().traceId, TRACE);
    assert.notEqual(publish.spanContext().spanId, http.spanContext().spanId);
    assert.equal(sampler.calls - before, 3);
    assert.equal(exporter.getFinishedSpans().length, 3);
  });
});

it('the shortcut holds only for samplers that follow the parent (the SDK default, parentbased_*, always_off)', () => {
  for (const name of [undefined, '', 'parentbased_always_on', 'parentbased_traceidratio', ' ParentBased_Always_Off ', 'always_off', 'bogus']) {
    assert.equal(samplerFollowsParent(name), true, String(name));
  }
  for (const name of ['always_on', 'traceidratio', ' TraceIdRatio ']) assert.equal(samplerFollowsParent(name), false, name);
});
