/**
 * The Redis adapter on a real 3-master Redis Cluster (started by the test from redis-server on loopback ports): the shared
 * contract suite, and two nodes seeing one presence membership and each other's sharded publications.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Cluster, Redis } from 'ioredis';
import type { Envelope } from '../../src/adapters/envelope.js';
import { createRedisAdapter, type RedisAdapter } from '../../src/adapters/redis-adapter.js';
import { RedisKeys } from '../../src/adapters/redis-keys.js';
import { noAdapterMetrics, quietLogger } from '../helpers/redis-adapter-deps.js';
import { slotMasters, startRedisCluster, type RedisClusterServer } from '../helpers/redis-cluster.js';
import { eventually, until, within } from '../helpers/wait.js';
import { adapterContract } from './adapter-contract.js';
import { reapWithoutCountCase } from './reap-count.js';

let cluster: RedisClusterServer;
before(async () => {
  cluster = await startRedisCluster();
});
after(async () => {
  await cluster?.stop();
});

let prefixes = 0;

function make(extra: Partial<Parameters<typeof createRedisAdapter>[0]> = {}): RedisAdapter {
  return createRedisAdapter({
    metrics: noAdapterMetrics,
    logger: quietLogger,
    url: 'redis://unused',
    clusterNodes: cluster.nodes,
    nodeId: 'n',
    cacheTtlMs: 1000,
    appIds: ['a1'],
    ...extra,
  });
}

adapterContract('redis cluster adapter', async (clock, cacheTtlMs, countsSubscriptions) => {
  const adapter = make({ cacheTtlMs, now: clock.now, prefix: `cc${prefixes++}`, countsSubscriptions });
  await within(adapter.ready(), 'the redis cluster adapter to be up', 10_000);
  return adapter;
});

test('redis cluster adapter: a user on two nodes is one member; sharded publications reach both nodes', async () => {
  const a = make({ prefix: 'pair' });
  const b = make({ prefix: 'pair' });
  try {
    await within(Promise.all([a.ready(), b.ready()]), 'both adapters up', 10_000);
    const atB: Envelope[] = [];
    b.onEnvelope((e) => atB.push(e));
    const u = { userId: 'u', userInfo: null };
    const first = await a.join('a1', 'presence-x', '1.1', u, 0);
    const second = await b.join('a1', 'presence-x', '2.1', u, 0);
    assert.equal(first.memberAdded, true);
    assert.equal(second.memberAdded, false);
    assert.deepEqual(await a.channel('a1', 'presence-x'), { subscriptionCount: 2, userCount: 1 });
    for (const channel of ['c1', 'c2', 'c3', 'c4']) await b.join('a1', channel, '2.1', null, 0);
    for (const channel of ['c1', 'c2', 'c3', 'c4']) {
      a.publish({ appId: 'a1', channel, event: 'e', data: channel, userId: undefined, excludeSocketId: undefined, kind: 'channel_event', trace: undefined, publishedAt: 1 });
    }
    await until(() => atB.filter((e) => e.event === 'e').length === 4, 'the four publications on B');
    assert.deepEqual((await a.leave('a1', 'presence-x', '1.1', u)).memberRemoved, false);
    assert.deepEqual(await b.leave('a1', 'presence-x', '2.1', u), { memberRemoved: true, vacated: true, count: undefined, removedUserId: 'u' });
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});

reapWithoutCountCase('redis cluster adapter', make, 10_000);

/**
 * Resolves once `node` has beaten twice from now (its key's TTL set again twice): the second beat starts once the first
 * one's reply was handled, so the node holds the epoch ids and run ids of a read made after this was called.
 */
async function beatTwice(admin: Cluster, prefix: string, node: string): Promise<void> {
  let last = Number.POSITIVE_INFINITY;
  let rises = 0;
  await eventually(
    async () => {
      const ttl = await admin.pttl(`${prefix}:node:${node}`);
      if (ttl > last) rises++;
      last = ttl;
      return rises >= 2;
    },
    `two beats of ${node}`,
  );
}

test('redis cluster adapter: a shard restarted from an older snapshot is pruned: members that left since are removed and announced', async () => {
  // The shard of the channel saves a snapshot, two members leave, the shard restarts from the snapshot: the members are
  // back in it, recorded for nodes that live. Each node sees its master's run id change beside the same epoch.
  const admin = new Cluster(cluster.nodes);
  const lines: Record<string, unknown>[] = [];
  const logger = { info: (o: Record<string, unknown>) => lines.push(o), warn: (o: Record<string, unknown>) => lines.push(o) };
  const prefix = `snapshot${prefixes++}`;
  const a = make({ prefix, nodeId: 'ra', nodeTtlMs: 900, logger: logger as never });
  const b = make({ prefix, nodeId: 'rb', nodeTtlMs: 900, logger: logger as never });
  try {
    await within(Promise.all([a.ready(), b.ready()]), 'both adapters up', 10_000);
    const { masterOf } = await slotMasters(admin);
    const channel = 'presence-snapshot';
    const master = masterOf(`{a1:${channel}}`);
    const removed: string[] = [];
    a.onEnvelope((e) => e.channel === channel && e.event === 'pusher_internal:member_removed' && removed.push(e.data));
    await a.join('a1', channel, '1.1', { userId: 'u1', userInfo: null }, 0);
    await a.join('a1', channel, '1.2', { userId: 'u2', userInfo: null }, 0);
    await b.join('a1', channel, '2.1', { userId: 'u3', userInfo: null }, 0);
    await Promise.all([beatTwice(admin, prefix, a.nodeId), beatTwice(admin, prefix, b.nodeId)]);
    await admin.nodes('master').find((n) => `${n.options.host}:${n.options.port}` === master)!.save();
    await a.leave('a1', channel, '1.2', { userId: 'u2', userInfo: null });
    await b.leave('a1', channel, '2.1', { userId: 'u3', userInfo: null });
    // The leaves' own removals are in before the count starts: one reaching A after it was cleared made three (CI, 1 in 2
    // runs with the cores busy).
    await until(() => removed.length === 2, "the leaves' member_removed");
    removed.length = 0;

    const port = Number(master.split(':')[1]);
    await cluster.kill(port);
    cluster.restart(port);
    const pruned = (): Record<string, unknown>[] => lines.filter((l) => l.event === 'node_share_pruned');
    await until(() => new Set(pruned().map((l) => l.node)).size === 2, "both nodes pruned their share", 20_000);
    assert.deepEqual([...(await a.members('a1', channel)).keys()], ['u1']);
    assert.deepEqual(await b.channel('a1', channel), { subscriptionCount: 1, userCount: 1 });
    await until(() => removed.length === 2, 'member_removed of u2 and u3');
    assert.deepEqual(removed.sort(), ['{"user_id":"u2"}', '{"user_id":"u3"}']);
    assert.deepEqual(
      pruned()
        .map((l) => [l.node, l.subscriptions, l.members_removed])
        .sort(),
      [
        [a.nodeId, 1, 1],
        [b.nodeId, 1, 1],
      ],
    );
  } finally {
    admin.disconnect();
    await Promise.all([a.close(), b.close()]);
  }
});

test('redis cluster adapter: a shard that lost its data (holding no node key, listing or old epoch) is restored silently', async () => {
  // The shard of the channel is flushed while the shards of both nodes' keys, the node list and `beacon:epoch` keep
  // theirs: only that shard's epoch key tells the nodes. They record their share again without member_added (every
  // client still holds the members: nobody announced them gone).
  const admin = new Cluster(cluster.nodes);
  const lines: Record<string, unknown>[] = [];
  const logger = { info: (o: Record<string, unknown>) => lines.push(o), warn: (o: Record<string, unknown>) => lines.push(o) };
  // Every adapter made, closed at the end; `a` and `b` the last two.
  const made: RedisAdapter[] = [];
  let a!: RedisAdapter;
  let b!: RedisAdapter;
  try {
    // The slot map, as "host:port" of the master serving each slot.
    const { masterOf, masters } = await slotMasters(admin);
    assert.equal(masters.size, 3);
    // A prefix whose node list and old epoch key share a master, two nodes whose keys leave another master out (node ids
    // end in a random part: new nodes until they do), and a channel on that master.
    let prefix = '';
    for (let i = 0; prefix === '' || masterOf(`${prefix}:nodes`) !== masterOf(`${prefix}:epoch`); i++) prefix = `shard-loss${i}`;
    let wiped: string | undefined;
    while (wiped === undefined) {
      await Promise.all(made.splice(0).map((n) => n.close()));
      a = make({ prefix, nodeId: 'sa', nodeTtlMs: 900, logger: logger as never });
      b = make({ prefix, nodeId: 'sb', nodeTtlMs: 900, logger: logger as never });
      made.push(a, b);
      const kept = new Set([`${prefix}:node:${a.nodeId}`, `${prefix}:node:${b.nodeId}`, `${prefix}:nodes`].map(masterOf));
      wiped = [...masters].find((m) => !kept.has(m));
    }
    let channel = '';
    for (let i = 0; channel === '' || masterOf(`{a1:${channel}}`) !== wiped; i++) channel = `presence-${i}`;
    await within(Promise.all([a.ready(), b.ready()]), 'both adapters up', 10_000);
    const heard = { a: [] as string[], b: [] as string[] };
    a.onEnvelope((e) => e.channel === channel && heard.a.push(e.event === 'e' ? `marker ${e.data}` : e.event));
    b.onEnvelope((e) => e.channel === channel && heard.b.push(e.event === 'e' ? `marker ${e.data}` : e.event));
    await a.join('a1', channel, '1.1', { userId: 'u1', userInfo: null }, 0);
    await a.join('a1', channel, '1.2', { userId: 'u2', userInfo: null }, 0);
    await b.join('a1', channel, '2.1', { userId: 'u2', userInfo: null }, 0);
    await b.join('a1', channel, '2.2', { userId: 'u3', userInfo: null }, 0);
    // A marker on the channel (one shard keeps the order of what it publishes): every event before it is in.
    let markers = 0;
    const roundTrip = async (): Promise<void> => {
      const tag = String(markers++);
      a.publish({ appId: 'a1', channel, event: 'e', data: tag, userId: undefined, excludeSocketId: undefined, kind: 'channel_event', trace: undefined, publishedAt: 1 });
      await until(() => heard.a.includes(`marker ${tag}`) && heard.b.includes(`marker ${tag}`), `marker ${tag} on both nodes`);
    };
    await roundTrip();
    heard.a.length = heard.b.length = 0;
    // Each node holds the ids of a read made before the loss.
    await Promise.all([beatTwice(admin, prefix, a.nodeId), beatTwice(admin, prefix, b.nodeId)]);

    const [host, port] = wiped.split(':');
    const shard = new Redis({ host, port: Number(port) });
    try {
      assert.equal(await shard.exists(`${prefix}:{a1:${channel}}:users`), 1);
      await shard.flushall();
    } finally {
      shard.disconnect();
    }
    const recorded = (): Record<string, unknown>[] =>
      lines.filter((l) => l.event === 'node_share_recorded' && (l.node === a.nodeId || l.node === b.nodeId));
    await until(() => new Set(recorded().map((l) => l.node)).size === 2, "both nodes recorded their share again", 10_000);
    await roundTrip();
    assert.deepEqual(heard, { a: ['marker 1'], b: ['marker 1'] });
    assert.deepEqual([...(await a.members('a1', channel)).keys()].sort(), ['u1', 'u2', 'u3']);
    assert.deepEqual(await b.channel('a1', channel), { subscriptionCount: 4, userCount: 3 });
    assert.deepEqual(
      recorded().map((l) => l.data_lost),
      [true, true],
    );
    assert.equal(lines.filter((l) => l.event === 'node_expired').length, 0);
  } finally {
    admin.disconnect();
    await Promise.all(made.map((n) => n.close()));
  }
});

test('redis cluster adapter: flush resolves when the app\'s watch channel is what this node still listens to on a shard it published to', async () => {
  // A probe: a node on a Redis Cluster that published to a channel and then lost its last subscriber of it took the whole
  // shutdown deadline (10 s, exit 1) in the drain's adapter_flush: the marker went out on the app's watchlist channel, the
  // one channel the node still listened to on that shard, and the watchlist handler dropped it.
  const admin = new Cluster(cluster.nodes);
  const prefix = 'flushwatch';
  const a = make({ prefix });
  try {
    const { masterOf } = await slotMasters(admin);
    const keys = new RedisKeys(prefix);
    const watched = masterOf(keys.users('a1').events);
    let channel = '';
    for (let i = 0; channel === '' || masterOf(keys.channel('a1', channel).events) !== watched; i++) channel = `fw-${i}`;
    await within(a.ready(), 'the adapter up', 10_000);
    await a.join('a1', channel, '1.1', null, 0);
    a.publish({ appId: 'a1', channel, event: 'e', data: '{}', userId: undefined, excludeSocketId: undefined, kind: 'channel_event', trace: undefined, publishedAt: 1 });
    await a.leave('a1', channel, '1.1', null);
    // The node unsubscribes in the next turn; the flush comes after it (the drain's order: connections gone, then flush).
    await until(() => a.listening() === 1, 'only the watch channel listened to');
    await within(a.flush(), 'the flush', 3000);
  } finally {
    await a.close();
    admin.disconnect();
  }
});
