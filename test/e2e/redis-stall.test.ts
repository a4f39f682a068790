/**
 * A Redis that stops answering with its connection open (a SIGSTOPped redis-server) under a Beacon node (ADAPTER=redis):
 * once a publish got no answer in the command timeout, the HTTP API refuses publishes to that Redis — on a Redis Cluster,
 * to that master's channels only — with the engine-down 503 (counted `engine_unavailable`), logged once
 * (`adapter_stalled`). With the backlog far under the congestion bound nothing else refused them, so a Redis killed in
 * that state lost every publish accepted meanwhile. Once Redis reads again, the stall ends (`adapter_stall_ended`), the
 * publish sent into it is carried late, and publishes are accepted again.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { exportedMetrics } from '../helpers/exported-metrics.js';
import { sumOf } from '../helpers/exposition.js';
import { loggedOnce, logLines } from '../helpers/logs.js';
import { RawClient } from '../helpers/raw-client.js';
import { startRedis } from '../helpers/redis.js';
import { clusterSlots, startRedisCluster } from '../helpers/redis-cluster.js';
import { APP, startServer } from '../helpers/server.js';
import { signedFetch } from '../helpers/signed-fetch.js';
import { until } from '../helpers/wait.js';

const EVENTS = `/apps/${APP.id}/events`;
const UNAVAILABLE = { error: 'Cluster engine unavailable; retry' };
const body = (value: unknown): { body: string } => ({ body: JSON.stringify(value) });

interface StallCase {
  /** The node's engine variables. */
  env: Record<string, string>;
  /** The channel on the Redis that is frozen, and (a cluster) one on a master that is not. */
  frozenChannel: string;
  liveChannel?: string;
  /** The `shard` its log lines name. */
  shard: string;
  freeze(frozen: boolean): void;
}

/** The scenario of the module comment, on one Redis or one master of a cluster. */
async function publishThroughStall(c: StallCase): Promise<void> {
  const observed = await exportedMetrics();
  const server = await startServer(c.env, { metrics: observed.metrics });
  const refused = async (): Promise<number> => sumOf(await observed.scrape(), 'websocket_api_refusals_total', { reason: 'engine_unavailable' });
  const publish = (name: string, channel: string) => signedFetch(server, 'POST', EVENTS, body({ name, channel, data: '{}' }));
  const channels = [c.frozenChannel, ...(c.liveChannel === undefined ? [] : [c.liveChannel])];
  try {
    await until(() => server.app.adapter.status().up, 'the cluster engine up', 10_000);
    const { client } = await RawClient.established(server.port);
    client.answerPings();
    for (const channel of channels) {
      client.send({ event: 'pusher:subscribe', data: { channel } });
      await client.next((f) => f.event === 'pusher_internal:subscription_succeeded' && f.channel === channel);
      assert.equal((await publish('before', channel)).status, 200);
      await client.next((f) => f.event === 'before' && f.channel === channel);
    }
    const before = await refused();

    c.freeze(true);
    try {
      // Accepted: nothing says yet that Redis stopped answering. Its command times out a second later.
      const first = await publish('first', c.frozenChannel);
      assert.deepEqual([first.status, first.body], [200, {}]);
      const stalled = await loggedOnce(server, { event: 'adapter_stalled' });
      assert.deepEqual([stalled.level, stalled.shard, stalled.timeout_ms], ['warn', c.shard, 1000]);

      // Refused, so the backend retries it rather than have it lost with a Redis that may never answer again.
      const second = await publish('second', c.frozenChannel);
      assert.deepEqual([second.status, second.body, second.headers.get('retry-after')], [503, UNAVAILABLE, '1']);
      assert.equal((await refused()) - before, 1);
      if (c.liveChannel !== undefined) {
        // Another master's channel is carried as usual.
        const live = await publish('live', c.liveChannel);
        assert.deepEqual([live.status, live.body], [200, {}]);
        await client.next((f) => f.event === 'live' && f.channel === c.liveChannel);
      }
      // The engine is not down and the node still serves its connections.
      assert.equal(server.app.adapter.status().up, true);
      assert.equal((await fetch(`http://127.0.0.1:${server.port}/readyz`)).status, 200);
      assert.equal(logLines(server, { event: 'adapter_stall_ended' }).length, 0);
    } finally {
      c.freeze(false);
    }

    // Redis reads again: the stall ends once (its probe or a publish answered), the publish sent into it arrives late.
    const ended = await loggedOnce(server, { event: 'adapter_stall_ended' });
    assert.deepEqual([ended.level, ended.shard], ['info', c.shard]);
    assert.ok(Number(ended.stalled_for_ms) > 0, `stalled_for_ms ${String(ended.stalled_for_ms)}`);
    await client.next((f) => f.event === 'first');
    const after = await publish('after', c.frozenChannel);
    assert.deepEqual([after.status, after.body], [200, {}]);
    await client.next((f) => f.event === 'after');
    assert.equal(client.all('second').length, 0);
    assert.equal(logLines(server, { event: 'adapter_stalled' }).length, 1);
    await client.close();
  } finally {
    await server.close();
    await observed.close();
  }
}

test('one Redis that stops answering: publishes refused with 503 once one timed out; accepted again once it answers', { timeout: 60_000 }, async () => {
  const redis = await startRedis();
  try {
    await publishThroughStall({
      env: { ADAPTER: 'redis', REDIS_URL: redis.url, NODE_ID: 'stall' },
      frozenChannel: 'news',
      shard: 'redis',
      freeze: (frozen) => redis.freeze(frozen),
    });
  } finally {
    await redis.stop();
  }
});

test('a Redis Cluster master that stops answering: its channels refused with 503, the others carried; back, accepted again', { timeout: 60_000 }, async () => {
  const cluster = await startRedisCluster();
  try {
    const { masterOf, channelOn } = await clusterSlots(cluster);
    // The master frozen does not hold the node list (a beat failing meanwhile changes nothing looked at here).
    const victim = cluster.nodes.map((n) => `${n.host}:${n.port}`).find((m) => m !== masterOf('beacon:nodes'))!;
    const port = Number(victim.split(':')[1]);
    await publishThroughStall({
      env: { ADAPTER: 'redis', REDIS_CLUSTER_NODES: cluster.env, NODE_ID: 'stall-shard' },
      frozenChannel: channelOn(APP.id, 'frozen', (m) => m === victim),
      liveChannel: channelOn(APP.id, 'live', (m) => m !== victim),
      shard: victim,
      freeze: (frozen) => cluster.freeze(port, frozen),
    });
  } finally {
    await cluster.stop();
  }
});
