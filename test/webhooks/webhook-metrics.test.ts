/**
 * A configured webhook's `websocket_webhooks_total{result="failed"}` series are exported at 0 from start, one per event
 * type it takes: BeaconWebhookFailures (prometheus/alerts.yml) reads a series that appears only with its first failure as
 * new only if it had no sample 10 to 20 minutes before, so after a restart such a failure went unalerted (the rule's
 * restart case is in prometheus/tests/alerts.test.yml).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SHORTHAND_WEBHOOK_EVENT_NAMES } from '../../src/webhooks/webhook-event.js';
import { exportedMetrics } from '../helpers/exported-metrics.js';
import { startServer } from '../helpers/server.js';

test('every configured webhook exports its failed series at 0 from start, for the event types it takes', async () => {
  const observed = await exportedMetrics();
  const listed = [{ url: 'http://127.0.0.1:9/counts', eventTypes: ['subscription_count'] }];
  const server = await startServer(
    { APP_WEBHOOK_URL: 'http://127.0.0.1:9/all', APP_WEBHOOKS: JSON.stringify(listed) },
    { metrics: observed.metrics },
  );
  try {
    const failed = (await observed.scrape())
      .get('websocket_webhooks_total')
      ?.samples.filter((s) => s.labels.result === 'failed')
      .map((s) => `${s.labels.webhook} ${s.labels.event} ${s.value}`)
      .sort();
    assert.deepEqual(failed, [...SHORTHAND_WEBHOOK_EVENT_NAMES.map((e) => `0 ${e} 0`), '1 subscription_count 0'].sort());
  } finally {
    await server.close();
  }
});
