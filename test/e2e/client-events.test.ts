/**
 * Client events (`client-*`) with real pusher-js clients: delivered to the other subscribers and never echoed, carrying
 * `user_id` on presence channels; rejected (pusher:error, logged once) when the app disables them, on public and encrypted
 * channels, when the sender is not subscribed; and rate limited per connection with 4301.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type Pusher from 'pusher';
import { authOptions } from '../helpers/auth.js';
import { loggedOnce, logLines } from '../helpers/logs.js';
import { names, nextEvent, record, subscribed } from '../helpers/pusher-events.js';
import type { Channel } from '../helpers/pusher-js.js';
import { RawClient } from '../helpers/raw-client.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { until, within } from '../helpers/wait.js';

const ENABLED = { APP_ENABLE_CLIENT_EVENTS: 'true' };

interface PusherError {
  message: string;
  code: number | null;
}

/** Two authorized clients subscribed to `name`. */
async function pair(server: TestServer, name: string, sdk: Pusher = server.sdk()) {
  const senderClient = server.client(authOptions(sdk, { presence: { user_id: 'sender', user_info: { name: 'S' } } }));
  const receiverClient = server.client(authOptions(sdk, { presence: { user_id: 'receiver' } }));
  const sender = await subscribed(senderClient, name);
  const receiver = await subscribed(receiverClient, name);
  return { senderClient, receiverClient, sender, receiver };
}

/** An SDK event on `name` that every given channel must receive: everything sent before it has been delivered. */
async function barrier(server: TestServer, name: string, channels: Channel[]): Promise<void> {
  const arrived = channels.map((c) => nextEvent(c, 'marker'));
  await server.sdk().trigger(name, 'marker', {});
  await Promise.all(arrived);
}

test('client event on a private channel reaches the other subscriber and is not echoed to the sender', async () => {
  const server = await startServer(ENABLED);
  try {
    const { sender, receiver } = await pair(server, 'private-chat');
    const senderEvents = record(sender);
    const got = nextEvent(receiver, 'client-typing');
    assert.equal(sender.trigger('client-typing', { who: 'sender' }), true);
    assert.deepEqual(await got, { who: 'sender' });
    await barrier(server, 'private-chat', [sender, receiver]);
    assert.ok(names(senderEvents).includes('marker'));
    assert.ok(!names(senderEvents).includes('client-typing'), 'a client event must not be echoed to its sender');
  } finally {
    await server.close();
  }
});

test('client event on a presence channel carries the sender user_id', async () => {
  const server = await startServer(ENABLED);
  try {
    const { sender, receiver } = await pair(server, 'presence-chat');
    const got = new Promise<{ data: unknown; metadata: { user_id?: string } }>((resolve) =>
      receiver.bind('client-wave', (data: unknown, metadata: { user_id?: string }) => resolve({ data, metadata })),
    );
    sender.trigger('client-wave', { hand: 'left' });
    const { data, metadata } = await within(got, 'client-wave');
    assert.deepEqual(data, { hand: 'left' });
    assert.equal(metadata.user_id, 'sender');
  } finally {
    await server.close();
  }
});

test('client event on a private channel carries no user_id on the wire', async () => {
  const server = await startServer(ENABLED);
  try {
    const sdk = server.sdk();
    const { sender } = await pair(server, 'private-chat', sdk);
    const { client: raw, socketId } = await RawClient.established(server.port);
    raw.send({ event: 'pusher:subscribe', data: { channel: 'private-chat', ...sdk.authorizeChannel(socketId, 'private-chat') } });
    await raw.next('pusher_internal:subscription_succeeded');
    sender.trigger('client-x', { a: 1 });
    const frame = await raw.next('client-x');
    assert.equal(frame.user_id, undefined);
    assert.deepEqual(frame.data, { a: 1 });
    await raw.close();
  } finally {
    await server.close();
  }
});

test('client events are rejected when the app does not enable them (the default)', async () => {
  const server = await startServer();
  try {
    const { senderClient, sender, receiver } = await pair(server, 'private-chat');
    const receiverEvents = record(receiver);
    const error = nextEvent<PusherError>(senderClient, 'pusher:error');
    sender.trigger('client-typing', {});
    assert.match((await error).message, /not enabled/);
    await barrier(server, 'private-chat', [receiver]);
    assert.deepEqual(names(receiverEvents), ['marker']);
    await loggedOnce(server, { event: 'message_rejected', reason: 'client_events_disabled' });
  } finally {
    await server.close();
  }
});

test('client events are rejected on public channels', async () => {
  const server = await startServer(ENABLED);
  try {
    const a = server.client();
    const b = server.client();
    const channel = await subscribed(a, 'lobby');
    const other = await subscribed(b, 'lobby');
    const otherEvents = record(other);
    const error = nextEvent<PusherError>(a, 'pusher:error');
    channel.trigger('client-hello', {});
    assert.match((await error).message, /private and presence/);
    await barrier(server, 'lobby', [other]);
    assert.deepEqual(names(otherEvents), ['marker']);
    await loggedOnce(server, { event: 'message_rejected', reason: 'unauthorized' });
  } finally {
    await server.close();
  }
});

test('client events are rejected on private-encrypted channels (pusher-js refuses them too)', async () => {
  const server = await startServer(ENABLED);
  try {
    const { client: raw, socketId } = await RawClient.established(server.port);
    const sdkWithKey = server.sdk({ encryptionMasterKeyBase64: Buffer.alloc(32, 7).toString('base64') });
    raw.send({ event: 'pusher:subscribe', data: { channel: 'private-encrypted-x', ...sdkWithKey.authorizeChannel(socketId, 'private-encrypted-x') } });
    await raw.next('pusher_internal:subscription_succeeded');
    raw.send({ event: 'client-leak', channel: 'private-encrypted-x', data: { plain: true } });
    const error = await raw.next('pusher:error');
    assert.match((error.data as PusherError).message, /private and presence/);
    await loggedOnce(server, { event: 'message_rejected', reason: 'unauthorized' });
    await raw.close();
  } finally {
    await server.close();
  }
});

test('client events are rejected on a channel the sender is not subscribed to', async () => {
  const server = await startServer(ENABLED);
  try {
    const { receiver } = await pair(server, 'private-chat');
    const receiverEvents = record(receiver);
    const outsider = server.client(authOptions(server.sdk()));
    await subscribed(outsider, 'private-elsewhere');
    const error = nextEvent<PusherError>(outsider, 'pusher:error');
    outsider.send_event('client-sneak', { x: 1 }, 'private-chat');
    assert.match((await error).message, /Not subscribed to private-chat/);
    await barrier(server, 'private-chat', [receiver]);
    assert.deepEqual(names(receiverEvents), ['marker']);
    await loggedOnce(server, { event: 'message_rejected', reason: 'not_subscribed' });
  } finally {
    await server.close();
  }
});

test('client events over APP_CLIENT_EVENTS_PER_SECOND get pusher:error 4301 and are dropped', async () => {
  const server = await startServer({ ...ENABLED, APP_CLIENT_EVENTS_PER_SECOND: '3' });
  try {
    const { senderClient, sender, receiver } = await pair(server, 'private-chat');
    const received: unknown[] = [];
    receiver.bind('client-burst', (data: unknown) => received.push(data));
    const error = nextEvent<PusherError>(senderClient, 'pusher:error');
    // Four in the same second: three pass, the fourth is refused (the window opens with the first).
    for (let i = 1; i <= 4; i++) sender.trigger('client-burst', { i });
    const refused = await error;
    assert.equal(refused.code, 4301);
    await barrier(server, 'private-chat', [receiver]);
    assert.deepEqual(received, [{ i: 1 }, { i: 2 }, { i: 3 }]);
    const line = await loggedOnce(server, { event: 'rate_limited' });
    assert.equal(line.reason, 'rate_limited');
    assert.equal(line.code, 4301);
    // The connection stays usable.
    assert.equal(senderClient.connection.state, 'connected');
  } finally {
    await server.close();
  }
});

test('the rate limit is per connection: another connection of the same app is not limited', async () => {
  const server = await startServer({ ...ENABLED, APP_CLIENT_EVENTS_PER_SECOND: '2' });
  try {
    const sdk = server.sdk();
    const { sender, receiver } = await pair(server, 'private-chat', sdk);
    const third = await subscribed(server.client(authOptions(sdk)), 'private-chat');
    const received: unknown[] = [];
    receiver.bind('client-n', (data: unknown) => received.push(data));
    sender.trigger('client-n', 1);
    sender.trigger('client-n', 2);
    third.trigger('client-n', 3);
    third.trigger('client-n', 4);
    await until(() => received.length === 4, 'four client events');
    assert.deepEqual([...received].sort(), [1, 2, 3, 4]);
    assert.equal(logLines(server, { event: 'rate_limited' }).length, 0);
  } finally {
    await server.close();
  }
});
