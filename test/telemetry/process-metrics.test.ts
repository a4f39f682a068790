/**
 * The process gauges when the process is out of file descriptors (src/telemetry/process-metrics.ts): reading the RSS then
 * throws EMFILE (libuv opens /proc/self/stat), and that lost the whole batch callback — `process_open_fds` froze at its
 * last value, the one gauge an operator's descriptor alert reads, and each scrape logged an error.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AggregationTemporality, MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { registerProcessMetrics } from '../../src/telemetry/process-metrics.js';

/** A reader collected on demand. */
class PullReader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE });
  }
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

test('with no descriptor left to read the RSS, the descriptor count is still observed and the collection has no error', async () => {
  const reader = new PullReader();
  const provider = new MeterProvider({ readers: [reader] });
  registerProcessMetrics(provider.getMeter('process-test'));
  const rss = process.memoryUsage.rss;
  process.memoryUsage.rss = () => {
    throw Object.assign(new Error('EMFILE: too many open files, uv_resident_set_memory'), { code: 'EMFILE' });
  };
  try {
    const { resourceMetrics, errors } = await reader.collect();
    const names = resourceMetrics.scopeMetrics.flatMap((s) => s.metrics.filter((m) => m.dataPoints.length > 0).map((m) => m.descriptor.name));
    assert.deepEqual(errors, []);
    assert.ok(names.includes('process_open_fds'), `observed: ${names.join(', ')}`);
    assert.ok(names.includes('process_cpu_seconds_total'));
    assert.ok(!names.includes('process_resident_memory_bytes'), 'no RSS read: none reported rather than a made-up one');
  } finally {
    process.memoryUsage.rss = rss;
    await provider.shutdown();
  }
});
