/**
 * The metric tables of docs/telemetry.md are the public interface: after every recorder of `createMetrics` ran once, `/metrics`
 * (a real PrometheusExporter configured as otel/sdk.ts configures it) shows exactly those names, with the listed type and
 * label keys, no `otel_scope_*` label, and buckets in the unit of each histogram.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { MetricTables } from '../../src/telemetry/histogram-table.js';
import { createMetrics, type GaugeSources } from '../../src/telemetry/metrics.js';
import { WEBHOOK_EVENT_NAMES } from '../../src/webhooks/webhook-event.js';
import { CONTRACT_PATH, labelKeys, parseExposition, readContract, sumOf, type Family } from '../helpers/exposition.js';
import { freePort } from '../helpers/free-port.js';

/** In the contract with the HTTP semantic-convention label names; declared in metrics.ts too. */
const HTTP_DURATION = 'http_server_request_duration_seconds';

const sources: GaugeSources = {
  connectionsByApp: () => [['app-1', 3]],
  channelStats: () => [{ appId: 'app-1', channelType: 'presence', channels: 2, subscriptions: 5 }],
  presenceMembersByApp: () => [['app-1', 4]],
  sendBufferBytes: () => 1024,
  adapterStatus: () => ({ adapter: 'local', up: true, pending: 2, congested: false }),
  logShipping: () => ({ shipped: 42, dropped: { spool_full: 1, rejected: 2, shutdown: 3, worker_failed: 4 } }),
  stdoutDropped: () => ({ closed: 4, write_error: 5, stalled: 6 }),
  webhookBacklog: () => [{ appId: 'app-1', webhook: 0, queued: 6, inFlight: 7, bytes: 9 }],
  webhookHeld: () => [['app-1', 8]],
};

describe('metrics contract (docs/telemetry.md)', () => {
  let provider: MeterProvider;
  let families: Map<string, Family>;
  let exposition: string;

  before(async () => {
    const port = await freePort();
    const tables = new MetricTables();
    const exporter = new PrometheusExporter({
      host: '127.0.0.1',
      port,
      withoutScopeInfo: true,
      withoutTargetInfo: true,
      metricProducers: [tables],
    });
    await exporter.startServer();
    provider = new MeterProvider({ readers: [exporter] });
    const m = createMetrics(sources, { version: '9.9.9', meter: provider.getMeter('beacon', '9.9.9'), tables });
    m.connectionOpened('app-1');
    m.connectionClosed('app-1', 'client_close', 12.5);
    m.connectionRejected('unknown_app');
    m.connectionRejected('over_quota', 'app-1');
    m.messageReceived('app-1', 'subscribe', 80);
    m.messagesSent('app-1', 'channel_event', 120, 3);
    m.messageProcessed('subscribe', 0.0004);
    m.messageError('app-1', 'invalid_json');
    m.eventPublished('app-1', 'http_api');
    m.broadcast('public', 3, 0.002);
    // A fan-out that wrote no frame (the sender the only subscriber, or every frame dropped).
    m.broadcast('private', 0, 0.003);
    m.subscription('app-1', 'private', 'ok');
    m.rateLimited('app-1', 'client_events');
    m.backpressure('app-1', 'dropped');
    m.pingRtt(0.012);
    m.apiAuthFailure('bad_signature');
    m.apiRefused('invalid_json');
    m.httpRequest('POST', '/apps/:appId/events', 200, 0.004);
    m.httpMalformed('header_overflow');
    m.webhook('channel_occupied', 'ok', 'app-1', 0);
    m.webhook('subscription_count', 'ok', 'app-1', 1);
    m.adapterMessage('published');
    m.adapterRequest('channels', 0.003);
    m.shutdownDuration(1.5);
    m.adapterDropped('down');
    m.adapterDropped('gap', 3);
    m.cacheEvicted('app-1');
    const response = await fetch(`http://127.0.0.1:${port}/metrics`);
    assert.equal(response.status, 200);
    exposition = await response.text();
    families = parseExposition(exposition);
  });
  after(async () => {
    await provider.shutdown();
  });

  const contract = readContract();

  it('reads every table of Beacon\'s own metrics from docs/telemetry.md', () => {
    // 41 rows, one of which names two counters.
    assert.equal(contract.length, 42);
    assert.ok(contract.some((c) => c.name === HTTP_DURATION && c.type === 'histogram'));
    assert.ok(contract.some((c) => c.name === 'websocket_connections' && c.type === 'gauge'));
    assert.ok(contract.some((c) => c.name === 'websocket_sent_bytes_total'));
  });

  it('exposes exactly the contract names', () => {
    const expected = contract.map((c) => c.name).sort();
    assert.deepEqual([...families.keys()].sort(), expected);
  });

  for (const metric of contract) {
    it(`${metric.name} is a ${metric.type} labelled {${metric.labels.join(', ')}}`, () => {
      const family = families.get(metric.name);
      assert.ok(family, `${metric.name} is exposed`);
      assert.equal(family.type, metric.type);
      assert.notEqual(family.help, '', 'has a HELP text');
      assert.ok(family.samples.length > 0, 'has samples after its recorder ran');
      assert.deepEqual(labelKeys(family), metric.labels);
    });
  }

  it(`${HTTP_DURATION} is a histogram labelled with the HTTP semantic-convention attributes`, () => {
    const family = families.get(HTTP_DURATION);
    assert.ok(family);
    assert.equal(family.type, 'histogram');
    assert.deepEqual(labelKeys(family), ['http_request_method', 'http_response_status_code', 'http_route']);
  });

  it('lists every value of websocket_webhooks_total{event}: the webhook event names, and only those', () => {
    // The label comes from a fixed set (webhooks/webhook-event.ts); the contract names each value a query may select.
    const row = readFileSync(CONTRACT_PATH, 'utf8')
      .split('\n')
      .find((line) => line.startsWith('| `websocket_webhooks_total` |'));
    const listed = /`event` is the webhook event's name, one of ([^;(]+)/.exec(row ?? '')?.[1];
    assert.ok(listed, 'the row names the values of `event`');
    assert.deepEqual([...listed.matchAll(/`([a-z_]+)`/g)].map((m) => m[1]), [...WEBHOOK_EVENT_NAMES]);
    const family = families.get('websocket_webhooks_total');
    assert.ok(family?.samples.some((s) => s.labels.event === 'subscription_count' && s.labels.webhook === '1'));
  });

  it('has no otel_scope_* label', () => {
    assert.doesNotMatch(exposition, /otel_scope_/);
  });

  it('uses seconds-scale buckets for durations and byte buckets for sizes', () => {
    const les = (name: string): number[] => {
      const family = families.get(name);
      assert.ok(family);
      return [...new Set(family.samples.filter((s) => s.name.endsWith('_bucket')).map((s) => Number(s.labels.le)))];
    };
    for (const name of [
      'websocket_message_processing_duration_seconds',
      'websocket_broadcast_duration_seconds',
      'websocket_ping_rtt_seconds',
      HTTP_DURATION,
    ]) {
      const bounds = les(name).filter(Number.isFinite);
      assert.ok(Math.min(...bounds) <= 0.001, `${name} resolves milliseconds`);
      assert.ok(Math.max(...bounds) <= 10, `${name} tops out at seconds, not the ms-scale default`);
    }
    const sizes = les('websocket_message_size_bytes').filter(Number.isFinite);
    assert.ok(sizes.includes(1024) && Math.max(...sizes) >= 1_000_000);
    const lifetime = les('websocket_connection_duration_seconds').filter(Number.isFinite);
    assert.ok(Math.max(...lifetime) >= 3600, 'connection lifetimes reach hours');
  });

  it('records what the recorders were given', () => {
    const sample = (name: string, labels: Record<string, string>): number | undefined =>
      [...families.values()]
        .flatMap((f) => f.samples)
        .find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
    assert.equal(sample('websocket_connections', { app_id: 'app-1' }), 3);
    assert.equal(sample('websocket_messages_sent_total', { app_id: 'app-1', kind: 'channel_event' }), 3);
    assert.equal(sample('websocket_sent_bytes_total', { app_id: 'app-1' }), 360);
    assert.equal(sample('websocket_broadcast_duration_seconds_count', { channel_type: 'public', recipients: '2-10' }), 1);
    // No frame written, so no "publish → last frame written" duration; the fan-out's size, 0, is recorded.
    assert.equal(sumOf(families, 'websocket_broadcast_duration_seconds_count', { channel_type: 'private' }), 0);
    assert.equal(sample('websocket_broadcast_recipients_count', { channel_type: 'private' }), 1);
    assert.equal(sample('websocket_broadcast_recipients_sum', { channel_type: 'private' }), 0);
    assert.equal(sample('websocket_shutdown_duration_seconds', {}), 1.5);
    // The tenant refused, once the key named one; none for a key that named no app.
    assert.equal(sample('websocket_connections_rejected_total', { reason: 'over_quota', app_id: 'app-1' }), 1);
    assert.equal(
      [...families.values()].flatMap((f) => f.samples).find((x) => x.name === 'websocket_connections_rejected_total' && x.labels.reason === 'unknown_app')?.labels.app_id,
      undefined,
    );
    assert.equal(sample('websocket_build_info', { version: '9.9.9', node_version: process.version }), 1);
    assert.equal(sample('websocket_adapter_up', { adapter: 'local' }), 1);
    assert.equal(sample('websocket_adapter_pending_changes', { adapter: 'local' }), 2);
    assert.equal(sample('websocket_webhook_pending_events', { app_id: 'app-1', webhook: '0', state: 'queued' }), 6);
    assert.equal(sample('websocket_webhook_pending_events', { app_id: 'app-1', webhook: '0', state: 'in_flight' }), 7);
    assert.equal(sample('websocket_webhook_pending_bytes', { app_id: 'app-1', webhook: '0' }), 9);
    assert.equal(sample('websocket_webhook_held_events', { app_id: 'app-1' }), 8);
    assert.equal(sample('websocket_adapter_dropped_total', { reason: 'down' }), 1);
    assert.equal(sample('websocket_adapter_dropped_total', { reason: 'gap' }), 3, 'counted by the number missed');
    for (const reason of ['error', 'timeout', 'backlog']) {
      assert.equal(sample('websocket_adapter_dropped_total', { reason }), 0, `${reason} exported from start, at 0`);
    }
    assert.equal(sample('loki_lines_shipped_total', {}), 42);
    assert.equal(sample('loki_lines_dropped_total', { reason: 'rejected' }), 2);
    assert.equal(sample('loki_lines_dropped_total', { reason: 'shutdown' }), 3);
    assert.equal(sample('loki_lines_dropped_total', { reason: 'worker_failed' }), 4);
    assert.equal(sample('stdout_lines_dropped_total', { reason: 'closed' }), 4);
    assert.equal(sample('stdout_lines_dropped_total', { reason: 'write_error' }), 5);
    assert.equal(sample('stdout_lines_dropped_total', { reason: 'stalled' }), 6);
    assert.equal(sample('websocket_api_refusals_total', { reason: 'invalid_json' }), 1);
    assert.equal(sample('websocket_api_refusals_total', { reason: 'data_too_large' }), 0, 'exported from start, at 0');
  });
});
