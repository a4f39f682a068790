/**
 * The Redis engine's reaping (src/adapters/redis-reaper.ts, RedisMembership.reap) on a real 3-master Redis Cluster where
 * one shard fails on its own: nodes made of a RedisMembership and a reaper on a Cluster client set up as the engine's (no
 * offline queue, a command fails after 1 s), ticked every third of the TTL as the adapter does.
 * - A master down under some of a dead node's channels: the reap goes on past them, reports what it did remove (the
 *   webhooks' input), leaves the node listed and indexed, and a later attempt finishes it once the shard is back.
 * - A shard that lost its data (flushed, as a master restarted empty) under a live node's liveness key: a survivor that
 *   sees the loss reaps no one until that node has had its turn to beat again; a node that then dies is reaped as usual.
 * The cluster keeps serving the live masters' slots while one is down (`cluster-require-full-coverage no`).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Cluster, Redis } from 'ioredis';
import type { ReapedChannel } from '../../src/adapters/adapter.js';
import { createReaper } from '../../src/adapters/redis-reaper.js';
import { RedisKeys } from '../../src/adapters/redis-keys.js';
import { RedisMembership } from '../../src/adapters/redis-membership.js';
import { engineClusterClient, slotMasters, startRedisCluster, type RedisClusterServer } from '../helpers/redis-cluster.js';
import { until } from '../helpers/wait.js';

const TTL_MS = 1500;
const BEAT_MS = TTL_MS / 3;
/** The engine's command timeout (redis-adapter.ts): how long a command to a down master may wait before it fails. */
const COMMAND_TIMEOUT_MS = 1000;
/** The documented bound for a crash (nodeTtlMs + nodeTtlMs / 3) leaves the scripts' time and timer lateness to this. */
const SLACK_MS = 400;

let cluster: RedisClusterServer;
let admin: Cluster;
before(async () => {
  cluster = await startRedisCluster({ 'cluster-require-full-coverage': 'no' });
  admin = new Cluster(cluster.nodes);
  admin.on('error', () => undefined);
});
after(async () => {
  admin?.disconnect();
  await cluster?.stop();
});

/** A Cluster client as the engine makes one, up. */
const engineClient = (): Promise<Cluster> => engineClusterClient(cluster, COMMAND_TIMEOUT_MS);

interface Line {
  level: 'info' | 'warn';
  by: string;
  /** Date.now() when written. */
  at: number;
  event: string;
  [field: string]: unknown;
}

interface Node {
  id: string;
  membership: RedisMembership;
  /** What its reaper handed on for webhooks, every call's channels in order. */
  reaped: ReapedChannel[];
  /** What each call of its reaper's `expired` said (`dataLost`). */
  expired: boolean[];
  ticks(): number;
  /** One tick now, awaited. */
  tickOnce(): Promise<void>;
  /** Ticks now and every third of the TTL. */
  start(): void;
  /** Stops ticking (a crash, as far as the cluster can tell); resolves once the ticks in flight are over. */
  stop(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Stands between a node and its Cluster client, answering each epoch read (a one-key script on an `epoch` key) `ms` late:
 * a slow answer, as from a shard whose script cache went with its data (EVALSHA, NOSCRIPT, EVAL again). Every other
 * command goes through as it is.
 */
function slowEpochReads(ms: number): (client: Cluster) => Cluster {
  return (client) =>
    new Proxy(client, {
      get(target, prop) {
        if (prop === 'evalsha' || prop === 'eval') {
          const run = target[prop] as (...a: unknown[]) => Promise<unknown>;
          return async (...args: unknown[]): Promise<unknown> => {
            const answer = run.apply(target, args);
            if (args[1] === 1 && String(args[2]).includes(':epoch:')) {
              await answer.catch(() => undefined);
              await new Promise((resolve) => setTimeout(resolve, ms));
            }
            return answer;
          };
        }
        const value: unknown = Reflect.get(target, prop, target);
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
}

/**
 * Stands between a node and its Cluster client, failing each epoch read of `master`'s key while `down.now` is true, as a
 * read of a master that is failing over fails. Every other command goes through as it is.
 */
function failingEpochReads(down: { now: boolean; master: string }, masterOf: (key: string) => string): (client: Cluster) => Cluster {
  return (client) =>
    new Proxy(client, {
      get(target, prop) {
        if (prop === 'evalsha' || prop === 'eval') {
          const run = target[prop] as (...a: unknown[]) => Promise<unknown>;
          return (...args: unknown[]): Promise<unknown> => {
            const key = String(args[2]);
            if (down.now && args[1] === 1 && key.includes(':epoch:') && masterOf(key) === down.master) {
              return Promise.reject(new Error('CLUSTERDOWN The cluster is down'));
            }
            return run.apply(target, args);
          };
        }
        const value: unknown = Reflect.get(target, prop, target);
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
}

async function node(id: string, keys: RedisKeys, lines: Line[], wrap: (client: Cluster) => Cluster = (c) => c): Promise<Node> {
  const connection = await engineClient();
  const client = wrap(connection);
  const membership = new RedisMembership(client, keys, id, 'SPUBLISH');
  const capture =
    (level: Line['level']) =>
    (line: unknown): void =>
      void lines.push({ level, by: id, at: Date.now(), ...(line as { event: string }) });
  const reaped: ReapedChannel[] = [];
  const expired: boolean[] = [];
  const reaper = createReaper({
    client,
    keys,
    membership,
    logger: { info: capture('info'), warn: capture('warn') },
    nodeId: id,
    nodeTtlMs: TTL_MS,
    reaped: (channels) => void reaped.push(...channels),
    expired: (dataLost) => void expired.push(dataLost),
  });
  let ticks = 0;
  let timer: NodeJS.Timeout | undefined;
  const inflight = new Set<Promise<void>>();
  const run = (): Promise<void> => {
    const t = reaper.tick().then(() => void ticks++);
    inflight.add(t);
    void t.then(() => inflight.delete(t));
    return t;
  };
  const n: Node = {
    id,
    membership,
    reaped,
    expired,
    ticks: () => ticks,
    tickOnce: run,
    start() {
      void run();
      timer = setInterval(run, BEAT_MS);
    },
    async stop() {
      clearInterval(timer);
      await Promise.all([...inflight]);
    },
    async close() {
      await n.stop();
      connection.disconnect();
    },
  };
  return n;
}

/** Waits until `n` has completed `count` more ticks than it had when called. */
function moreTicks(n: Node, count: number, what: string): Promise<void> {
  const from = n.ticks();
  return until(() => n.ticks() >= from + count, `${count} more ticks of ${n.id} (${what})`, count * BEAT_MS + 5000);
}

const events = (lines: Line[], event: string): Line[] => lines.filter((l) => l.event === event);

/** The first prefix `<base>0`, `<base>1`, … for whose keys `fit` names a master, with that master. */
function prefixWhere(base: string, fit: (keys: RedisKeys) => string | undefined): { keys: RedisKeys; master: string } {
  for (let i = 0; i < 10_000; i++) {
    const keys = new RedisKeys(`${base}${i}`);
    const master = fit(keys);
    if (master !== undefined) return { keys, master };
  }
  throw new Error(`no prefix ${base}… fits`);
}

/** `count` channel names `<stem>-<i>` whose keys are (`on`: true) or are not on `master`. */
function roomsOn(keys: RedisKeys, masterOf: (key: string) => string, master: string, on: boolean, stem: string, count: number): string[] {
  const out: string[] = [];
  for (let i = 0; out.length < count; i++) {
    const room = `${stem}-${i}`;
    if ((masterOf(keys.channel('a1', room).state) === master) === on) out.push(room);
  }
  return out;
}

const portOf = (master: string): number => Number(master.split(':')[1]);
const BOB = { userId: 'bob', userInfo: {} };

/**
 * For `prefixWhere`: the master of A's liveness key when nothing else of A's and B's that the test uses is on it (B's
 * key, the node list, A's channel index, the channel `room`): that master alone can fail or lose its data under A.
 */
function aKeyAlone(masterOf: (key: string) => string, room: string): (k: RedisKeys) => string | undefined {
  return (k) => {
    const master = masterOf(k.node('a'));
    const elsewhere = [k.node('b'), k.nodes, k.nodeChannels('a'), k.channel('a1', room).state];
    return elsewhere.some((key) => masterOf(key) === master) ? undefined : master;
  };
}

/**
 * Asserts that no node was reaped so far and that A's member in `room` is still recorded; then stops A and asserts that B
 * reaps it (one member removed) within the documented bound for a crash.
 */
async function aliveThenReaped(a: Node, b: Node, room: string, lines: Line[]): Promise<void> {
  assert.deepEqual(
    events(lines, 'node_reaped').map((l) => `${l.by} reaped ${String(l.dead_node)}`),
    [],
    'no live node reaped',
  );
  assert.deepEqual(await b.membership.counts('a1', room), { subscriptionCount: 1, userCount: 1 });
  await a.stop();
  const stoppedAt = Date.now();
  await until(() => events(lines, 'node_reaped').length > 0, 'the reap of A', TTL_MS + BEAT_MS + 3000);
  const [reap] = events(lines, 'node_reaped');
  assert.deepEqual([reap!.by, reap!.dead_node, reap!.members_removed], ['b', 'a', 1]);
  assert.ok(reap!.at - stoppedAt <= TTL_MS + BEAT_MS + SLACK_MS, `A reaped ${reap!.at - stoppedAt} ms after it stopped`);
}

test("a shard that lost its data under a live node's key: a survivor that saw the loss does not reap it before it beats again", async () => {
  const lines: Line[] = [];
  const nodes: Node[] = [];
  const slots = await slotMasters(admin);
  // A's key alone is on the master that loses its data: B's own key and the node list are elsewhere, so B's beat finds
  // nothing of its own lost, and A is still listed. A's channel and its index are elsewhere too: a reap of A would
  // remove alice there.
  const ROOM = 'presence-room';
  const { keys, master: wiped } = prefixWhere('wiped', aKeyAlone(slots.masterOf, ROOM));
  try {
    // B's epoch reads answer late: its round's EXISTS of A's key answers first, and its reap must wait for the read.
    const [a, b] = await Promise.all([node('a', keys, lines), node('b', keys, lines, slowEpochReads(BEAT_MS / 2))]);
    nodes.push(a, b);
    await a.membership.join('a1', ROOM, 'a.1', { userId: 'alice', userInfo: {} }, 0);
    a.start();
    b.start();
    // Beating for longer than a TTL: B reaps as soon as a key is missing.
    await Promise.all([moreTicks(a, 5, 'established'), moreTicks(b, 5, 'established')]);

    // Made certain: the shard loses its data between A's beats and B's next tick comes before A's next beat. Its
    // scripts too, as a master restarted empty: B's epoch read there is sent again as EVAL after a NOSCRIPT, so it
    // answers after B's EXISTS of A's key, sent later on the same connection.
    await Promise.all([a.stop(), b.stop()]);
    const shard = new Redis({ host: '127.0.0.1', port: portOf(wiped) });
    try {
      await shard.flushall();
      await shard.script('FLUSH');
    } finally {
      shard.disconnect();
    }
    await b.tickOnce();
    assert.deepEqual(b.expired, [true], 'B saw the loss');
    a.start();
    b.start();
    await until(() => a.expired.length > 0, 'A finds its key gone');
    await Promise.all([moreTicks(a, 4, 'after the loss'), moreTicks(b, 4, 'after the loss')]);
    // A dies now: B reaps it within the usual bound (the pause after the loss is over).
    await aliveThenReaped(a, b, ROOM, lines);
  } finally {
    await Promise.all(nodes.map((n) => n.close()));
  }
});

test("a master failing over under a live node's key: a survivor reaps no node whose key is there until that shard served a TTL", async () => {
  // Found on a 3-master, 3-replica cluster: the master holding A's key killed, its replica promoted 6-8 s later. A's key
  // expired meanwhile (A could not beat), B's beats went on (its key elsewhere), and B reaped A as soon as the replica
  // served: member_removed and member_added for a user who never left. Here the failover is what B and A see of it: B's
  // reads of that shard's epoch key fail, A beats no more, and A's key expires; then the shard serves again, and A beats
  // again one beat later.
  const lines: Line[] = [];
  const nodes: Node[] = [];
  const slots = await slotMasters(admin);
  const ROOM = 'presence-room';
  const { keys, master: failing } = prefixWhere('failover', aKeyAlone(slots.masterOf, ROOM));
  const down = { now: false, master: failing };
  try {
    const [a, b] = await Promise.all([node('a', keys, lines), node('b', keys, lines, failingEpochReads(down, slots.masterOf))]);
    nodes.push(a, b);
    await a.membership.join('a1', ROOM, 'a.1', { userId: 'alice', userInfo: {} }, 0);
    a.start();
    b.start();
    await Promise.all([moreTicks(a, 5, 'established'), moreTicks(b, 5, 'established')]);

    // The master goes: A stops beating, B's reads of that shard fail, and A's key expires.
    await a.stop();
    down.now = true;
    await moreTicks(b, 2, 'while the shard is down');
    await admin.del(keys.node('a'));
    await moreTicks(b, 1, "A's key gone, the shard still down");
    // The replica serves: B's reads answer again, A beats again a beat later.
    down.now = false;
    await moreTicks(b, 1, 'the shard back, A not yet');
    a.start();
    await Promise.all([moreTicks(a, 4, 'after the failover'), moreTicks(b, 4, 'after the failover')]);
    // A dies now: B reaps it within the usual bound (the shard has served for a TTL by then).
    await aliveThenReaped(a, b, ROOM, lines);
  } finally {
    await Promise.all(nodes.map((n) => n.close()));
  }
});

test("a master down under some of a dead node's channels: the reap goes on past them, reports what it removed, and is finished once the shard is back", async () => {
  const lines: Line[] = [];
  const nodes: Node[] = [];
  const slots = await slotMasters(admin);
  // Every key A's beats and its reap of B use, but B's channels, is off the master that goes down.
  const { keys, master: down } = prefixWhere('reap-past', (k) => {
    const used = new Set([k.node('a'), k.node('b'), k.nodes, k.reapLock('b'), k.nodeChannels('b'), k.appChannels('a1')].map(slots.masterOf));
    return [...slots.masters].find((m) => !used.has(m));
  });
  const downRooms = roomsOn(keys, slots.masterOf, down, true, 'presence-down', 4);
  const liveRooms = roomsOn(keys, slots.masterOf, down, false, 'presence-live', 4);
  try {
    const [a, b] = await Promise.all([node('a', keys, lines), node('b', keys, lines)]);
    nodes.push(a, b);
    for (const [i, room] of [...downRooms, ...liveRooms].entries()) await b.membership.join('a1', room, `b.${i}`, BOB, 0);
    a.start();
    b.start();
    await Promise.all([moreTicks(a, 4, 'established'), moreTicks(b, 4, 'established')]);

    // 1. The master goes down (its data saved first: it comes back with B's share there), then B dies. A's reap removes
    // B's share on the live shards and reports it, though each of B's channels on the down master fails; B stays listed,
    // its index whole, for a later attempt.
    await admin.nodes('master').find((n) => n.options.port === portOf(down))!.save();
    await cluster.kill(portOf(down));
    await b.stop();
    const stoppedAt = Date.now();
    // The first of B's channels on the down master waits for the command timeout; the others there are left unsent.
    const bound = TTL_MS + BEAT_MS + SLACK_MS + COMMAND_TIMEOUT_MS;
    await until(() => a.reaped.length >= liveRooms.length, "B's channels on the live shards reported as reaped", bound + 3000);
    const reportedAt = Date.now();
    assert.ok(reportedAt - stoppedAt <= bound, `reported ${reportedAt - stoppedAt} ms after B stopped`);
    assert.deepEqual(
      a.reaped.map((c) => [c.channel, c.removedUsers, c.vacated]).sort(),
      liveRooms.map((room) => [room, ['bob'], true]).sort(),
      'what the reap removed, handed on for webhooks',
    );
    // Logged once, at warn, with what it removed and what it could not.
    assert.deepEqual(
      events(lines, 'reap_incomplete').map((l) => [l.by, l.level, l.dead_node, l.members_removed, l.channels, l.channels_left, l.apps_left]),
      [['a', 'warn', 'b', liveRooms.length, liveRooms.length, downRooms.length, 0]],
    );
    assert.ok(Number(events(lines, 'reap_incomplete')[0]!.duration_ms) < 2 * COMMAND_TIMEOUT_MS, 'one command timeout for the down master, not one per channel');
    for (const room of liveRooms) assert.deepEqual(await a.membership.counts('a1', room), { subscriptionCount: 0, userCount: 0 }, room);
    assert.deepEqual(events(lines, 'node_reaped'), []);
    assert.equal(await admin.sismember(keys.nodes, 'b'), 1, 'B still listed');
    assert.equal(await admin.scard(keys.nodeChannels('b')), downRooms.length + liveRooms.length, "B's index whole");

    // 2. The master is back with its data: a later attempt removes B's share there and reports it (its webhooks), and goes
    // through: B is unlisted, its index gone, and nothing is reported twice.
    assert.equal(await a.membership.counts('a1', downRooms[0]!).catch(() => 'down'), 'down', 'the shard is still down');
    cluster.restart(portOf(down));
    await until(() => events(lines, 'node_reaped').length > 0, 'the reap of B finished', 20_000);
    const [reaped] = events(lines, 'node_reaped');
    assert.deepEqual([reaped!.by, reaped!.dead_node, reaped!.members_removed], ['a', 'b', downRooms.length]);
    assert.deepEqual(await admin.smembers(keys.nodes), ['a']);
    assert.equal(await admin.exists(keys.nodeChannels('b')), 0);
    assert.deepEqual(
      a.reaped.slice(liveRooms.length).map((c) => [c.channel, c.removedUsers, c.vacated]).sort(),
      downRooms.map((room) => [room, ['bob'], true]).sort(),
      "what the later attempt removed on the shard back, handed on for webhooks",
    );
    assert.equal(a.reaped.length, liveRooms.length + downRooms.length, 'nothing reported twice');
    for (const room of downRooms) assert.deepEqual(await a.membership.counts('a1', room), { subscriptionCount: 0, userCount: 0 }, room);
  } finally {
    await Promise.all(nodes.map((n) => n.close()));
  }
});
