/**
 * The inbound budget of one connection: deeply nested client events are refused before any JSON work (a protocol error
 * to the sender, no server error line, other subscribers undisturbed), client data is passed through exactly as written,
 * and every kind of frame counts against FRAME_RATE_LIMIT_PER_SECOND before it is decoded.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RawClient } from '../helpers/raw-client.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { until } from '../helpers/wait.js';

/** A raw client subscribed to `channel` (a private channel, signed by the SDK as an app backend would). */
async function subscribed(server: TestServer, channel: string): Promise<RawClient> {
  const { client, socketId } = await RawClient.established(server.port);
  const { auth } = server.sdk().authorizeChannel(socketId, channel);
  client.send({ event: 'pusher:subscribe', data: { channel, auth } });
  await client.next((f) => f.event === 'pusher_internal:subscription_succeeded' && f.channel === channel);
  return client;
}

const errorLines = (server: TestServer) => server.logs.filter((l) => Number(l.level) >= 50 || l.level === 'error');

test('deeply nested client-event data gets a protocol error, logs no server error, and stalls no one', { timeout: 30_000 }, async () => {
  const server = await startServer({ APP_ENABLE_CLIENT_EVENTS: 'true', APP_CLIENT_EVENTS_PER_SECOND: '1000' });
  try {
    const sender = await subscribed(server, 'private-deep');
    const listener = await subscribed(server, 'private-deep');
    const canary = await subscribed(server, 'private-canary');

    // The reproduction, scaled down: nesting 5000 deep, ~10 KB a frame.
    const nested = '['.repeat(5000) + ']'.repeat(5000);
    const FRAMES = 200;
    for (let i = 0; i < FRAMES; i++) sender.send(`{"event":"client-deep","channel":"private-deep","data":${nested}}`);
    // Publishes to another channel go through while the flood is handled.
    const sdk = server.sdk();
    for (let n = 0; n < 20; n++) await sdk.trigger('private-canary', 'tick', { n });
    await until(() => canary.all('tick').length === 20, 'every publish reaches the canary');
    assert.deepEqual(
      canary.all('tick').map((f) => (f.data as { n: number }).n),
      Array.from({ length: 20 }, (_, n) => n),
    );

    // Every deep frame is answered with pusher:error, none is relayed, none is a server error.
    await until(() => sender.all('pusher:error').length === FRAMES, `${FRAMES} pusher:error answers`);
    assert.match(String((sender.all('pusher:error')[0]!.data as { message: string }).message), /nested deeper/);
    assert.equal(listener.all('client-deep').length, 0);
    assert.deepEqual(errorLines(server), [], 'no error-level line');
    assert.ok(server.logs.some((l) => l.event === 'message_rejected' && l.reason === 'too_deep'));
    assert.ok(server.logs.filter((l) => l.reason === 'too_deep').length <= 21, 'the rejection log is capped');
    for (const c of [sender, listener, canary]) await c.close();
  } finally {
    await server.close();
  }
});

test('client-event data reaches the other subscribers exactly as the sender wrote it', async () => {
  const server = await startServer({ APP_ENABLE_CLIENT_EVENTS: 'true' });
  try {
    const sender = await subscribed(server, 'private-raw');
    const listener = await subscribed(server, 'private-raw');
    // Exponents, escapes and spacing that a parse + re-serialize would rewrite; nesting within MAX_JSON_DEPTH.
    const data = '{"n": 1e2, "s":"caf\\u00e9 \\ud83d\\ude00", "a":[[[[[[[[[[1]]]]]]]]]], "k":{"__proto__":{"x":1}}}';
    sender.send(`{ "event" : "client-raw", "data" :  ${data} , "channel":"private-raw" }`);
    const frame = await listener.next('client-raw');
    assert.equal(frame.raw, data, 'the data string is the raw JSON text of the frame member');
    // A string data member is passed as that string.
    sender.send({ event: 'client-raw2', channel: 'private-raw', data: '{"already":"encoded"}' });
    assert.equal((await listener.next('client-raw2')).raw, '{"already":"encoded"}');
    await sender.close();
    await listener.close();
  } finally {
    await server.close();
  }
});

test('every frame kind counts against FRAME_RATE_LIMIT_PER_SECOND, refused with 4301 before decoding', async () => {
  const server = await startServer({ FRAME_RATE_LIMIT_PER_SECOND: '20' });
  try {
    const { client } = await RawClient.established(server.port);
    const FRAMES = 100;
    for (let i = 0; i < FRAMES; i++) {
      // Pings, garbage and subscribes alike: the budget does not look inside.
      client.send(i % 3 === 0 ? { event: 'pusher:ping', data: {} } : i % 3 === 1 ? 'not json' : { event: 'pusher:subscribe', data: { channel: `c${i}` } });
    }
    const answered = () =>
      client.frames.filter((f) => f.event !== 'pusher:connection_established' && f.event !== 'pusher_internal:subscription_count').length;
    await until(() => answered() >= FRAMES, 'an answer to every frame');
    const limited = client.all('pusher:error').filter((f) => (f.data as { code: number | null }).code === 4301);
    // A burst can straddle one window boundary: at most twice the limit get through.
    assert.ok(limited.length >= FRAMES - 40, `${limited.length} frames refused by the budget`);
    assert.match((limited[0]!.data as { message: string }).message, /Frame rate limit \(20\/s\)/);
    const logged = server.logs.filter((l) => l.event === 'rate_limited' && l.reason === 'frame_rate_limited');
    assert.ok(logged.length > 0 && logged.length <= 20, `${logged.length} rate_limited lines`);
    // The budget refuses frames, it does not close the connection: once the window is over the socket is read again.
    client.send({ event: 'pusher:subscribe', data: { channel: 'after-the-burst' } });
    await client.next((f) => f.event === 'pusher_internal:subscription_succeeded' && f.channel === 'after-the-burst');
    await client.close();
  } finally {
    await server.close();
  }
});

/** Subscribes `client` (socket `socketId`) to presence `channel` as `userId` with `info`, and waits for the list. */
async function joinPresence(server: TestServer, client: RawClient, socketId: string, channel: string, userId: string, info: Record<string, unknown>): Promise<void> {
  const channelData = JSON.stringify({ user_id: userId, user_info: info });
  const { auth } = server.sdk().authorizeChannel(socketId, channel, { user_id: userId, user_info: info });
  client.send({ event: 'pusher:subscribe', data: { channel, auth, channel_data: channelData } });
  await client.next((f) => f.event === 'pusher_internal:subscription_succeeded' && f.channel === channel);
}

test("pusher-js's one stale repeat per channel after a reconnect race is free: the client's next subscribe is answered", async () => {
  // The review: charged from the first repeat, five repeats of large presence lists spent the whole budget and the
  // client's real subscribe that followed got 4301, which pusher-js never sends again.
  const server = await startServer({ FRAME_RATE_LIMIT_PER_SECOND: '30', MAX_SUBSCRIPTIONS_PER_CONNECTION: '10' });
  try {
    const channels = ['a', 'b', 'c', 'd', 'e'].map((c) => `presence-race-${c}`);
    const info = { bio: 'x'.repeat(2000) };
    const members: RawClient[] = [];
    for (let i = 0; i < 20; i++) {
      const { client, socketId } = await RawClient.established(server.port);
      for (const channel of channels) await joinPresence(server, client, socketId, channel, `user-${i}`, info);
      members.push(client);
    }
    const racer = members.at(-1)!;
    // Each ~41 KB list is 10 frames of the budget of 30: charged, the five would spend it.
    for (const channel of channels) racer.send({ event: 'pusher:subscribe', data: { channel } });
    await until(() => racer.all('pusher_internal:subscription_succeeded').length === 10, 'the five repeats answered');
    racer.send({ event: 'pusher:subscribe', data: { channel: 'public-late' } });
    await racer.next((f) => f.event === 'pusher_internal:subscription_succeeded' && f.channel === 'public-late');
    assert.deepEqual(racer.all('pusher:error'), []);
    for (const c of members) await c.close();
  } finally {
    await server.close();
  }
});

test('a repeated presence subscribe pays for its member list in the frame budget: a large list answers a few a second, then 4301', async () => {
  // A probe: a member of a presence channel of 99 members with ~1.9 KB of user_info each re-sent its 69-byte subscribe
  // 200 times a second, within the budget; each was answered with a fresh 193 KB list (37 MB/s out), and another
  // client's ping took up to 0.5 s.
  const server = await startServer({ FRAME_RATE_LIMIT_PER_SECOND: '200' });
  try {
    const channel = 'presence-big';
    const info = { bio: 'x'.repeat(2000) };
    const join = async (userId: string): Promise<RawClient> => {
      const { client, socketId } = await RawClient.established(server.port);
      const channelData = JSON.stringify({ user_id: userId, user_info: info });
      const { auth } = server.sdk().authorizeChannel(socketId, channel, { user_id: userId, user_info: info });
      client.send({ event: 'pusher:subscribe', data: { channel, auth, channel_data: channelData } });
      await client.next((f) => f.event === 'pusher_internal:subscription_succeeded' && f.channel === channel);
      return client;
    };
    const members: RawClient[] = [];
    for (let i = 0; i < 20; i++) members.push(await join(`user-${i}`));
    const repeater = members.at(-1)!;
    const lists = () => repeater.all('pusher_internal:subscription_succeeded').length;
    const before = lists();
    const REPEATS = 100;
    for (let i = 0; i < REPEATS; i++) repeater.send({ event: 'pusher:subscribe', data: { channel } });
    const refused = () => repeater.all('pusher:error').filter((f) => (f.data as { code: number | null }).code === 4301).length;
    await until(() => lists() - before + refused() >= REPEATS, 'every repeat answered or refused');
    // ~41 KB a list: 10 frames of the budget each, so ~20 answered in a window (two, if the burst straddles a boundary);
    // before, all 100 were answered.
    const answered = lists() - before;
    assert.ok(answered >= 1 && answered <= 45, `${answered} lists answered of ${REPEATS} repeats`);
    assert.ok(refused() >= REPEATS - 45, `${refused()} repeats refused with 4301`);
    // Refused, not closed: the budget's next window answers again.
    repeater.send({ event: 'pusher:ping', data: {} });
    await repeater.next('pusher:pong');
    for (const c of members) await c.close();
  } finally {
    await server.close();
  }
});
