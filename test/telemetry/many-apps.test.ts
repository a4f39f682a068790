/**
 * Many apps: a metric's series are bounded by the configured apps (docs/telemetry.md), not by the SDK's default of 2 000
 * series a metric. Past that default the SDK folds the rest into one `otel_metric_overflow="true"` series, and for the
 * observable instruments Beacon reports its counters and gauges with it computes that series wrongly (a review, SDK
 * 2.12): the total read 3 974 of 4 975 counted, and the overflow series climbed by one on every scrape with nothing
 * recorded — a `rate()` out of nothing. 25 subscription series an app: 80 apps were enough.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { CHANNEL_TYPES } from '../../src/protocol/channel-type.js';
import { SUBSCRIPTION_RESULTS } from '../../src/telemetry/metrics.js';
import { spawnBeacon } from '../helpers/beacon-process.js';
import { parseExposition, type Family } from '../helpers/exposition.js';
import { exportedMetrics, NO_GAUGES } from '../helpers/exported-metrics.js';
import { until } from '../helpers/wait.js';

const APPS = Array.from({ length: 120 }, (_, i) => `app-${i}`);

function total(family: Family | undefined): number {
  return (family?.samples ?? []).reduce((sum, s) => sum + s.value, 0);
}

function overflowSeries(families: Map<string, Family>): string[] {
  return [...families.values()].filter((f) => f.samples.some((s) => s.labels.otel_metric_overflow !== undefined)).map((f) => f.name);
}

test('a counter with 3 000 series (120 apps) reads every count, the same on every scrape, without an overflow series', async () => {
  const observed = await exportedMetrics(NO_GAUGES, APPS);
  try {
    let counted = 0;
    for (const [i, appId] of APPS.entries()) {
      for (const type of CHANNEL_TYPES) {
        for (const result of SUBSCRIPTION_RESULTS) {
          const times = 1 + ((i + counted) % 3);
          for (let n = 0; n < times; n++) observed.metrics.subscription(appId, type, result);
          counted += times;
        }
      }
    }
    for (let scrape = 0; scrape < 3; scrape++) {
      const families = await observed.scrape();
      const family = families.get('websocket_subscriptions_total');
      assert.equal(total(family), counted, `scrape ${scrape}`);
      assert.equal(family?.samples.length, APPS.length * CHANNEL_TYPES.length * SUBSCRIPTION_RESULTS.length);
      assert.deepEqual(overflowSeries(families), []);
    }
  } finally {
    await observed.close();
  }
});

test('a gauge with 3 000 series reads every one of them', async () => {
  const stats = APPS.flatMap((appId, i) => CHANNEL_TYPES.map((channelType) => ({ appId, channelType, channels: 1, subscriptions: 1 + (i % 7) })));
  // 120 apps × 5 types is 600 series: five times that many apps' worth, each app id its own.
  const many = [0, 1, 2, 3, 4].flatMap((copy) => stats.map((s) => ({ ...s, appId: `${s.appId}-${copy}` })));
  const observed = await exportedMetrics({ ...NO_GAUGES, channelStats: () => many });
  try {
    const families = await observed.scrape();
    const family = families.get('websocket_subscriptions');
    assert.equal(family?.samples.length, many.length);
    assert.equal(total(family), many.reduce((sum, s) => sum + s.subscriptions, 0));
    assert.deepEqual(overflowSeries(families), []);
  } finally {
    await observed.close();
  }
});

test('a running Beacon with 420 apps exports all 2 100 series of its channel gauges (the views are the SDK\'s), and names 100 apps at its start', { timeout: 30_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'beacon-apps-'));
  const file = join(dir, 'apps.json');
  const apps = Array.from({ length: 420 }, (_, i) => ({ id: `app-${i}`, key: `key-${i}`, secret: `secret-${i}-0123456789` }));
  await writeFile(file, JSON.stringify({ apps }));
  const beacon = await spawnBeacon({ APPS_FILE: file });
  try {
    const families = parseExposition(await (await fetch(`http://127.0.0.1:${beacon.metricsPort}/metrics`)).text());
    // Each app's gauge is reported for every channel type, zeros included.
    assert.equal(families.get('websocket_channels')?.samples.length, apps.length * CHANNEL_TYPES.length);
    assert.deepEqual(overflowSeries(families), []);
    // Its start names the first 100 apps and counts them all (10 000 ids made one line of 99 KB).
    const startedLine = (): Record<string, unknown> | undefined =>
      beacon.logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.event === 'server_started');
    await until(() => startedLine() !== undefined, 'server_started on stdout');
    const started = startedLine();
    assert.deepEqual([(started?.apps as string[]).length, started?.app_count], [100, 420]);
  } finally {
    await beacon.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
