/**
 * Every PromQL expression of the dashboards, the alert rules and the correlations runs against a real Prometheus that has
 * scraped a real Beacon (child process, telemetry on) under a small workload: each must parse and execute, and the core
 * panels — the ones an operator reads first — must return data.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import Pusher from 'pusher';
import { spawnBeacon, type BeaconProcess } from '../helpers/beacon-process.js';
import { startPrometheus, resultSize, type RunningPrometheus } from '../helpers/prometheus.js';
import { PusherClient } from '../helpers/pusher-js.js';
import { ROOT, expressions, interpolate } from './expressions.js';

/** Panels that must show data after a few clients connect, subscribe, receive HTTP API publishes and one leaves. */
const CORE_PANELS: ReadonlyArray<[dashboard: string, panel: string]> = [
  ['beacon-overview.json', 'Open connections'],
  ['beacon-overview.json', 'Nodes up'],
  ['beacon-overview.json', 'Publishes'],
  ['beacon-overview.json', 'Open connections by node'],
  ['beacon-overview.json', 'Connects and rejections'],
  ['beacon-overview.json', 'Disconnects by reason'],
  ['beacon-overview.json', 'Messages in by kind'],
  ['beacon-overview.json', 'Messages out by kind'],
  ['beacon-overview.json', 'Bandwidth'],
  ['beacon-overview.json', 'Broadcast latency p50 / p95 / p99 by recipients'],
  ['beacon-overview.json', 'Publishes by source'],
  ['beacon-overview.json', 'HTTP API requests by status'],
  ['beacon-overview.json', 'HTTP API latency p95'],
  ['beacon-overview.json', 'Event loop delay p99'],
  ['beacon-overview.json', 'Event loop utilisation'],
  ['beacon-overview.json', 'CPU'],
  ['beacon-overview.json', 'Memory'],
  ['beacon-overview.json', 'Open file descriptors'],
  ['beacon-overview.json', 'Targets up'],
  ['beacon-overview.json', 'Scrape duration'],
  ['beacon-channels.json', 'Channels held (sum over nodes)'],
  ['beacon-channels.json', 'Subscriptions'],
  ['beacon-channels.json', 'Channels held by type (sum over nodes)'],
  ['beacon-channels.json', 'Subscriptions by type'],
  ['beacon-channels.json', 'Subscription attempts by result'],
  ['beacon-channels.json', 'Recipients per publish p50 / p95'],
  ['beacon-channels.json', 'Broadcast latency p95 by channel type'],
  ['beacon-channels.json', 'Cluster engine up'],
];

/** Grafana would use max(4 × scrape interval, …); 1s scrapes here, so a short window sees several samples. */
const RATE_INTERVAL = '15s';

let beacon: BeaconProcess;
let prometheus: RunningPrometheus;
const clients: InstanceType<typeof PusherClient>[] = [];

before(async () => {
  beacon = await spawnBeacon();
  prometheus = await startPrometheus({
    scrape: [{ job: 'beacon', targets: [`127.0.0.1:${beacon.metricsPort}`] }],
    scrapeInterval: '1s',
    ruleFiles: [`${ROOT}prometheus/alerts.yml`],
  });
  await runWorkload();
});

after(async () => {
  for (const c of clients) c.disconnect();
  await prometheus?.stop();
  await beacon?.stop();
});

/** Three clients on one public channel, five HTTP API publishes each fanned out to all, then one client leaves. */
async function runWorkload(): Promise<void> {
  const received: Promise<void>[] = [];
  for (let i = 0; i < 3; i++) {
    const client = new PusherClient('app-key', {
      cluster: 'mt1',
      wsHost: '127.0.0.1',
      wsPort: beacon.port,
      forceTLS: false,
      enabledTransports: ['ws'],
      disableStats: true,
    });
    clients.push(client);
    const channel = client.subscribe('prices');
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('subscription timed out')), 10_000);
      channel.bind('pusher:subscription_succeeded', () => {
        clearTimeout(timer);
        resolve();
      });
    });
    received.push(
      new Promise<void>((resolve) => {
        let n = 0;
        channel.bind('tick', () => {
          if (++n === 5) resolve();
        });
      }),
    );
  }
  const sdk = new Pusher({ appId: 'app-id', key: 'app-key', secret: 'app-secret', host: '127.0.0.1', port: String(beacon.port), useTLS: false });
  for (let i = 0; i < 5; i++) {
    const res = await sdk.trigger('prices', 'tick', { i });
    assert.equal(res.status, 200);
  }
  await withTimeout(Promise.all(received), 10_000, 'clients did not receive every publish');
  const leaving = clients.pop();
  leaving?.disconnect();
  // Scraped at least once after the workload: the close is visible in Prometheus.
  await prometheus.waitFor('sum(websocket_connections_closed_total{job="beacon"}) > 0', { timeoutMs: 20_000 });
  await prometheus.waitFor('sum(websocket_connections{job="beacon"}) == 2', { timeoutMs: 20_000 });
}

async function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)));
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

test('every PromQL expression of the dashboards, alerts and correlations parses and executes', async () => {
  const all = expressions('promql');
  assert.ok(all.length > 50, `only ${all.length} PromQL expressions found`);
  const failures: string[] = [];
  for (const e of all) {
    await prometheus.query(interpolate(e.expr, RATE_INTERVAL)).catch((err: Error) => failures.push(`${e.where}: ${err.message}`));
  }
  assert.deepEqual(failures, []);
});

test('the core panels return data', async () => {
  const all = expressions('promql');
  const empty: string[] = [];
  for (const [dashboard, panel] of CORE_PANELS) {
    const queries = all.filter((e) => e.dashboard === dashboard && e.panel === panel);
    assert.ok(queries.length > 0, `no panel "${panel}" in ${dashboard}`);
    // A rate needs two samples inside its window: poll (bounded) until any of the panel's queries has a series.
    const deadline = Date.now() + 20_000;
    let size = 0;
    while (size === 0 && Date.now() < deadline) {
      for (const q of queries) size += resultSize(await prometheus.query(interpolate(q.expr, RATE_INTERVAL)));
      if (size === 0) await new Promise((resolve) => setTimeout(resolve, 250));
    }
    if (size === 0) empty.push(`${dashboard} › ${panel}`);
  }
  assert.deepEqual(empty, []);
});

test('the alert rules load into Prometheus and none fires on a healthy Beacon', async () => {
  const res = await fetch(`${prometheus.url}/api/v1/rules?type=alert`);
  const body = (await res.json()) as { data: { groups: Array<{ rules: Array<{ name: string; state: string; health: string; lastError?: string }> }> } };
  const rules = body.data.groups.flatMap((g) => g.rules);
  assert.equal(rules.length, expressions('promql').filter((e) => e.where.startsWith('alerts.yml')).length);
  const problems = rules.filter((r) => r.health === 'err' || r.state === 'firing').map((r) => `${r.name}: ${r.state} ${r.lastError ?? ''}`);
  assert.deepEqual(problems, []);
});
