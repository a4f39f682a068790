/**
 * `v8js_resource_active` without a handle listing per scrape (src/telemetry/active-resources.ts), and the runtime
 * instrumentation minus its listing collector (otel/runtime-instrumentation.ts), pinned to the installed package: the
 * series must come out exactly once, from Beacon's instrument.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AggregationTemporality, MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { RuntimeInstrumentation } from '../../otel/runtime-instrumentation.js';
import { registerActiveResources, ResourceCounts } from '../../src/telemetry/active-resources.js';

/** A reader collected on demand. */
class PullReader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE });
  }
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('ResourceCounts', () => {
  it('lists the handles on the first read, then at most once per max age, after the read that found them stale', async () => {
    let listed = 0;
    let handles = ['TCPSocketWrap', 'TCPSocketWrap', 'Timeout'];
    let now = 0;
    const counts = new ResourceCounts(
      () => {
        listed++;
        return handles;
      },
      15_000,
      () => now,
    );
    assert.deepEqual([...counts.read()], [['TCPSocketWrap', 2], ['Timeout', 1]]);
    assert.equal(listed, 1);

    handles = ['TCPSocketWrap', 'FSReqCallback'];
    now = 14_999;
    counts.read();
    await nextTurn();
    assert.equal(listed, 1, 'fresh counts are not recounted');

    now = 15_000;
    // A stale read reports the last counts at once (the scrape never waits for the listing)…
    assert.deepEqual([...counts.read()], [['TCPSocketWrap', 2], ['Timeout', 1]]);
    counts.read();
    assert.equal(listed, 1);
    // …and one recount follows right after it; a type that went away reports 0.
    await nextTurn();
    assert.equal(listed, 2);
    assert.deepEqual([...counts.read()], [['TCPSocketWrap', 1], ['Timeout', 0], ['FSReqCallback', 1]]);
  });
});

describe('RuntimeInstrumentation', () => {
  it('serves the runtime series, and v8js_resource_active once, from Beacon’s instrument', async () => {
    const reader = new PullReader();
    const provider = new MeterProvider({ readers: [reader] });
    const runtime = new RuntimeInstrumentation();
    runtime.setMeterProvider(provider);
    registerActiveResources(provider.getMeter('beacon-process'));
    try {
      const { resourceMetrics } = await reader.collect();
      const names = resourceMetrics.scopeMetrics.flatMap((s) => s.metrics.map((m) => m.descriptor.name));
      assert.ok(names.includes('nodejs.eventloop.utilization'), names.join(', '));
      assert.ok(names.includes('v8js.memory.heap.used'), names.join(', '));
      assert.equal(names.filter((n) => n === 'v8js.resource.active').length, 1, names.join(', '));
      const scope = resourceMetrics.scopeMetrics.find((s) => s.metrics.some((m) => m.descriptor.name === 'v8js.resource.active'));
      assert.equal(scope?.scope.name, 'beacon-process');
      const points = scope!.metrics.find((m) => m.descriptor.name === 'v8js.resource.active')!.dataPoints;
      assert.ok(points.every((p) => typeof p.attributes['v8js.resource.type'] === 'string' && (p.value as number) >= 0));
    } finally {
      runtime.disable();
      await provider.shutdown();
    }
  });
});
