/**
 * Two deployments on one redis-server: REDIS_KEY_PREFIX keeps them apart (keys and pub/sub), a database number does not
 * (pub/sub is one namespace for all of a server's databases: a probe had staging's publishes delivered to production).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import Pusher from 'pusher';
import { spawnBeacon, type BeaconProcess } from '../helpers/beacon-process.js';
import { subscribed } from '../helpers/pusher-events.js';
import { localClient, type PusherClient } from '../helpers/pusher-js.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';
import { APP } from '../helpers/server.js';
import { until } from '../helpers/wait.js';

let redis: RedisServer;
before(async () => {
  redis = await startRedis();
});
after(async () => {
  await redis?.stop();
});

test('REDIS_KEY_PREFIX: two deployments on one Redis never see each other’s publishes or keys', { timeout: 45_000 }, async () => {
  const nodes: BeaconProcess[] = [];
  const clients: PusherClient[] = [];
  const raw = new Redis(redis.url);
  try {
    for (const prefix of ['staging', 'production']) {
      nodes.push(await spawnBeacon({ ADAPTER: 'redis', REDIS_URL: redis.url, REDIS_KEY_PREFIX: prefix, NODE_ID: prefix }));
    }
    const got: string[][] = [[], []];
    for (const [i, node] of nodes.entries()) {
      const client = localClient(node.port, APP.key);
      clients.push(client);
      (await subscribed(client, 'orders')).bind('placed', (data: { from: string }) => got[i]!.push(data.from));
    }
    for (const [i, node] of nodes.entries()) {
      const sdk = new Pusher({ appId: APP.id, key: APP.key, secret: APP.secret, host: '127.0.0.1', port: String(node.port), useTLS: false });
      await sdk.trigger('orders', 'placed', { from: i === 0 ? 'staging' : 'production' });
    }
    await until(() => got[0]!.length === 1 && got[1]!.length === 1, 'each deployment’s own publish');
    // Then a marker through each node: Redis delivers a subscriber connection's messages in the order it ran the
    // publishes, so once a deployment has its own marker, the other's publish, run before, would have reached it first.
    for (const [i, node] of nodes.entries()) {
      const sdk = new Pusher({ appId: APP.id, key: APP.key, secret: APP.secret, host: '127.0.0.1', port: String(node.port), useTLS: false });
      await sdk.trigger('orders', 'placed', { from: `marker-${i}` });
    }
    await until(() => got[0]!.includes('marker-0') && got[1]!.includes('marker-1'), 'each deployment’s marker');
    assert.deepEqual(got, [['staging', 'marker-0'], ['production', 'marker-1']]);
    const keys = await raw.keys('*');
    assert.ok(keys.length > 0);
    assert.deepEqual(keys.filter((k) => !k.startsWith('staging:') && !k.startsWith('production:')), []);
    assert.ok(keys.some((k) => k.startsWith('staging:')) && keys.some((k) => k.startsWith('production:')));
  } finally {
    for (const client of clients) client.disconnect();
    raw.disconnect();
    await Promise.all(nodes.map((n) => n.stop()));
  }
});

test('a REDIS_URL naming a database with the default prefix is said at start; a path that is no number is refused', { timeout: 30_000 }, async () => {
  const node = await spawnBeacon({ ADAPTER: 'redis', REDIS_URL: `${redis.url}/3`, NODE_ID: 'db3' });
  try {
    await until(() => node.logs.some((l) => l.includes('"event":"config_warning"') && l.includes('database 3')), 'the warning');
  } finally {
    await node.stop();
  }
  await assert.rejects(spawnBeacon({ ADAPTER: 'redis', REDIS_URL: `${redis.url}/beacon` }), /REDIS_URL: a path, if any, is a database number/);
});
