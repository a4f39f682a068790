/**
 * A node's occupancy webhooks of a channel on the Redis engine follow the order Redis made the changes: the last
 * subscriber leaving and another subscribing at the same moment on one node give `channel_vacated` before the next
 * `channel_occupied`, never after it (with the vacate delay on, a `channel_vacated` sent last tells a receiver the channel
 * is empty while it is occupied).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RawClient } from '../helpers/raw-client.js';
import { startRedis } from '../helpers/redis.js';
import { startServer } from '../helpers/server.js';
import { until } from '../helpers/wait.js';
import { startWebhookReceiver } from '../helpers/webhook-receiver.js';

const ROUNDS = 20;

test("a channel's last unsubscribe and another client's subscribe at once on one node: vacated, then occupied", { timeout: 60_000 }, async () => {
  const redis = await startRedis();
  const hooks = await startWebhookReceiver();
  // No vacate delay: every event is sent, in the order the node emitted it.
  const server = await startServer({ ADAPTER: 'redis', REDIS_URL: redis.url, NODE_ID: 'order', APP_WEBHOOK_URL: hooks.url, WEBHOOK_VACATE_DELAY_MS: '0' });
  try {
    await until(() => server.app.adapter.status().up, 'the cluster engine up', 10_000);
    const { client: first } = await RawClient.established(server.port);
    const { client: second } = await RawClient.established(server.port);
    const subscribe = async (client: RawClient, channel: string): Promise<void> => {
      client.send({ event: 'pusher:subscribe', data: { channel } });
      await client.next((f) => f.event === 'pusher_internal:subscription_succeeded' && f.channel === channel);
    };
    // The scripts loaded once (Redis runs a script sent again after NOSCRIPT behind what came meanwhile).
    await subscribe(first, 'warm-up');
    first.send({ event: 'pusher:unsubscribe', data: { channel: 'warm-up' } });
    await hooks.event((e) => e.name === 'channel_vacated' && e.channel === 'warm-up', 'the warm-up vacated');
    for (let i = 0; i < ROUNDS; i++) {
      const channel = `news-${i}`;
      await subscribe(first, channel);
      first.send({ event: 'pusher:unsubscribe', data: { channel } });
      await subscribe(second, channel);
    }
    // A marker channel after them: the node emits in order and takes its batches in order, so once the marker's vacate
    // is in, every earlier event is in or on its way (requests may overlap: ordered by `time_ms`, as a receiver does).
    await subscribe(first, 'marker');
    first.send({ event: 'pusher:unsubscribe', data: { channel: 'marker' } });
    await hooks.event((e) => e.name === 'channel_vacated' && e.channel === 'marker', 'the marker vacated');
    const story = (channel: string): string[] =>
      [...hooks.requests]
        .sort((a, b) => a.body.time_ms - b.body.time_ms)
        .flatMap((r) => r.body.events)
        .filter((e) => 'channel' in e && e.channel === channel && e.name !== 'subscription_count')
        .map((e) => e.name);
    for (let i = 0; i < ROUNDS; i++) {
      const channel = `news-${i}`;
      // Occupied by the second client at the end, whichever script ran first.
      await until(() => story(channel).at(-1) === 'channel_occupied', `${channel} last occupied: ${story(channel).join(', ')}`);
      const events = story(channel);
      for (let j = 1; j < events.length; j++) assert.notEqual(events[j], events[j - 1], `${channel} alternates: ${events.join(', ')}`);
    }
    await first.close();
    await second.close();
  } finally {
    await server.close();
    await hooks.close();
    await redis.stop();
  }
});
