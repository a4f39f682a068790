/**
 * A real Beacon (child process, telemetry on) whose webhook receiver holds every request open: the node's own `/metrics`
 * shows the events in requests in flight and those queued behind them (`websocket_webhook_pending_events`), the vacate held
 * back for the delay (`websocket_webhook_held_events`), each at 0 from start and back to 0 once the receiver answers. This
 * is the app's sender as src/app.ts wires it to the gauges; test/webhooks/webhook-sender.test.ts checks the sender's own
 * counts. Nothing sleeps: the test awaits the receiver's requests and polls the scrape, bounded, for what must show.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { spawnBeacon } from '../helpers/beacon-process.js';
import { parseExposition } from '../helpers/exposition.js';
import { RawClient } from '../helpers/raw-client.js';
import { eventually, until } from '../helpers/wait.js';

/** Long enough for a child process's scrape on loopback; a missing series fails well within the test timeout. */
const SCRAPE_WAIT_MS = 10_000;

/** A receiver that holds every request (body read) until `release()`, then answers them and every later one with 200. */
async function holdingReceiver() {
  const held: ServerResponse[] = [];
  let requests = 0;
  let released = false;
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      requests++;
      if (released) res.end('ok');
      else held.push(res);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhooks`,
    requests: () => requests,
    held: () => held.length,
    release() {
      released = true;
      for (const res of held.splice(0)) res.end('ok');
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

test('a receiver that holds its requests shows as events in flight and queued on /metrics, and 0 once it answers', async () => {
  const receiver = await holdingReceiver();
  const beacon = await spawnBeacon({
    APP_WEBHOOK_URL: receiver.url,
    // One event per request: four requests in flight (the concurrency per webhook), the rest queued behind them.
    WEBHOOK_BATCH_MAX_EVENTS: '1',
    WEBHOOK_VACATE_DELAY_MS: '60000',
    // Held requests are not timed out and retried while the test looks at them.
    WEBHOOK_REQUEST_TIMEOUT_MS: '60000',
  });
  let client: RawClient | undefined;
  try {
    client = (await RawClient.established(beacon.port)).client;
    const scrape = async () => {
      const families = parseExposition(await (await fetch(`http://127.0.0.1:${beacon.metricsPort}/metrics`)).text());
      const value = (name: string, labels: Record<string, string>) =>
        families.get(name)?.samples.find((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
      return {
        queued: value('websocket_webhook_pending_events', { app_id: 'app-id', webhook: '0', state: 'queued' }),
        in_flight: value('websocket_webhook_pending_events', { app_id: 'app-id', webhook: '0', state: 'in_flight' }),
        held: value('websocket_webhook_held_events', { app_id: 'app-id' }),
        bytes: value('websocket_webhook_pending_bytes', { app_id: 'app-id', webhook: '0' }),
      };
    };
    /** Polls the scrape until it reads `expected`; a failure names the last reading. */
    const shows = async (expected: Awaited<ReturnType<typeof scrape>>, what: string) => {
      let last: unknown;
      const check = async () => {
        last = await scrape();
        return JSON.stringify(last) === JSON.stringify(expected);
      };
      await eventually(check, what, SCRAPE_WAIT_MS, 50).catch((err: Error) => {
        throw new Error(`${err.message}; last scrape ${JSON.stringify(last)}`);
      });
    };

    assert.deepEqual(await scrape(), { queued: 0, in_flight: 0, held: 0, bytes: 0 }, 'exported from start, at 0');

    // Six channels occupied: six channel_occupied events for the webhook.
    for (let i = 0; i < 6; i++) {
      client.send({ event: 'pusher:subscribe', data: { channel: `news-${i}` } });
      await client.next((f) => f.event === 'pusher_internal:subscription_succeeded' && f.channel === `news-${i}`);
    }
    await until(() => receiver.held() === 4, 'four requests held by the receiver', SCRAPE_WAIT_MS);
    // Their size as WEBHOOK_MAX_PENDING_BYTES counts it: each channel name and 128.
    const bytes = 6 * ('news-0'.length + 128);
    await shows({ queued: 2, in_flight: 4, held: 0, bytes }, 'four events in flight, two queued');

    // The last subscriber leaves: its channel_vacated is held back for the delay, in no webhook's queue yet.
    client.send({ event: 'pusher:unsubscribe', data: { channel: 'news-5' } });
    await shows({ queued: 2, in_flight: 4, held: 1, bytes }, 'the vacate held back');

    receiver.release();
    await until(() => receiver.requests() === 6, 'the six events delivered', SCRAPE_WAIT_MS);
    await shows({ queued: 0, in_flight: 0, held: 1, bytes: 0 }, 'nothing waiting once the receiver answered');
    assert.equal(receiver.requests(), 6, 'no request was retried');
  } finally {
    await client?.close();
    await beacon.stop();
    receiver.release();
    await receiver.close();
  }
});
