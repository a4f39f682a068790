/**
 * Beacon's histograms are kept outside the SDK (src/telemetry/histogram-table.ts) and must render on /metrics exactly as
 * the SDK's own explicit-bucket histogram renders the same values: a real PrometheusExporter lists the producer, the same
 * values (on boundaries, between them, above the last, zero, NaN, negative) go to both, and the two families' samples must
 * be equal line for line once the name is swapped.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { CounterTable } from '../../src/telemetry/counter-table.js';
import { MetricTables } from '../../src/telemetry/histogram-table.js';
import { freePort } from '../helpers/prometheus.js';

const BOUNDARIES = [0.001, 0.01, 0.1, 1, 10];
const VALUES = [0, 0.0005, 0.001, 0.0011, 0.01, 0.05, 0.1, 1, 3.5, 10, 10.0001, 250, Number.NaN, -1];

/** The sample lines of one family (`name`, `name_bucket`, …), with the family name replaced by `as`. */
function samples(exposition: string, name: string, as: string): string[] {
  return exposition
    .split('\n')
    .filter((line) => line.startsWith(`${name}_`) || line.startsWith(`${name}{`))
    .map((line) => as + line.slice(name.length))
    .sort();
}

describe('histogram table (rendered as the SDK renders its histograms)', () => {
  let provider: MeterProvider;
  let producer: MetricTables;
  let port: number;

  before(async () => {
    port = await freePort();
    producer = new MetricTables();
    const exporter = new PrometheusExporter({
      host: '127.0.0.1',
      port,
      withoutScopeInfo: true,
      withoutTargetInfo: true,
      metricProducers: [producer],
    });
    await exporter.startServer();
    provider = new MeterProvider({ readers: [exporter] });
  });

  after(async () => {
    await provider.shutdown();
  });

  it('has the same buckets, sum and count as the SDK histogram for the same values and label sets', async () => {
    const sdk = provider
      .getMeter('beacon')
      .createHistogram('sdk_latency_seconds', { description: 'd', unit: 's', advice: { explicitBucketBoundaries: BOUNDARIES } });
    const table = producer.histogram(
      { name: 'table_latency_seconds', description: 'd', unit: 's', boundaries: BOUNDARIES },
      (kind, app) => ({ kind, app_id: app }),
    );
    const never = producer.histogram({ name: 'never_recorded_seconds', description: 'd', unit: 's', boundaries: BOUNDARIES }, () => ({}));
    for (const [index, value] of VALUES.entries()) {
      const kind = index % 2 === 0 ? 'even' : 'odd';
      sdk.record(value, { kind, app_id: 'a' });
      table.row(kind, 'a').record(value);
    }

    const exposition = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const fromSdk = samples(exposition, 'sdk_latency_seconds', 'h');
    const fromTable = samples(exposition, 'table_latency_seconds', 'h');
    assert.equal(fromSdk.length, 2 * (BOUNDARIES.length + 1 + 2), exposition); // two label sets: buckets with +Inf, _sum, _count
    assert.deepEqual(fromTable, fromSdk);
    assert.match(exposition, /# TYPE table_latency_seconds histogram/);
    assert.match(exposition, /# UNIT table_latency_seconds s/);
    assert.doesNotMatch(exposition, /never_recorded/, 'a histogram with no row is left out');
    // Its first record creates its row: the series appears from then on, as the SDK's would.
    never.row('').record(0.5);
    const later = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    assert.match(later, /^never_recorded_seconds_count(\{[^}]*\})? 1$/m, later);
  });

  it('renders counters and gauges as the SDK renders its observable ones; one declared again replaces the earlier', async () => {
    const meter = provider.getMeter('beacon');
    const rows: [string, string, number][] = [['ok', 'a', 3], ['failed', 'a', 0], ['ok', 'b', 7.5]];
    meter.createObservableCounter('sdk_events_total', { description: 'd' }).addCallback((result) => {
      for (const [result_, app, value] of rows) result.observe(value, { result: result_, app_id: app });
    });
    meter.createObservableGauge('sdk_open_bytes', { description: 'd', unit: 'By' }).addCallback((result) => {
      for (const [result_, app, value] of rows) result.observe(value, { result: result_, app_id: app });
    });
    const stale = new CounterTable((result, app) => ({ result, app_id: app }));
    stale.row('stale', 'z').value = 99;
    producer.counter({ name: 'table_events_total', description: 'd' }, stale);
    const table = producer.counter({ name: 'table_events_total', description: 'd' }, new CounterTable((result, app) => ({ result, app_id: app })));
    for (const [result, app, value] of rows) table.row(result, app).value = value;
    producer.gauges({ table_open_bytes: { description: 'd', unit: 'By' } }, () => assert.fail('replaced: never read'));
    producer.gauges({ table_open_bytes: { description: 'd', unit: 'By' } }, (observe) => {
      for (const [result, app, value] of rows) observe('table_open_bytes', value, { result, app_id: app });
    });

    const exposition = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    for (const [sdk, ours, kind] of [['sdk_events_total', 'table_events_total', 'counter'], ['sdk_open_bytes', 'table_open_bytes', 'gauge']]) {
      assert.equal(samples(exposition, sdk!, 'm').length, 3, exposition);
      assert.deepEqual(samples(exposition, ours!, 'm'), samples(exposition, sdk!, 'm'));
      assert.match(exposition, new RegExp(`^# TYPE ${ours!} ${kind!}$`, 'm'));
      const type = (name: string) => new RegExp(`^# TYPE ${name} (\\w+)$`, 'm').exec(exposition)?.[1];
      assert.equal(type(ours!), type(sdk!));
    }
    assert.doesNotMatch(exposition, /stale/, 'the table declared first under that name is not reported');
  });

  it('returns the same table for a name declared twice, so two declarations share their rows', () => {
    const descriptor = { name: 'twice_bytes', description: 'd', unit: 'By', boundaries: [1, 2] };
    const first = producer.histogram(descriptor, (direction) => ({ direction }));
    const second = producer.histogram(descriptor, (direction) => ({ direction }));
    assert.equal(second, first);
    first.row('in').record(2);
    second.row('in').record(3);
    assert.deepEqual(first.row('in').counts, [0, 1, 1]);
  });
});
