/**
 * The Redis engine's liveness and reaping (src/adapters/redis-reaper.ts) on a real redis-server, with a short node TTL:
 * nodes made of a RedisMembership and a reaper ticked every third of the TTL, as the adapter does. A Redis that refuses
 * writes for longer than the TTL (`maxmemory` below what it uses, `noeviction`: every write fails with OOM while the
 * connections stay up) lets every node's key expire; once it takes writes again no live node may be reaped, while a node
 * that really stopped beating still is, within the bound docs/scaling.md states. A reap held half-way (one script of the
 * reaper's, held back by a wrapper around its connection) lets a node come back in the middle of being reaped.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { createReaper } from '../../src/adapters/redis-reaper.js';
import { RedisKeys } from '../../src/adapters/redis-keys.js';
import { RedisMembership } from '../../src/adapters/redis-membership.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';
import { eventually, until, within } from '../helpers/wait.js';

const TTL_MS = 600;
const BEAT_MS = TTL_MS / 3;
/** The documented bound for a crash (nodeTtlMs + nodeTtlMs / 3) leaves the scripts' time and timer lateness to this. */
const SLACK_MS = 400;

let redis: RedisServer;
let admin: Redis;
before(async () => {
  redis = await startRedis();
  admin = new Redis(redis.url);
});
after(async () => {
  admin?.disconnect();
  await redis?.stop();
});

interface Line {
  level: 'info' | 'warn';
  /** The node that wrote it. */
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
  /** One tick now, awaited. */
  tickOnce(): Promise<void>;
  /** Ticks now and every third of the TTL. */
  start(): void;
  /** Stops ticking (a crash, as far as the cluster can tell) once the ticks in flight, if any, are over. */
  stop(): Promise<void>;
  /** Resolves once every tick in flight when called is over (a tick still reaping included). */
  idle(): Promise<void>;
  /** How many times its reaper said its share may be gone (`expired`: its key had expired, or it found itself unlisted). */
  lost(): number;
  close(): Promise<void>;
}

/**
 * A cluster of nodes under one prefix. `wrap`, if given, stands between a node and its Redis connection (both its reaper
 * and its membership use what it returns).
 */
function cluster(prefix: string): {
  keys: RedisKeys;
  lines: Line[];
  node(id: string, wrap?: (client: Redis) => Redis): Node;
  closeAll(): Promise<void>;
} {
  const keys = new RedisKeys(prefix);
  const lines: Line[] = [];
  const nodes: Node[] = [];
  const node = (id: string, wrap: (client: Redis) => Redis = (c) => c): Node => {
    const connection = new Redis(redis.url);
    const client = wrap(connection);
    const membership = new RedisMembership(client, keys, id, 'PUBLISH');
    const capture =
      (level: Line['level']) =>
      (line: unknown): void => {
        lines.push({ level, by: id, at: Date.now(), ...(line as { event: string }) });
      };
    const reaper = createReaper({
      client,
      keys,
      membership,
      logger: { info: capture('info'), warn: capture('warn') },
      nodeId: id,
      nodeTtlMs: TTL_MS,
      reaped: () => undefined,
      expired: () => void lost++,
    });
    let ticks = 0;
    let lost = 0;
    let timer: NodeJS.Timeout | undefined;
    // Every tick in flight: a tick that reaps may outlast the ticks that follow it (they only beat meanwhile).
    const inflight = new Set<Promise<void>>();
    const run = (): Promise<void> => {
      const t = reaper.tick().then(() => void ticks++);
      inflight.add(t);
      void t.then(() => inflight.delete(t));
      return t;
    };
    const idle = async (): Promise<void> => void (await Promise.all([...inflight]));
    const n: Node = {
      id,
      membership,
      ticks: () => ticks,
      tickOnce: run,
      start() {
        void run();
        timer = setInterval(run, BEAT_MS);
      },
      async stop() {
        clearInterval(timer);
        await idle();
      },
      idle,
      lost: () => lost,
      async close() {
        await n.stop();
        connection.disconnect();
      },
    };
    nodes.push(n);
    return n;
  };
  return { keys, lines, node, closeAll: async () => void (await Promise.all(nodes.map((n) => n.close()))) };
}

/** Waits until `node` has completed `count` more ticks than it had when called. */
function moreTicks(node: Node, count: number, what: string): Promise<void> {
  const from = node.ticks();
  return until(() => node.ticks() >= from + count, `${count} more ticks of ${node.id} (${what})`);
}

const events = (lines: Line[], event: string): Line[] => lines.filter((l) => l.event === event);

test('Redis refusing writes for longer than the TTL: no live node is reaped when it is back; a dead node still is, in time', async () => {
  const { keys, lines, node, closeAll } = cluster('refusing');
  const [a, b, c] = [node('a'), node('b'), node('c')];
  try {
    for (const [n, user] of [
      [a, 'alice'],
      [b, 'bob'],
      [c, 'carol'],
    ] as const) {
      await n.membership.join('a1', 'presence-room', `${n.id}.1`, { userId: user, userInfo: {} }, 0);
      await n.membership.join('a1', 'news', `${n.id}.2`, null, 0);
    }
    a.start();
    b.start();
    c.start();
    // Everyone has been beating for longer than a TTL: the survivors reap as soon as a key expires.
    await Promise.all([moreTicks(a, 4, 'established'), moreTicks(b, 4, 'established')]);

    // 1. C crashes while Redis is healthy: reaped within nodeTtlMs + nodeTtlMs / 3 (+ the scripts' time).
    await c.stop();
    const crashedAt = Date.now();
    await until(() => events(lines, 'node_reaped').length > 0, 'the reap of the crashed node', TTL_MS + BEAT_MS + 3000);
    const [reapC] = events(lines, 'node_reaped');
    assert.equal(reapC?.dead_node, 'c');
    assert.equal(reapC?.members_removed, 1);
    assert.ok(reapC.at - crashedAt <= TTL_MS + BEAT_MS + SLACK_MS, `reaped ${reapC.at - crashedAt} ms after the crash`);
    assert.deepEqual(await a.membership.counts('a1', 'presence-room'), { subscriptionCount: 2, userCount: 2 });

    // 2. Redis refuses every write (maxmemory below its use, noeviction) for longer than the TTL: every key expires.
    const used = Number(/used_memory:(\d+)/.exec(await admin.info('memory'))?.[1]);
    await admin.config('SET', 'maxmemory-policy', 'noeviction');
    await admin.config('SET', 'maxmemory', String(Math.floor(used / 2)));
    try {
      await eventually(async () => (await admin.exists(keys.node('a'), keys.node('b'))) === 0, 'both liveness keys expired', TTL_MS + 3000);
      // Which node beats first once Redis takes writes again is a race; made certain here: A, then both as before.
      await Promise.all([a.stop(), b.stop()]);
    } finally {
      await admin.config('SET', 'maxmemory', '0');
    }
    const restoredAt = Date.now();
    // A's first tick found B's key expired and reaped B before the fix; B beats on its next tick.
    await a.tickOnce();
    a.start();
    b.start();
    await eventually(async () => (await admin.exists(keys.node('a'), keys.node('b'))) === 2, 'both nodes beating again');
    await Promise.all([moreTicks(a, 2, 'after the outage'), moreTicks(b, 2, 'after the outage')]);
    assert.deepEqual(
      events(lines, 'node_reaped').map((l) => `${l.by} reaped ${String(l.dead_node)}`),
      [`${reapC.by} reaped c`],
      'no live node reaped after the outage',
    );
    assert.deepEqual((await admin.smembers(keys.nodes)).sort(), ['a', 'b']);
    assert.deepEqual(await a.membership.counts('a1', 'presence-room'), { subscriptionCount: 2, userCount: 2 });
    assert.deepEqual(await a.membership.counts('a1', 'news'), { subscriptionCount: 2, userCount: 0 });
    assert.deepEqual([...(await a.membership.members('a1', 'presence-room')).keys()].sort(), ['alice', 'bob']);
    // Each node said once that its heartbeat failed, once that it came back, and once that its own key had expired.
    for (const id of ['a', 'b']) {
      const mine = lines.filter((l) => l.by === id && l.at > crashedAt && l.event !== 'node_reaped');
      assert.deepEqual(
        mine.map((l) => [l.level, l.event]),
        [
          ['warn', 'node_heartbeat_failed'],
          ['info', 'node_heartbeat_resumed'],
          ['warn', 'node_expired'],
        ],
        `${id}'s lines`,
      );
      assert.match(String(mine[0]?.error), /OOM/);
      assert.ok(Number(mine[1]?.failures) >= 2, `${id} failed ${String(mine[1]?.failures)} beats, logged once`);
      // Its key expired a TTL after the SET ran, which was answered at most a few ms before its reply was timed.
      assert.ok(Number(mine[2]?.gap_ms) >= TTL_MS - 20, `${id}'s gap ${String(mine[2]?.gap_ms)} ms`);
      assert.equal(mine[2]?.reaped_by, null);
    }

    // 3. Reaping resumes: B crashes now; A reaps it once it has beaten for a TTL since the outage (its first beat after
    // the outage was at most a beat after it ended) and B's key expired: within nodeTtlMs + nodeTtlMs / 3 of the later.
    await b.stop();
    const bCrashedAt = Date.now();
    await until(() => events(lines, 'node_reaped').length === 2, 'the reap of B after the outage', 2 * TTL_MS + BEAT_MS + 3000);
    const reapB = events(lines, 'node_reaped')[1];
    assert.equal(reapB?.by, 'a');
    assert.equal(reapB?.dead_node, 'b');
    assert.equal(reapB?.members_removed, 1);
    const bound = Math.max(bCrashedAt, restoredAt + BEAT_MS) + TTL_MS + BEAT_MS + SLACK_MS;
    assert.ok(reapB.at <= bound, `reaped ${reapB.at - bCrashedAt} ms after B's crash, ${reapB.at - restoredAt} ms after the outage`);
    assert.deepEqual(await a.membership.counts('a1', 'presence-room'), { subscriptionCount: 1, userCount: 1 });
  } finally {
    await admin.config('SET', 'maxmemory', '0');
    await closeAll();
  }
});

test('a node that just started reaps only after beating for a TTL: a dead node is reaped then, a live one whose key expired is not', async () => {
  // As after a Redis outage during which A restarted: B is alive but its key expired (it has not had its turn to beat
  // yet), C really is dead.
  const { keys, lines, node, closeAll } = cluster('starting');
  const [a, b, c] = [node('a'), node('b'), node('c')];
  try {
    for (const [n, user] of [
      [b, 'bob'],
      [c, 'carol'],
    ] as const) {
      await n.membership.join('a1', 'presence-room', `${n.id}.1`, { userId: user, userInfo: {} }, 0);
      await n.tickOnce();
      await n.stop();
    }
    await eventually(async () => (await admin.exists(keys.node('b'), keys.node('c'))) === 0, 'the keys of B and C expired', TTL_MS + 3000);
    const startedAt = Date.now();
    // A's first tick finds both keys expired; B beats on its first tick, right after.
    await a.tickOnce();
    a.start();
    b.start();
    // C is reaped once a survivor has beaten for a TTL: within nodeTtlMs + nodeTtlMs / 3 of its start (docs/scaling.md).
    await until(() => events(lines, 'node_reaped').length > 0, 'the reap of the dead node', TTL_MS + BEAT_MS + 3000);
    await Promise.all([moreTicks(a, 2, 'after the reap'), moreTicks(b, 2, 'after the reap')]);
    // Either survivor may reap C (B beats continuously again from its first beat, right after A's first).
    const [reap] = events(lines, 'node_reaped');
    assert.deepEqual(
      events(lines, 'node_reaped').map((l) => `${l.by} reaped ${String(l.dead_node)}`),
      [`${reap?.by} reaped c`],
    );
    assert.ok(reap.at - startedAt >= TTL_MS, `reaped ${reap.at - startedAt} ms after A started: not before a TTL of beats`);
    assert.ok(reap.at - startedAt <= TTL_MS + BEAT_MS + SLACK_MS, `reaped ${reap.at - startedAt} ms after A started`);
    assert.deepEqual((await admin.smembers(keys.nodes)).sort(), ['a', 'b']);
    assert.deepEqual([...(await a.membership.members('a1', 'presence-room')).keys()], ['bob']);
    // B's own key had expired (it was listed): it says so once. A started with no key: nothing to say.
    assert.deepEqual(
      lines.filter((l) => l.event !== 'node_reaped').map((l) => [l.by, l.level, l.event]),
      [['b', 'warn', 'node_expired']],
    );
  } finally {
    await closeAll();
  }
});

test('a node reaped while it was stopped, then back, then dead for good is reaped again in time: its reap lock went when it came back', async () => {
  const { lines, node, closeAll } = cluster('again');
  const [a, b] = [node('a'), node('b')];
  try {
    await b.membership.join('a1', 'presence-room', 'b.1', { userId: 'bob', userInfo: {} }, 0);
    a.start();
    b.start();
    await Promise.all([moreTicks(a, 4, 'established'), moreTicks(b, 4, 'established')]);
    await b.stop();
    await until(() => events(lines, 'node_reaped').length === 1, 'the first reap of b', TTL_MS + BEAT_MS + 3000);
    // Back: it finds its key gone, names its reaper once, and beats on.
    b.start();
    await until(() => events(lines, 'node_expired').length === 1, 'b finds itself reaped');
    assert.equal(events(lines, 'node_expired')[0]!.reaped_by, 'a');
    await moreTicks(b, 3, 'beating again');
    // Dead for good now: reaped within the bound again, not after the 60 s its first reap's lock was held.
    await b.stop();
    const diedAt = Date.now();
    await until(() => events(lines, 'node_reaped').length === 2, 'the second reap of b', TTL_MS + BEAT_MS + SLACK_MS + 1000);
    // The reap's own time, not when the poll saw it.
    const reapedAfter = events(lines, 'node_reaped')[1]!.at - diedAt;
    assert.ok(reapedAfter <= TTL_MS + BEAT_MS + SLACK_MS, `reaped ${reapedAfter} ms after it stopped`);
  } finally {
    await closeAll();
  }
});

test('a node that finds itself unlisted at a beat (a reap that decided before it came back finished after) records its share again', async () => {
  const keys = new RedisKeys('unlisted');
  const client = new Redis(redis.url);
  let lost = 0;
  const reaper = createReaper({
    client,
    keys,
    membership: new RedisMembership(client, keys, 'b', 'PUBLISH'),
    logger: { info: () => undefined, warn: () => undefined },
    nodeId: 'b',
    nodeTtlMs: TTL_MS,
    reaped: () => undefined,
    expired: () => void lost++,
  });
  try {
    await reaper.tick();
    await reaper.tick();
    assert.equal(lost, 0, 'listed, key present: nothing lost');
    // A reap unlists its node last; the key is there again (the node beat meanwhile).
    await admin.srem(keys.nodes, 'b');
    await reaper.tick();
    assert.equal(lost, 1);
    await reaper.tick();
    assert.equal(lost, 1, 'listed again by that beat');
  } finally {
    client.disconnect();
  }
});

/**
 * Stands between a node and Redis, holding the node's `at`-th reap script on a channel (EVALSHA with six keys: the
 * channel's five and the step's receipt) until `open()`; every other command goes through (its heartbeats' one-key
 * scripts too). A node that records nothing itself runs channel scripts only to reap, one per channel of the dead node,
 * so this holds its reap with `at - 1` channels done.
 */
function holdScript(at: number): { wrap: (client: Redis) => Redis; held: Promise<void>; open: () => void } {
  let calls = 0;
  let reached!: () => void;
  const held = new Promise<void>((resolve) => (reached = resolve));
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  const wrap = (client: Redis): Redis =>
    new Proxy(client, {
      get(target, prop) {
        if (prop === 'evalsha') {
          return async (...args: unknown[]): Promise<unknown> => {
            if (args[1] === 6 && ++calls === at) {
              reached();
              await opened;
            }
            return (target.evalsha as (...a: unknown[]) => Promise<unknown>)(...args);
          };
        }
        const value: unknown = Reflect.get(target, prop, target);
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
  return { wrap, held, open };
}

const BOB = { userId: 'bob', userInfo: {} };
const ROOMS = Array.from({ length: 20 }, (_, i) => `presence-room-${i}`);

/**
 * B holds a presence member on each of ROOMS and stops beating; A reaps it, and its reap is held with 10 channels done.
 * B comes back then: its beat finds its key expired, and B records its share again, as the engine does (`rerecord` in
 * redis-adapter.ts: the node's channel index, then the join script, channel by channel). Then A's reap goes on; resolves
 * once it is over.
 */
async function backDuringReap(a: Node, b: Node, hold: ReturnType<typeof holdScript>): Promise<void> {
  for (const [i, room] of ROOMS.entries()) await b.membership.join('a1', room, `b.${i}`, BOB, 0);
  a.start();
  b.start();
  await Promise.all([moreTicks(a, 4, 'established'), moreTicks(b, 4, 'established')]);
  await b.stop();
  await within(hold.held, "A's reap of B, held half-way", TTL_MS + BEAT_MS + 3000);
  await b.tickOnce();
  assert.equal(b.lost(), 1, 'B found its key expired');
  for (const [i, room] of ROOMS.entries()) await b.membership.rejoin('a1', room, `b.${i}`, BOB, 0);
  hold.open();
  await a.idle();
}

/** The rooms where a subscription or a member is still recorded. */
async function occupied(node: Node): Promise<string[]> {
  const out: string[] = [];
  for (const room of ROOMS) {
    const [counts, members] = await Promise.all([node.membership.counts('a1', room), node.membership.members('a1', room)]);
    if (counts.subscriptionCount > 0 || counts.userCount > 0 || members.size > 0) out.push(room);
  }
  return out;
}

test('a node back mid-reap that records its share again, then dies before its next beat, is reaped again: nothing of it is left', async () => {
  const { keys, lines, node, closeAll } = cluster('back-then-dead');
  const hold = holdScript(11);
  const [a, b] = [node('a', hold.wrap), node('b')];
  try {
    await backDuringReap(a, b, hold);
    const stoppedAt = Date.now();
    // B dies for good now, without another beat. Whatever it recorded while A reaped must be found by a reap.
    await eventually(async () => (await admin.sismember(keys.nodes, 'b')) === 0, 'b unlisted by a reap', TTL_MS + BEAT_MS + 3000);
    assert.deepEqual(await occupied(a), [], 'rooms where an entry of b outlived it');
    assert.equal(await admin.exists(keys.nodeChannels('b'), keys.node('b')), 0);
    // The reap that found B back did not finish; the one after B died did, in time: the key A left (its id, for a TTL)
    // expired, and A had let go of the lock.
    const reaps = events(lines, 'node_reaped');
    assert.deepEqual(
      reaps.map((l) => `${l.by} reaped ${String(l.dead_node)}`),
      ['a reaped b'],
    );
    const after = reaps[0]!.at - stoppedAt;
    assert.ok(after <= TTL_MS + BEAT_MS + SLACK_MS, `reaped ${after} ms after the first reap stopped`);
  } finally {
    hold.open();
    await closeAll();
  }
});

test('a reap that finds its node back stops: the node stays listed and indexed, records its share again at its next beat', async () => {
  const { keys, lines, node, closeAll } = cluster('back-and-alive');
  const hold = holdScript(11);
  const [a, b] = [node('a', hold.wrap), node('b')];
  try {
    await backDuringReap(a, b, hold);
    // A stopped: B is still listed with every channel it holds indexed; its key names A (B's next beat reads it), and
    // A let go of B's lock (B's key keeps reapers off while B lives).
    assert.deepEqual(events(lines, 'node_reaped'), []);
    // Said once, at info, with what it had removed before it stopped: 10 rooms, the held 11th (its check was sent before
    // B was back) and the 12th, whose check found B back; bob in each.
    assert.deepEqual(
      events(lines, 'reap_stopped').map((l) => [l.by, l.level, l.back_node, l.members_removed, l.channels, l.channels_vacated]),
      [['a', 'info', 'b', 12, 12, 12]],
    );
    assert.equal(await admin.sismember(keys.nodes, 'b'), 1);
    assert.equal(await admin.scard(keys.nodeChannels('b')), ROOMS.length);
    assert.equal(await admin.get(keys.node('b')), 'a');
    assert.equal(await admin.exists(keys.reapLock('b')), 0);

    // B's next beat reads A's id: it records its share again, what A removed after B came back included.
    await b.tickOnce();
    assert.equal(b.lost(), 2);
    assert.equal(await admin.get(keys.node('b')), '1');
    for (const [i, room] of ROOMS.entries()) await b.membership.rejoin('a1', room, `b.${i}`, BOB, 0);
    for (const room of ROOMS) {
      assert.deepEqual(await a.membership.counts('a1', room), { subscriptionCount: 1, userCount: 1 }, room);
      assert.deepEqual([...(await a.membership.members('a1', room)).keys()], ['bob'], room);
    }
    // Its key had expired once (when A decided), and it said so once, naming A.
    assert.deepEqual(
      events(lines, 'node_expired').map((l) => [l.by, l.reaped_by]),
      [['b', 'a']],
    );

    // B beats on: nothing more lost, nobody reaps it.
    b.start();
    await moreTicks(b, 3, 'beating again');
    assert.equal(b.lost(), 2);
    assert.deepEqual(events(lines, 'node_reaped'), []);

    // Dead for good now: reaped within the bound, nothing of it left.
    await b.stop();
    const diedAt = Date.now();
    await until(() => events(lines, 'node_reaped').length === 1, 'the reap of b', TTL_MS + BEAT_MS + SLACK_MS + 1000);
    assert.ok(events(lines, 'node_reaped')[0]!.at - diedAt <= TTL_MS + BEAT_MS + SLACK_MS);
    assert.deepEqual(await occupied(a), []);
    assert.equal(await admin.sismember(keys.nodes, 'b'), 0);
  } finally {
    hold.open();
    await closeAll();
  }
});
