/**
 * A real Prometheus (Debian's `prometheus`, started on a free loopback port with a generated config) scrapes a running
 * Beacon after a workload that exercises the contract; its HTTP API then returns every docs/telemetry.md metric with the contract's
 * type and labels. `promtool check metrics` accepts the exposition.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import Pusher from 'pusher';
import WebSocket from 'ws';
import { RawClient } from '../helpers/raw-client.js';
import { spawnBeacon, type BeaconProcess } from '../helpers/beacon-process.js';
import { readContract } from '../helpers/exposition.js';
import { startLokiReceiver, type LokiReceiver } from '../helpers/loki-receiver.js';
import { pollUntil, startPrometheus, type RunningPrometheus } from '../helpers/prometheus.js';

/**
 * Recorded only by events this workload cannot cause cheaply on one node: a slow consumer overflowing its send buffer
 * (test/e2e/slow-consumer.test.ts covers it) and a completed drain (the process is gone after it). A publish dropped by a
 * Redis that is down (test/adapters/redis-adapter.test.ts) is not caused either, but its counter is exported from start.
 */
/** Labels a series of the metric may lack: `app_id` of a refused upgrade whose key named no app. */
const OPTIONAL_LABELS: Record<string, string[]> = { websocket_connections_rejected_total: ['app_id'] };

const NOT_EXERCISED = new Set(['websocket_backpressure_events_total', 'websocket_shutdown_duration_seconds']);

interface MetadataEntry {
  type: string;
  help: string;
}

/** A frame-level client (test/helpers/raw-client.ts) in the shape these tests use. */
async function openClient(port: number): Promise<{ ws: WebSocket; socketId: string; next: (event: string) => Promise<void> }> {
  const { client, socketId } = await RawClient.established(port);
  // Answer the server's heartbeat so websocket_ping_rtt_seconds gets a sample.
  client.answerPings();
  return { ws: client.ws, socketId, next: async (event) => void (await client.next(event, 5000)) };
}

describe('a real Prometheus scrapes Beacon', () => {
  let beacon: BeaconProcess;
  let prometheus: RunningPrometheus;
  let webhooks: Server;
  let webhookCount = 0;
  // Logs are shipped to a stand-in Loki, so the loki_lines_* counters are exposed too.
  let loki: LokiReceiver;

  before(async () => {
    webhooks = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        webhookCount++;
        res.end('ok');
      });
    });
    await new Promise<void>((resolve) => webhooks.listen(0, '127.0.0.1', resolve));
    const webhookPort = (webhooks.address() as AddressInfo).port;
    loki = await startLokiReceiver('ok');
    beacon = await spawnBeacon({
      LOKI_URL: loki.url,
      APP_ENABLE_CLIENT_EVENTS: 'true',
      APP_CLIENT_EVENTS_PER_SECOND: '1',
      APP_WEBHOOK_URL: `http://127.0.0.1:${webhookPort}/webhooks`,
      ACTIVITY_TIMEOUT: '1',
      // Two 1500-byte cache events do not both fit: websocket_cache_evictions_total counts one.
      CACHE_MAX_BYTES: '2048',
    });
    prometheus = await startPrometheus({
      scrape: [{ job: 'beacon', targets: [`127.0.0.1:${beacon.metricsPort}`] }],
      scrapeInterval: '1s',
    });

    const sdk = new Pusher({ appId: 'app-id', key: 'app-key', secret: 'app-secret', host: '127.0.0.1', port: String(beacon.port), useTLS: false });
    const a = await openClient(beacon.port);
    const b = await openClient(beacon.port);
    const auth = sdk.authorizeChannel(a.socketId, 'presence-room', { user_id: 'u-a', user_info: {} });
    a.ws.send(JSON.stringify({ event: 'pusher:subscribe', data: { channel: 'presence-room', ...auth } }));
    await a.next('pusher_internal:subscription_succeeded');
    b.ws.send(JSON.stringify({ event: 'pusher:subscribe', data: { channel: 'news' } }));
    await b.next('pusher_internal:subscription_succeeded');
    await sdk.trigger('news', 'update', { n: 1 });
    await b.next('update');
    await sdk.trigger('cache-a', 'e', { pad: 'x'.repeat(1500) });
    await sdk.trigger('cache-b', 'e', { pad: 'x'.repeat(1500) });
    // Two client events in the same second at 1/s: the second is rate limited.
    a.ws.send(JSON.stringify({ event: 'client-x', channel: 'presence-room', data: {} }));
    a.ws.send(JSON.stringify({ event: 'client-x', channel: 'presence-room', data: {} }));
    a.ws.send('not json');
    await a.next('pusher:error');
    // Cross-node style queries (adapter requests) and a badly signed API call.
    await sdk.get({ path: '/channels' });
    const wrong = new Pusher({ appId: 'app-id', key: 'app-key', secret: 'wrong', host: '127.0.0.1', port: String(beacon.port), useTLS: false });
    await wrong.trigger('news', 'update', {}).catch(() => undefined);
    // Rejected upgrades (a key that names no app; one that does, with a protocol it does not speak) and a closed connection.
    for (const path of ['/app/nope?protocol=7', '/app/app-key?protocol=99']) {
      const bad = new WebSocket(`ws://127.0.0.1:${beacon.port}${path}`);
      bad.on('error', () => {});
      await new Promise((resolve) => bad.on('close', resolve));
    }
    b.ws.close();
    // Activity timeout 1 s: the server pings the idle client, which answers (ping RTT); webhooks arrive.
    await pollUntil(async () => webhookCount > 0, 10_000, 50, () => 'a webhook delivery');
    await prometheus.waitFor('websocket_ping_rtt_seconds_count > 0', { timeoutMs: 20_000 });
    await prometheus.waitFor('websocket_connections_closed_total > 0', { timeoutMs: 10_000 });
    await prometheus.waitFor('websocket_connections_rejected_total{app_id="app-id"} > 0', { timeoutMs: 10_000 });
    await prometheus.waitFor('websocket_webhooks_total > 0', { timeoutMs: 10_000 });
    a.ws.close();
  });

  after(async () => {
    await prometheus?.stop();
    await beacon?.stop();
    await loki?.close();
    await new Promise<void>((resolve) => (webhooks ? webhooks.close(() => resolve()) : resolve()));
  });

  it('has every contract metric, with the contract type and labels', async () => {
    const metadataRes = await fetch(`${prometheus.url}/api/v1/metadata`);
    const metadata = ((await metadataRes.json()) as { data: Record<string, MetadataEntry[]> }).data;
    const missing: string[] = [];
    for (const metric of readContract()) {
      if (NOT_EXERCISED.has(metric.name)) continue;
      // Prometheus keeps metadata under the family name; counters are exposed with their _total family name by OTel.
      const entry = metadata[metric.name] ?? metadata[metric.name.replace(/_total$/, '')];
      if (entry === undefined) {
        missing.push(metric.name);
        continue;
      }
      assert.equal(entry[0]?.type, metric.type, `${metric.name} type`);
      const sample = metric.type === 'histogram' ? `${metric.name}_count` : metric.name;
      const series = await prometheus.query(sample);
      assert.equal(series.resultType, 'vector');
      const result = series.result as Array<{ metric: Record<string, string> }>;
      assert.ok(result.length > 0, `${sample} has series`);
      for (const s of result) {
        const keys = Object.keys(s.metric)
          .filter((k) => !['__name__', 'job', 'instance'].includes(k))
          .sort();
        // A label the contract says a series may lack (docs/telemetry.md) is left out of the comparison where it is.
        const optional = OPTIONAL_LABELS[metric.name] ?? [];
        assert.deepEqual(keys, metric.labels.filter((l) => keys.includes(l) || !optional.includes(l)), `${sample} labels`);
      }
    }
    assert.deepEqual(missing, [], 'contract metrics Prometheus never saw');
  });

  it('scrapes the target healthily, without otel_scope labels', async () => {
    const up = await prometheus.query('up{job="beacon"}');
    assert.equal((up.result as Array<{ value: [number, string] }>)[0]?.value[1], '1');
    const scoped = await prometheus.query('count({job="beacon", otel_scope_name!=""})');
    assert.equal((scoped.result as unknown[]).length, 0);
    const fds = await prometheus.query('process_open_fds{job="beacon"}');
    assert.ok(Number((fds.result as Array<{ value: [number, string] }>)[0]?.value[1]) > 0);
  });

  it('passes promtool check metrics', async () => {
    const text = await (await fetch(`http://127.0.0.1:${beacon.metricsPort}/metrics`)).text();
    const promtool = spawn('promtool', ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    promtool.stdout.on('data', (c: Buffer) => (out += c.toString()));
    promtool.stderr.on('data', (c: Buffer) => (out += c.toString()));
    promtool.stdin.end(text);
    const code = await new Promise<number | null>((resolve) => promtool.on('exit', resolve));
    assert.equal(code, 0, out);
    assert.equal(out.trim(), '', `promtool findings:\n${out}`);
  });
});
