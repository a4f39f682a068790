/**
 * One master of a real 3-master Redis Cluster killed under a Beacon node (ADAPTER=redis, REDIS_CLUSTER_NODES): the HTTP
 * API refuses publishes to the channels of that shard with the 503 it answers while the whole engine is down (counted
 * `engine_unavailable`), a publish that names several channels or a batch refused whole if any of them is there, while
 * the channels of the other shards are delivered and `/readyz` stays 200; once the master is back, its channels are
 * published and delivered again. Each transition is logged once (`adapter_shard_down`, `adapter_shard_up`).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { exportedMetrics } from '../helpers/exported-metrics.js';
import { sumOf } from '../helpers/exposition.js';
import { loggedOnce, logLines } from '../helpers/logs.js';
import { RawClient } from '../helpers/raw-client.js';
import { clusterSlots, startRedisCluster, type RedisClusterServer } from '../helpers/redis-cluster.js';
import { APP, startServer } from '../helpers/server.js';
import { signedFetch } from '../helpers/signed-fetch.js';
import { until } from '../helpers/wait.js';

const EVENTS = `/apps/${APP.id}/events`;
const BATCH = `/apps/${APP.id}/batch_events`;
const UNAVAILABLE = { error: 'Cluster engine unavailable; retry' };

let cluster: RedisClusterServer;
before(async () => {
  // The other shards keep serving while one is down (by default a cluster refuses everything once it marks a master failed).
  cluster = await startRedisCluster({ 'cluster-require-full-coverage': 'no' });
});
after(async () => {
  await cluster?.stop();
});

const body = (value: unknown): { body: string } => ({ body: JSON.stringify(value) });

test('a master down: publishes to its channels get 503 and are counted, the others are delivered; back, they are carried again', { timeout: 60_000 }, async () => {
  const observed = await exportedMetrics();
  const server = await startServer({ ADAPTER: 'redis', REDIS_CLUSTER_NODES: cluster.env, NODE_ID: 'shard' }, { metrics: observed.metrics });
  const refused = async (): Promise<number> => sumOf(await observed.scrape(), 'websocket_api_refusals_total', { reason: 'engine_unavailable' });
  try {
    await until(() => server.app.adapter.status().up, 'the cluster engine up', 10_000);
    const { masterOf, channelOn } = await clusterSlots(cluster);
    // The master to kill does not hold the node list. (Its liveness key may be there: a beat failing meanwhile changes
    // nothing this test looks at.)
    const kept = new Set([masterOf('beacon:nodes')]);
    const victim = cluster.nodes.map((n) => `${n.host}:${n.port}`).find((m) => !kept.has(m))!;
    const down = channelOn(APP.id, 'down', (m) => m === victim);
    const up = channelOn(APP.id, 'up', (m) => m !== victim);

    const { client } = await RawClient.established(server.port);
    client.answerPings();
    for (const channel of [down, up]) {
      client.send({ event: 'pusher:subscribe', data: { channel } });
      await client.next((f) => f.event === 'pusher_internal:subscription_succeeded' && f.channel === channel);
    }
    // Both shards carry events before the kill.
    for (const channel of [down, up]) {
      assert.equal((await signedFetch(server, 'POST', EVENTS, body({ name: 'before', channel, data: '{}' }))).status, 200);
      await client.next((f) => f.event === 'before' && f.channel === channel);
    }

    const victimPort = Number(victim.split(':')[1]);
    await cluster.kill(victimPort);
    const downLine = await loggedOnce(server, { event: 'adapter_shard_down', shard: victim });
    assert.equal(downLine.level, 'warn');
    const before = await refused();

    // (a) A publish to the down shard's channel: the engine-down answer, so the backend retries.
    const a = await signedFetch(server, 'POST', EVENTS, body({ name: 'a', channel: down, data: '{}' }));
    assert.deepEqual([a.status, a.body, a.headers.get('retry-after')], [503, UNAVAILABLE, '1']);
    // One event on several channels, one of them down: refused whole (nothing published on the other).
    const several = await signedFetch(server, 'POST', EVENTS, body({ name: 'a', channels: [up, down], data: '{}' }));
    assert.deepEqual([several.status, several.body], [503, UNAVAILABLE]);

    // (b) A channel of another shard is carried, and the node still reads as ready and up.
    const b = await signedFetch(server, 'POST', EVENTS, body({ name: 'b', channel: up, data: '{}' }));
    assert.deepEqual([b.status, b.body], [200, {}]);
    await client.next((f) => f.event === 'b' && f.channel === up);
    assert.equal((await fetch(`http://127.0.0.1:${server.port}/readyz`)).status, 200);
    assert.equal(server.app.adapter.status().up, true);

    // (c) A batch mixing both shards: refused whole. A marker published after it on the same channel (one publisher's
    // events on a channel arrive in order) shows that nothing of it was delivered.
    const c = await signedFetch(server, 'POST', BATCH, body({ batch: [{ name: 'c', channel: up, data: '{}' }, { name: 'c', channel: down, data: '{}' }] }));
    assert.deepEqual([c.status, c.body], [503, UNAVAILABLE]);
    assert.equal((await signedFetch(server, 'POST', EVENTS, body({ name: 'marker', channel: up, data: '{}' }))).status, 200);
    await client.next((f) => f.event === 'marker' && f.channel === up);
    assert.deepEqual([client.all('a').length, client.all('c').length], [0, 0]);
    assert.equal((await refused()) - before, 3);

    // (d) The master restarts (empty, same node id and slots from its nodes.conf): the shard is up again, logged once,
    // and its channel is published and delivered.
    cluster.restart(victimPort);
    // Seen at the first probe of the down shard (every second) once redis-server listens: allow for its start.
    await until(() => logLines(server, { event: 'adapter_shard_up' }).length > 0, 'adapter_shard_up', 10_000);
    const upLines = logLines(server, { event: 'adapter_shard_up' });
    assert.deepEqual(upLines.map((l) => [l.level, l.shard]), [['info', victim]]);
    // Every publish is accepted again. The node's own subscriber connection to that master may still be reconnecting
    // (ioredis backs off up to ~2.5 s), and what it misses meanwhile is lost (counted as a gap): published until one is
    // delivered, each answered 200 (bounded: 40 × 500 ms).
    let delivered = false;
    for (let i = 0; i < 40 && !delivered; i++) {
      const d = await signedFetch(server, 'POST', EVENTS, body({ name: 'd', channel: down, data: '{}' }));
      assert.deepEqual([d.status, d.body], [200, {}]);
      delivered = await client.next((f) => f.event === 'd' && f.channel === down, 500).then(() => true, () => false);
    }
    assert.ok(delivered, 'a publish to the shard back was delivered');
    assert.equal(logLines(server, { event: 'adapter_shard_down' }).length, 1);
    assert.equal(logLines(server, { event: 'adapter_shard_up' }).length, 1);
    await client.close();
  } finally {
    await server.close();
    await observed.close();
  }
});
