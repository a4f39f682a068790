/**
 * The Redis engine's liveness and reaping (src/adapters/redis-reaper.ts) on a real 3-master Redis Cluster with one master
 * down: nodes made of a RedisMembership and a reaper on a Cluster client set up as the engine's (no offline queue, a
 * command fails after 1 s), ticked every third of the TTL as the adapter does. Each beat reads one epoch key per master;
 * the read of the down master's waits for that 1 s before it fails. A beat that waited for it came late (with this TTL,
 * every beat: past half a TTL after the one before), and a node judging its own beats late reaps no one; so a dead node
 * was not reaped while any shard was down. The down master is one that holds none of the keys the nodes and the reap use
 * (their liveness keys, the node list, the dead node's indexes, lock and channel) but one live node's liveness key.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Cluster, Redis } from 'ioredis';
import { createReaper } from '../../src/adapters/redis-reaper.js';
import { RedisKeys } from '../../src/adapters/redis-keys.js';
import { RedisMembership } from '../../src/adapters/redis-membership.js';
import { engineClusterClient, slotMasters, startRedisCluster, type RedisClusterServer } from '../helpers/redis-cluster.js';
import { eventually, until } from '../helpers/wait.js';

const TTL_MS = 1500;
const BEAT_MS = TTL_MS / 3;
/** The engine's command timeout (redis-adapter.ts): how long the read of a down master's key waits before it fails. */
const COMMAND_TIMEOUT_MS = 1000;
/** The documented bound for a crash (nodeTtlMs + nodeTtlMs / 3) leaves the scripts' time and timer lateness to this. */
const SLACK_MS = 400;

let cluster: RedisClusterServer;
before(async () => {
  cluster = await startRedisCluster();
});
after(async () => {
  await cluster?.stop();
});

/** A Cluster client as the engine makes one, up. */
const engineClient = (): Promise<Cluster> => engineClusterClient(cluster, COMMAND_TIMEOUT_MS);

interface Line {
  by: string;
  /** Date.now() when written. */
  at: number;
  event: string;
  [field: string]: unknown;
}

interface Node {
  id: string;
  membership: RedisMembership;
  /** Ticks completed since start. */
  ticks(): number;
  /** Ticks now and every third of the TTL. */
  start(): void;
  /** Stops ticking (a crash, as far as the cluster can tell); resolves once the ticks in flight are over. */
  stop(): Promise<void>;
  /** What each call of its reaper's `expired` said (`dataLost`). */
  expired: boolean[];
  close(): Promise<void>;
}

async function node(id: string, keys: RedisKeys, lines: Line[]): Promise<Node> {
  const client = await engineClient();
  const membership = new RedisMembership(client, keys, id, 'SPUBLISH');
  const capture = (line: unknown): void => void lines.push({ by: id, at: Date.now(), ...(line as { event: string }) });
  const expired: boolean[] = [];
  const reaper = createReaper({
    client,
    keys,
    membership,
    logger: { info: capture, warn: capture },
    nodeId: id,
    nodeTtlMs: TTL_MS,
    reaped: () => undefined,
    expired: (dataLost) => void expired.push(dataLost),
  });
  let ticks = 0;
  let timer: NodeJS.Timeout | undefined;
  const inflight = new Set<Promise<void>>();
  const run = (): void => {
    const t = reaper.tick().then(() => void ticks++);
    inflight.add(t);
    void t.then(() => inflight.delete(t));
  };
  const n: Node = {
    id,
    membership,
    ticks: () => ticks,
    start() {
      run();
      timer = setInterval(run, BEAT_MS);
    },
    async stop() {
      clearInterval(timer);
      await Promise.all([...inflight]);
    },
    expired,
    async close() {
      await n.stop();
      client.disconnect();
    },
  };
  return n;
}

/** Waits until `n` has completed `count` more ticks than it had when called. */
function moreTicks(n: Node, count: number, what: string): Promise<void> {
  const from = n.ticks();
  return until(() => n.ticks() >= from + count, `${count} more ticks of ${n.id} (${what})`);
}

const reaps = (lines: Line[]): Line[] => lines.filter((l) => l.event === 'node_reaped');

test('a master down: a dead node is still reaped within its TTL plus a beat; a live node whose key is there is left; a loss still counts', async () => {
  const admin = new Cluster(cluster.nodes);
  admin.on('error', () => undefined);
  const lines: Line[] = [];
  const nodes: Node[] = [];
  try {
    const { masterOf, masters } = await slotMasters(admin);
    assert.equal(masters.size, 3);
    // A prefix under which every key A's beats and its reap of B use leaves one master out: that one goes down.
    const ROOM = 'presence-room';
    const needed = (keys: RedisKeys): string[] => [
      keys.node('a'),
      keys.node('b'),
      keys.nodes,
      keys.reapLock('b'),
      keys.nodeChannels('b'),
      keys.nodeApps('b'),
      keys.channel('a1', ROOM).state,
      keys.appChannels('a1'),
    ];
    let keys: RedisKeys | undefined;
    let down: string | undefined;
    for (let i = 0; down === undefined && i < 10_000; i++) {
      keys = new RedisKeys(`shard-down${i}`);
      const used = new Set(needed(keys).map(masterOf));
      down = [...masters].find((m) => !used.has(m));
    }
    assert.ok(keys !== undefined && down !== undefined, 'a prefix that leaves a master out');
    // A live node whose liveness key is on that master: once it is down, no one can tell whether that node is alive.
    let ghost = '';
    for (let i = 0; ghost === '' || masterOf(keys.node(ghost)) !== down; i++) ghost = `ghost${i}`;
    await admin.set(keys.node(ghost), '1', 'PX', 120_000);
    await admin.sadd(keys.nodes, ghost);

    const [a, b, c] = await Promise.all([node('a', keys, lines), node('b', keys, lines), node('c', keys, lines)]);
    nodes.push(a, b, c);
    await b.membership.join('a1', ROOM, 'b.1', { userId: 'bob', userInfo: {} }, 0);
    await c.membership.join('a1', 'presence-c', 'c.1', { userId: 'carol', userInfo: {} }, 0);
    a.start();
    b.start();
    c.start();
    // Beating for longer than a TTL: the survivors reap as soon as a key expires.
    await Promise.all([moreTicks(a, 4, 'established'), moreTicks(b, 4, 'established')]);

    // 1. Every master up: C stops beating and is reaped within nodeTtlMs + nodeTtlMs / 3 (+ the scripts' time).
    let stoppedAt = Date.now();
    await c.stop();
    await until(() => reaps(lines).length === 1, 'the reap of C', TTL_MS + BEAT_MS + 3000);
    assert.equal(reaps(lines)[0]?.dead_node, 'c');
    assert.ok(reaps(lines)[0]!.at - stoppedAt <= TTL_MS + BEAT_MS + SLACK_MS, `C reaped ${reaps(lines)[0]!.at - stoppedAt} ms after it stopped`);

    // 2. The master goes down (the others keep serving their slots, as a deployment that keeps running on a shard down
    // is set up to). A, then B, have had a beat whose read of its epoch key waited the command timeout.
    for (const { host, port } of cluster.nodes) {
      const shard = new Redis({ host, port, retryStrategy: () => null });
      shard.on('error', () => undefined);
      try {
        await shard.config('SET', 'cluster-require-full-coverage', 'no');
        if (`${host}:${port}` === down) await shard.call('SHUTDOWN', 'NOSAVE').catch(() => undefined);
      } finally {
        shard.disconnect();
      }
    }
    const downAt = Date.now();
    await Promise.all([moreTicks(a, 2, 'with the master down'), moreTicks(b, 2, 'with the master down')]);
    assert.ok(Date.now() - downAt >= COMMAND_TIMEOUT_MS, 'a tick waited for the read of the down master');

    // B stops beating: A reaps it within the same bound, its beats on time though each one's read of the down master fails.
    stoppedAt = Date.now();
    await b.stop();
    await until(() => reaps(lines).length === 2, 'the reap of B with a master down', TTL_MS + BEAT_MS + 3000);
    const reapB = reaps(lines)[1]!;
    assert.deepEqual([reapB.by, reapB.dead_node, reapB.members_removed], ['a', 'b', 1]);
    assert.ok(reapB.at - stoppedAt <= TTL_MS + BEAT_MS + SLACK_MS, `B reaped ${reapB.at - stoppedAt} ms after it stopped`);
    assert.deepEqual(await a.membership.counts('a1', ROOM), { subscriptionCount: 0, userCount: 0 });
    // The node whose key is on the down master is neither reaped nor in the way of the others' reaps.
    assert.deepEqual((await admin.smembers(keys.nodes)).sort(), ['a', ghost]);
    // No beat of A failed, and no read that failed counted as a loss.
    assert.deepEqual(
      lines.filter((l) => l.by === 'a' && l.event !== 'node_reaped').map((l) => l.event),
      [],
    );
    assert.deepEqual(a.expired, []);

    // 3. The master of A's key loses its data meanwhile: A's next beat finds its key gone and that shard's epoch changed,
    // and says so once, as a loss (its share restored silently), though the read of the down master still fails.
    const [host, port] = masterOf(keys.node('a')).split(':');
    const shard = new Redis({ host, port: Number(port) });
    try {
      await shard.flushall();
    } finally {
      shard.disconnect();
    }
    await until(() => a.expired.length > 0, "A's reaper says its share is gone", BEAT_MS + COMMAND_TIMEOUT_MS + 3000);
    assert.equal(a.expired[0], true, 'a loss, not a reap');
    await eventually(async () => (await admin.exists(keys.node('a'))) === 1, "A's key set again");
  } finally {
    admin.disconnect();
    await Promise.all(nodes.map((n) => n.close()));
  }
});
