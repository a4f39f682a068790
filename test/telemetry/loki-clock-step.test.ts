/**
 * The Loki shipper (run here in the test's own thread; Beacon runs it in a worker) when the wall clock steps back an hour:
 * its push schedule ran on `Date.now()`, and no push was due again until the clock came back — an hour of lines in the
 * spool, dropped past its bound (a probe). It runs on the system's monotonic clock now (`shippingClock`).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { COUNTER_SLOTS, createShipper } from '../../src/telemetry/loki-shipper.js';
import { startLokiReceiver } from '../helpers/loki-receiver.js';

test('a wall clock stepped back an hour does not stop the pushes', { timeout: 15_000 }, async () => {
  const loki = await startLokiReceiver();
  const wallNow = Date.now;
  const shipper = createShipper({
    url: loki.url,
    serviceName: 'beacon',
    env: 'test',
    nodeId: 'n',
    username: undefined,
    password: undefined,
    tenantId: undefined,
    batchIntervalMs: 300,
    timeoutMs: 2000,
    spoolMaxBytes: 1024 * 1024,
    counters: new BigInt64Array(new SharedArrayBuffer(8 * COUNTER_SLOTS)),
    onFailure: () => undefined,
  });
  try {
    shipper.add(JSON.stringify({ level: 'info', time: new Date().toISOString(), msg: 'before' }));
    await loki.waitFor(() => loki.lines().length === 1, 5000);
    // The next push is scheduled on the clock of before the step (its batch interval), then the clock steps.
    shipper.add(JSON.stringify({ level: 'info', time: new Date().toISOString(), msg: 'after' }));
    Date.now = () => wallNow() - 3_600_000;
    await loki.waitFor(() => loki.lines().length === 2, 5000);
    assert.deepEqual(loki.lines().map((l) => (JSON.parse(l.line) as { msg: string }).msg), ['before', 'after']);
  } finally {
    Date.now = wallNow;
    await shipper.close();
    await loki.close();
  }
});
