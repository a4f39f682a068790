/**
 * A real 3-master Redis Cluster with its default `cluster-require-full-coverage yes` (and a 1 s `cluster-node-timeout`)
 * loses a master that has no replica: once the cluster marks it failed, it refuses every keyed command (CLUSTERDOWN),
 * the other shards' too, but Redis 7 keeps sharded pub/sub working (`cluster-allow-pubsubshard-when-down yes`). What
 * Beacon (ADAPTER=redis, REDIS_CLUSTER_NODES) does then, as docs/scaling.md says: a publish to a channel of a live
 * master is accepted and delivered, one to the failed master's channel is refused 503 (its shard is down), a new
 * subscription, which must be recorded, and a channel query are refused with 503, the heartbeat fails, and `/readyz`
 * stays 200.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { loggedOnce, logLines } from '../helpers/logs.js';
import { RawClient } from '../helpers/raw-client.js';
import { slotMasters, startRedisCluster, type RedisClusterServer } from '../helpers/redis-cluster.js';
import { APP, startServer } from '../helpers/server.js';
import { signedFetch } from '../helpers/signed-fetch.js';
import { eventually, until } from '../helpers/wait.js';

const run = promisify(execFile);
const EVENTS = `/apps/${APP.id}/events`;
const UNAVAILABLE = { error: 'Cluster engine unavailable; retry' };

let cluster: RedisClusterServer;
before(async () => {
  // A master is marked failed 1 s after it stops answering (15 s by default), and the cluster then refuses every slot.
  cluster = await startRedisCluster({ 'cluster-node-timeout': '1000' });
});
after(async () => {
  await cluster?.stop();
});

const body = (value: unknown): { body: string } => ({ body: JSON.stringify(value) });

test('a cluster that refuses every slot (CLUSTERDOWN): live shards still publish and deliver, the lost one 503, new subscriptions 503', { timeout: 60_000 }, async () => {
  // A subscription is tried again for 1 s, not the default 20 s, before it is refused: this cluster refuses for good.
  const server = await startServer({ ADAPTER: 'redis', REDIS_CLUSTER_NODES: cluster.env, NODE_ID: 'refusing', SUBSCRIBE_RETRY_MS: '1000' });
  try {
    await until(() => server.app.adapter.status().up, 'the cluster engine up', 10_000);
    const admin = new Redis(cluster.nodes[0]!);
    const { masterOf, channelOn } = await slotMasters(admin).finally(() => admin.disconnect());
    const victim = cluster.nodes.map((n) => `${n.host}:${n.port}`).find((m) => m !== masterOf('beacon:nodes'))!;
    const live = cluster.nodes.find((n) => `${n.host}:${n.port}` !== victim)!;
    const kept = channelOn(APP.id, 'kept', (m) => m !== victim);
    const lost = channelOn(APP.id, 'lost', (m) => m === victim);
    const later = channelOn(APP.id, 'later', (m) => m !== victim);

    const { client } = await RawClient.established(server.port);
    client.answerPings();
    client.send({ event: 'pusher:subscribe', data: { channel: kept } });
    await client.next((f) => f.event === 'pusher_internal:subscription_succeeded' && f.channel === kept);

    await cluster.kill(Number(victim.split(':')[1]));
    await loggedOnce(server, { event: 'adapter_shard_down', shard: victim });
    const state = async (): Promise<string> => (await run('redis-cli', ['-p', String(live.port), 'cluster', 'info'])).stdout;
    await eventually(async () => (await state()).includes('cluster_state:fail'), 'the cluster refusing every slot', 15_000, 100);

    // Sharded pub/sub still works on the live masters: accepted, and delivered.
    const kept1 = await signedFetch(server, 'POST', EVENTS, body({ name: 'kept', channel: kept, data: '{}' }));
    assert.deepEqual([kept1.status, kept1.body], [200, {}]);
    await client.next((f) => f.event === 'kept' && f.channel === kept);
    // The failed master's channel: its shard is down.
    const lost1 = await signedFetch(server, 'POST', EVENTS, body({ name: 'lost', channel: lost, data: '{}' }));
    assert.deepEqual([lost1.status, lost1.body], [503, UNAVAILABLE]);
    // A subscription is recorded in keys, which the cluster refuses: 503 once SUBSCRIBE_RETRY_MS is over.
    client.send({ event: 'pusher:subscribe', data: { channel: later } });
    const refused = await client.next((f) => f.event === 'pusher:subscription_error' && f.channel === later, 10_000);
    assert.equal((refused.data as { status: number }).status, 503);
    // A channel query needs keys too; the heartbeat fails (said once).
    const query = await signedFetch(server, 'GET', `/apps/${APP.id}/channels/${kept}`);
    assert.equal(query.status, 503);
    await until(() => logLines(server, { event: 'node_heartbeat_failed' }).length === 1, 'node_heartbeat_failed', 10_000);
    assert.equal((await fetch(`http://127.0.0.1:${server.port}/readyz`)).status, 200);
    assert.ok((await state()).includes('cluster_state:fail'), 'the cluster still refused meanwhile');
    await client.close();
  } finally {
    await server.close();
  }
});
