/**
 * Cache channels (`cache-`, `private-cache-`, `presence-cache-`, `private-encrypted-cache-`) with pusher-js and the SDK:
 * pusher:cache_miss when nothing is cached, and the last event replayed to a late subscriber.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import type Pusher from 'pusher';
import { authOptions } from '../helpers/auth.js';
import { names, nextEvent, record, subscribed } from '../helpers/pusher-events.js';
import { RawClient } from '../helpers/raw-client.js';
import { startRedis } from '../helpers/redis.js';
import { until, within } from '../helpers/wait.js';
import type { PusherClient } from '../helpers/pusher-js.js';
import { startServer, type TestServer } from '../helpers/server.js';

const MASTER_KEY = randomBytes(32).toString('base64');

let users = 0;
function newClient(server: TestServer, sdk: Pusher): PusherClient {
  users++;
  return server.client(authOptions(sdk, { presence: { user_id: `user-${users}` } }));
}

for (const name of ['cache-scores', 'private-cache-scores', 'presence-cache-scores', 'private-encrypted-cache-scores']) {
  test(`${name.replace('scores', '')}: cache_miss on an empty channel, the last event replayed to a late subscriber`, async () => {
    const server = await startServer();
    try {
      const sdk = server.sdk({ encryptionMasterKeyBase64: MASTER_KEY });

      // First subscriber: nothing cached yet.
      const first = newClient(server, sdk);
      const firstChannel = first.subscribe(name);
      const firstEvents = record(firstChannel);
      await nextEvent(firstChannel, 'pusher:cache_miss');

      // Two events: the cache keeps only the last one.
      const second = nextEvent(firstChannel, 'score');
      await sdk.trigger(name, 'score', { home: 1, away: 0 });
      await sdk.trigger(name, 'score', { home: 2, away: 0 });
      assert.deepEqual(await second, { home: 1, away: 0 });

      // A late subscriber gets the last event at once, and no cache_miss.
      const late = newClient(server, sdk);
      const lateChannel = late.subscribe(name);
      const lateEvents = record(lateChannel);
      const replayed = await nextEvent(lateChannel, 'score');
      assert.deepEqual(replayed, { home: 2, away: 0 });
      // A marker after the replay: everything the subscription produced has arrived by then.
      const marker = nextEvent(lateChannel, 'marker');
      await sdk.trigger(name, 'marker', {});
      await marker;
      assert.ok(!names(lateEvents).includes('pusher:cache_miss'));
      assert.deepEqual(
        lateEvents.filter((e) => e.event === 'score').map((e) => e.data),
        [{ home: 2, away: 0 }],
      );
      assert.equal(names(firstEvents).filter((n) => n === 'pusher:cache_miss').length, 1);
    } finally {
      await server.close();
    }
  });
}

test('the cache is per channel: another cache channel still misses', async () => {
  const server = await startServer();
  try {
    const sdk = server.sdk();
    await sdk.trigger('cache-a', 'ev', { a: 1 });
    const client = server.client();
    const missA = record(client.subscribe('cache-a'));
    const gotA = nextEvent(client.channel('cache-a'), 'ev');
    const missB = nextEvent(client.subscribe('cache-b'), 'pusher:cache_miss');
    assert.deepEqual(await gotA, { a: 1 });
    await missB;
    assert.ok(!names(missA).includes('pusher:cache_miss'));
  } finally {
    await server.close();
  }
});

test('GET /channels/{cache channel}?info=cache answers the cached event', async () => {
  const server = await startServer();
  try {
    const sdk = server.sdk();
    await subscribed(server.client(), 'cache-live');
    await sdk.trigger('cache-live', 'ev', { v: 3 });
    const res = await sdk.get({ path: '/channels/cache-live', params: { info: 'cache' } });
    assert.deepEqual(await res.json(), { occupied: true, cache: { event: 'ev', data: JSON.stringify({ v: 3 }) } });
    // An attribute named again is read once (a review: thousands fit in a header, each a cache read, one by one).
    const adapter = server.app.adapter;
    const cacheGet = adapter.cacheGet.bind(adapter);
    let reads = 0;
    adapter.cacheGet = (appId, channel) => {
      reads++;
      return cacheGet(appId, channel);
    };
    const again = await sdk.get({ path: '/channels/cache-live', params: { info: Array(50).fill('cache').join(',') } });
    assert.deepEqual(await again.json(), { occupied: true, cache: { event: 'ev', data: JSON.stringify({ v: 3 }) } });
    assert.equal(reads, 1);
  } finally {
    await server.close();
  }
});

for (const engine of ['local', 'redis'] as const) {
  test(`presence-cache (${engine}): a client event is delivered live but never cached — a late subscriber gets the backend's last event, or cache_miss`, async () => {
    const redis = engine === 'redis' ? await startRedis() : undefined;
    const env: Record<string, string> = { APP_ENABLE_CLIENT_EVENTS: 'true' };
    if (redis !== undefined) Object.assign(env, { ADAPTER: 'redis', REDIS_URL: redis.url, NODE_ID: 'cache-node' });
    const server = await startServer(env);
    try {
      if (redis !== undefined) await until(() => server.app.adapter.status().up, 'connected to Redis');
      const sdk = server.sdk();
      const rawSubscriber = async (channel: string, userId: string): Promise<RawClient> => {
        const { client, socketId } = await RawClient.established(server.port);
        const auth = sdk.authorizeChannel(socketId, channel, { user_id: userId });
        client.send({ event: 'pusher:subscribe', data: { channel, auth: auth.auth, channel_data: auth.channel_data } });
        await client.next((f) => f.event === 'pusher_internal:subscription_succeeded' && f.channel === channel);
        return client;
      };
      /** The first frame of `channel` a subscriber got after its subscription succeeded. */
      const firstAfterJoin = async (client: RawClient, channel: string, event: string): Promise<string> => {
        await client.next((f) => f.channel === channel && f.event === event);
        const ofChannel = client.frames.filter((f) => f.channel === channel);
        const joined = ofChannel.findIndex((f) => f.event === 'pusher_internal:subscription_succeeded');
        return ofChannel[joined + 1]!.event;
      };

      // The backend set the state; a subscriber then sends a client event (the sender is pusher-js, signed in as `typist`).
      const channel = 'presence-cache-room';
      await sdk.trigger(channel, 'state', { price: 100 });
      const watcher = await rawSubscriber(channel, 'watcher');
      assert.equal(await firstAfterJoin(watcher, channel, 'state'), 'state');
      const typist = server.client(authOptions(sdk, { presence: { user_id: 'typist' } }));
      const typing = await subscribed(typist, channel);
      assert.equal(typing.trigger('client-typing', { t: 1 }), true);
      const live = await watcher.next('client-typing');
      assert.equal(live.user_id, 'typist');

      // A late subscriber gets the backend's event first, not the client event; the API reads the same.
      const late = await rawSubscriber(channel, 'late');
      assert.equal(await firstAfterJoin(late, channel, 'state'), 'state');
      assert.deepEqual(late.all('state')[0]!.data, { price: 100 });
      assert.deepEqual(late.all('client-typing'), []);
      const info = await sdk.get({ path: `/channels/${channel}`, params: { info: 'cache' } });
      assert.deepEqual(((await info.json()) as { cache: unknown }).cache, { event: 'state', data: JSON.stringify({ price: 100 }) });

      // A channel the backend never published on stays a cache miss, whatever its subscribers sent.
      const empty = 'presence-cache-empty';
      const typingEmpty = await subscribed(typist, empty);
      const emptyWatcher = await rawSubscriber(empty, 'watcher');
      assert.equal(typingEmpty.trigger('client-typing', { t: 2 }), true);
      await emptyWatcher.next((f) => f.channel === empty && f.event === 'client-typing');
      const lateEmpty = await rawSubscriber(empty, 'late');
      assert.equal(await firstAfterJoin(lateEmpty, empty, 'pusher:cache_miss'), 'pusher:cache_miss');
      await Promise.all([watcher.close(), late.close(), emptyWatcher.close(), lateEmpty.close()]);
    } finally {
      await server.close();
      await redis?.stop();
    }
  });
}

for (const engine of ['local', 'redis'] as const) {
  test(`cache (${engine}): subscribers joining while events stream get each event once, in order, from the cached one on`, async () => {
    const redis = engine === 'redis' ? await startRedis() : undefined;
    const env: Record<string, string> = redis === undefined ? {} : { ADAPTER: 'redis', REDIS_URL: redis.url, NODE_ID: 'cache-stream' };
    const server = await startServer(env);
    const clients: RawClient[] = [];
    try {
      if (redis !== undefined) await until(() => server.app.adapter.status().up, 'connected to Redis');
      const sdk = server.sdk();
      const channel = 'cache-stream';
      await sdk.trigger(channel, 'n', '0');
      let stop = false;
      let n = 0;
      const stream = (async () => {
        while (!stop && n < 5000) await sdk.trigger(channel, 'n', String(++n));
      })();
      for (let i = 0; i < 20; i++) {
        const { client } = await RawClient.established(server.port);
        client.send({ event: 'pusher:subscribe', data: { channel } });
        await client.next((f) => f.event === 'pusher_internal:subscription_succeeded' && f.channel === channel);
        clients.push(client);
      }
      stop = true;
      await stream;
      await sdk.trigger(channel, 'end', '{}');
      for (const client of clients) {
        await client.next((f) => f.event === 'end');
        const got = client.frames.filter((f) => f.event === 'n').map((f) => Number(f.raw));
        // From its first event (the cached one, or the first published after it joined) to the last, each exactly once.
        // Before, on Redis, the cache was read after the subscriber was fed live: `4,4,5` and `173,174,173` (found by an
        // outside probe).
        const first = got[0] ?? -1;
        assert.deepEqual(got, Array.from({ length: n - first + 1 }, (_, k) => first + k), `subscriber saw ${got.slice(0, 6).join(',')}…`);
      }
    } finally {
      await Promise.all(clients.map((c) => c.close()));
      await server.close();
      await redis?.stop();
    }
  });
}
