/**
 * The counters of rare events are exported at 0 from start, per enabled app (the first SEEDED_APPS_MAX): a series that
 * appears with its first event has no sample before it, so `increase` / `rate` — every dashboard panel and alert — never
 * count that event. A probe with a real Prometheus found "Disconnects by reason" with no `server_shutdown` series after a
 * drain's 4200s and `pong_timeout` at 0 after three, and a documented query reading 2 of 4 slow consumers.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SEEDED_APPS_MAX } from '../../src/telemetry/metrics.js';
import { spawnBeacon } from '../helpers/beacon-process.js';
import { parseExposition, type Family } from '../helpers/exposition.js';
import { exportedMetrics } from '../helpers/exported-metrics.js';

/** The samples of `name` whose labels include `match`, as `value` strings. */
function values(families: Map<string, Family>, name: string, match: Record<string, string>): number[] {
  const samples = families.get(name)?.samples ?? [];
  return samples.filter((s) => Object.entries(match).every(([k, v]) => s.labels[k] === v)).map((s) => s.value);
}

/** A series of each seeded counter, one rare label value each, for `appId`. */
const RARE: [string, Record<string, string>][] = [
  ['websocket_connections_closed_total', { reason: 'pong_timeout' }],
  ['websocket_connections_closed_total', { reason: 'server_shutdown' }],
  ['websocket_connections_rejected_total', { reason: 'over_capacity' }],
  ['websocket_message_errors_total', { reason: 'invalid_utf8' }],
  ['websocket_subscriptions_total', { channel_type: 'presence', result: 'unavailable' }],
  ['websocket_rate_limit_triggered_total', { scope: 'frames' }],
  ['websocket_backpressure_events_total', { action: 'disconnected' }],
  // An eviction from the cache: on the Redis engine only when Redis refused a write (a probe found no series until then).
  ['websocket_cache_evictions_total', {}],
];

test('every configured app has its rare-event series at 0 from start, up to SEEDED_APPS_MAX apps', async () => {
  const apps = Array.from({ length: SEEDED_APPS_MAX + 5 }, (_, i) => `app-${i}`);
  const observed = await exportedMetrics(undefined, apps);
  try {
    const families = await observed.scrape();
    for (const [name, labels] of RARE) {
      assert.deepEqual(values(families, name, { ...labels, app_id: 'app-0' }), [0], `${name} ${JSON.stringify(labels)}`);
      assert.deepEqual(values(families, name, { ...labels, app_id: `app-${SEEDED_APPS_MAX - 1}` }), [0], name);
      // Past the bound an app's series appear with their first event, as every series did before.
      assert.deepEqual(values(families, name, { ...labels, app_id: `app-${SEEDED_APPS_MAX}` }), [], name);
    }
    // Refusals that name no app, and the API's signing failures, have no app label to seed per app.
    assert.deepEqual(values(families, 'websocket_connections_rejected_total', { reason: 'unknown_app' }), [0]);
    assert.deepEqual(values(families, 'websocket_api_auth_failures_total', { reason: 'expired' }), [0]);
    // 53 series an app (the closes, refusals, frame errors, subscription failures by type and result, limits, slow
    // consumers, cache evictions): zeros every node's Prometheus stores, so only the first apps' are seeded.
    const perApp = [...families.values()].flatMap((f) => f.samples).filter((s) => s.labels.app_id === 'app-1').length;
    assert.equal(perApp, 53);
    assert.deepEqual(values(families, 'websocket_subscriptions_total', { app_id: 'app-1', result: 'ok' }), []);
  } finally {
    await observed.close();
  }
});

test("a disabled app's refusals are exported at 0 from start: its first refusal counted too, nothing else of it", async () => {
  // A probe: no series until the first refusal, so increase() missed exactly that one.
  const observed = await exportedMetrics(undefined, ['on'], ['off']);
  try {
    const families = await observed.scrape();
    assert.deepEqual(values(families, 'websocket_connections_rejected_total', { reason: 'app_disabled', app_id: 'off' }), [0]);
    const ofDisabled = [...families.values()].flatMap((f) => f.samples).filter((s) => s.labels.app_id === 'off');
    assert.equal(ofDisabled.length, 1);
  } finally {
    await observed.close();
  }
});

test('a running Beacon exports them for its apps', { timeout: 30_000 }, async () => {
  const beacon = await spawnBeacon();
  try {
    const families = parseExposition(await (await fetch(`http://127.0.0.1:${beacon.metricsPort}/metrics`)).text());
    for (const [name, labels] of RARE) {
      assert.deepEqual(values(families, name, { ...labels, app_id: 'app-id' }), [0], `${name} ${JSON.stringify(labels)}`);
    }
  } finally {
    await beacon.stop();
  }
});
