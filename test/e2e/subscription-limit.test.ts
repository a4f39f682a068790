/**
 * MAX_SUBSCRIPTIONS_PER_CONNECTION: past it a subscribe gets `pusher:subscription_error` (403, LimitReached) on that
 * channel, the refusal is logged within the rejection cap, and a slot freed by unsubscribing can be used again.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig } from '../../src/config.js';
import { RawClient } from '../helpers/raw-client.js';
import { startServer } from '../helpers/server.js';
import { until } from '../helpers/wait.js';

test('MAX_SUBSCRIPTIONS_PER_CONNECTION defaults to 100', () => {
  assert.equal(loadConfig({}).maxSubscriptionsPerConnection, 100);
});

test('subscriptions past the per-connection cap are refused on their channel; a freed slot is usable', async () => {
  const server = await startServer({ MAX_SUBSCRIPTIONS_PER_CONNECTION: '5', FRAME_RATE_LIMIT_PER_SECOND: '0' });
  try {
    const { client } = await RawClient.established(server.port);
    const CHANNELS = 300;
    for (let i = 0; i < CHANNELS; i++) client.send({ event: 'pusher:subscribe', data: { channel: `room-${i}` } });
    const outcomes = () =>
      client.all('pusher_internal:subscription_succeeded').length + client.all('pusher:subscription_error').length;
    await until(() => outcomes() === CHANNELS, 'an answer to every subscribe');
    assert.deepEqual(
      client.all('pusher_internal:subscription_succeeded').map((f) => f.channel),
      ['room-0', 'room-1', 'room-2', 'room-3', 'room-4'],
    );
    const refused = client.all('pusher:subscription_error');
    assert.equal(refused.length, CHANNELS - 5);
    assert.equal(refused[0]!.channel, 'room-5');
    assert.deepEqual(refused[0]!.data, {
      type: 'LimitReached',
      error: 'Subscription limit reached (5 channels per connection)',
      status: 403,
    });
    assert.equal(server.app.hub.state('app-id')?.channels.size, 5, 'refused channels are not created');

    // Logged within the connection's rejection cap, not once per refusal.
    const lines = server.logs.filter((l) => l.event === 'subscription_failed' && l.reason === 'limit');
    assert.ok(lines.length >= 1 && lines.length <= 20, `${lines.length} subscription_failed lines`);

    // Re-subscribing a channel already held is not a new subscription; after an unsubscribe a new one fits.
    client.send({ event: 'pusher:unsubscribe', data: { channel: 'room-0' } });
    client.send({ event: 'pusher:subscribe', data: { channel: 'room-new' } });
    await client.next((f) => f.event === 'pusher_internal:subscription_succeeded' && f.channel === 'room-new');
    await client.close();
  } finally {
    await server.close();
  }
});
