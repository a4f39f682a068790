/**
 * src/adapters/ioredis-socket-errors.ts against the installed ioredis: a socket of every kind of connection the engine
 * makes (to one Redis, to a Cluster's nodes, to the master Sentinels name) takes a second `error` — as Node emits on a
 * TLS socket it destroyed after a failed certificate check, when the server's alert follows — without ending the
 * process. ioredis' own listeners are `once`: without the module, the second throws "Unhandled 'error' event".
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Cluster, Redis } from 'ioredis';
import '../../src/adapters/ioredis-socket-errors.js';
import { generic } from '../../src/adapters/redis-adapter.js';
import { startRedis } from '../helpers/redis.js';
import { startRedisCluster } from '../helpers/redis-cluster.js';
import { SENTINEL_MASTER, startRedisSentinel } from '../helpers/redis-sentinel.js';
import { within } from '../helpers/wait.js';

/** Two errors on the socket under `client`, one after the other, as after a failed TLS handshake. */
function twoErrors(client: Redis): void {
  const stream = client.stream;
  assert.ok(stream !== undefined);
  assert.doesNotThrow(() => {
    stream.emit('error', new Error('Hostname/IP does not match certificate altnames'));
    stream.emit('error', new Error('tlsv1 alert decode error'));
  });
}

async function ready(client: Redis | Cluster): Promise<void> {
  client.on('error', () => undefined);
  await within(new Promise((resolve) => client.once('ready', resolve)), 'the client ready', 10_000);
}

test("ioredis sockets take a second 'error': one Redis, a Cluster's node, a Sentinel's master", async () => {
  const redis = await startRedis();
  const cluster = await startRedisCluster();
  const sentinel = await startRedisSentinel();
  const clients: (Redis | Cluster)[] = [];
  try {
    const single = new Redis(redis.url, { maxRetriesPerRequest: 0 });
    const nodes = new Cluster(cluster.nodes, { redisOptions: { maxRetriesPerRequest: 0 } });
    const viaSentinel = new Redis({ sentinels: [{ host: '127.0.0.1', port: Number(sentinel.env.split(':')[1]) }], name: SENTINEL_MASTER, maxRetriesPerRequest: 0 });
    clients.push(single, nodes, viaSentinel);
    await Promise.all(clients.map(ready));
    twoErrors(single);
    // A node's connection is made when a command first goes to it (the client's ready needs only one).
    const node = nodes.nodes('master')[0]!;
    await node.ping();
    twoErrors(node);
    twoErrors(viaSentinel);
  } finally {
    for (const client of clients) client.disconnect();
    await Promise.all([redis.stop(), cluster.stop(), sentinel.stop()]);
  }
});

test("a command sent as the connection closes (no offline queue) fails with what the engine reads as a closed connection", async () => {
  // A probe's kill -9 of Redis had this logged as a failed publish (`adapter_request_failed`) next to `adapter_down`.
  const redis = await startRedis();
  const client = new Redis(redis.url, { enableOfflineQueue: false, maxRetriesPerRequest: 0 });
  try {
    await ready(client);
    const closed = new Promise((resolve) => client.once('close', resolve));
    client.stream.destroy();
    await within(closed, 'the connection closed');
    const err = await client.publish('x', 'y').then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    assert.ok(err !== undefined, 'the publish failed');
    assert.equal(generic(err.message), true, err.message);
  } finally {
    client.disconnect();
    await redis.stop();
  }
});
