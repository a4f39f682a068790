/**
 * One master of a real 3-master Redis Cluster killed under a Beacon node (ADAPTER=redis, REDIS_CLUSTER_NODES): a client
 * event on a channel of that shard is not sent to it but dropped at once, counted in
 * `websocket_adapter_dropped_total{reason="down"}` (never `error` or `timeout`: a publish sent to the dead master would
 * be counted so, after the 1 s command timeout), while a client event on a channel of a live shard is delivered as usual.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { exportedMetrics } from '../helpers/exported-metrics.js';
import { sumOf } from '../helpers/exposition.js';
import { loggedOnce } from '../helpers/logs.js';
import { RawClient } from '../helpers/raw-client.js';
import { clusterSlots, startRedisCluster, type RedisClusterServer } from '../helpers/redis-cluster.js';
import { APP, startServer, type TestServer } from '../helpers/server.js';
import { eventually, until } from '../helpers/wait.js';

let cluster: RedisClusterServer;
before(async () => {
  // The other shards keep serving while one is down (by default a cluster refuses everything once it marks a master failed).
  cluster = await startRedisCluster({ 'cluster-require-full-coverage': 'no' });
});
after(async () => {
  await cluster?.stop();
});

/** A client connected and subscribed (authorized) to each of `channels`. */
async function subscriber(server: TestServer, channels: string[]): Promise<RawClient> {
  const sdk = server.sdk();
  const { client, socketId } = await RawClient.established(server.port);
  client.answerPings();
  for (const channel of channels) {
    client.send({ event: 'pusher:subscribe', data: { channel, ...sdk.authorizeChannel(socketId, channel) } });
    await client.next((f) => f.event === 'pusher_internal:subscription_succeeded' && f.channel === channel);
  }
  return client;
}

test('a master down: a client event on its channel is dropped at once as `down`, one on a live shard is delivered', { timeout: 60_000 }, async () => {
  const observed = await exportedMetrics();
  const server = await startServer(
    { ADAPTER: 'redis', REDIS_CLUSTER_NODES: cluster.env, NODE_ID: 'shard-client', APP_ENABLE_CLIENT_EVENTS: 'true' },
    { metrics: observed.metrics },
  );
  const dropped = async (): Promise<{ down: number; error: number; timeout: number }> => {
    const families = await observed.scrape();
    const of = (reason: string): number => sumOf(families, 'websocket_adapter_dropped_total', { reason });
    return { down: of('down'), error: of('error'), timeout: of('timeout') };
  };
  try {
    await until(() => server.app.adapter.status().up, 'the cluster engine up', 10_000);
    const { masterOf, channelOn } = await clusterSlots(cluster);
    // The master to kill does not hold the node list.
    const kept = new Set([masterOf('beacon:nodes')]);
    const victim = cluster.nodes.map((n) => `${n.host}:${n.port}`).find((m) => !kept.has(m))!;
    const down = channelOn(APP.id, 'private-down', (m) => m === victim);
    const up = channelOn(APP.id, 'private-up', (m) => m !== victim);

    const sender = await subscriber(server, [down, up]);
    const receiver = await subscriber(server, [down, up]);
    // Both shards carry client events before the kill.
    for (const channel of [down, up]) {
      sender.send({ event: 'client-before', channel, data: {} });
      await receiver.next((f) => f.event === 'client-before' && f.channel === channel);
    }

    await cluster.kill(Number(victim.split(':')[1]));
    await loggedOnce(server, { event: 'adapter_shard_down', shard: victim });
    const start = await dropped();

    // (a) A client event on the down shard's channel: dropped at once, counted `down`, never sent (no error, no timeout).
    const sent = performance.now();
    sender.send({ event: 'client-lost', channel: down, data: {} });
    let moved = start;
    // Bounded past the 1 s command timeout, so that what a publish sent to the dead master gets is seen (and printed).
    await eventually(
      async () => {
        moved = await dropped();
        return moved.down !== start.down || moved.error !== start.error || moved.timeout !== start.timeout;
      },
      'the client event to the down shard counted as dropped',
      3000,
    );
    const elapsed = Math.round(performance.now() - sent);
    const got = { down: moved.down - start.down, error: moved.error - start.error, timeout: moved.timeout - start.timeout };
    console.log(`client event to the down shard: dropped counted ${JSON.stringify(got)} after ${elapsed} ms`);
    assert.deepEqual(got, { down: 1, error: 0, timeout: 0 });

    // (b) A client event on a live shard's channel is delivered, and counted nowhere as dropped.
    sender.send({ event: 'client-live', channel: up, data: { n: 1 } });
    const live = await receiver.next((f) => f.event === 'client-live' && f.channel === up);
    assert.deepEqual(live.data, { n: 1 });
    assert.equal(receiver.all('client-lost').length, 0);
    const end = await dropped();
    assert.deepEqual(
      { down: end.down - start.down, error: end.error - start.error, timeout: end.timeout - start.timeout },
      { down: 1, error: 0, timeout: 0 },
    );
    assert.equal(server.app.adapter.status().up, true);
    await sender.close();
    await receiver.close();
  } finally {
    await server.close();
    await observed.close();
  }
});
