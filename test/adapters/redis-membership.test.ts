/**
 * RedisMembership on a real redis-server.
 * - Its outcomes come back in the order Redis ran their scripts. The node emits its webhooks from them (the occupying
 *   join's `channel_occupied` and count of 1, each later join's count, a vacate before the next occupy): an outcome held
 *   back by a command of its own after its script let the next one's events go out first (an outside probe saw
 *   `subscription_count` 2, `channel_occupied`, 1 in one request).
 * - A reap whose question "is the node back?" fails: what it removed is still returned (the reaper announces it:
 *   webhooks, `reap_incomplete`), never thrown away with an exception, and what it left is counted. And the reap lock is
 *   shortened only by the node holding it (redis-reaper.ts, `retrySoon`).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { RedisKeys } from '../../src/adapters/redis-keys.js';
import { CHANNELS_READ_AT_ONCE, RedisMembership } from '../../src/adapters/redis-membership.js';
import { LEAVE_LUA, REAP_LUA, Script, SHORTEN_LOCK_LUA } from '../../src/adapters/redis-scripts.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';
import { eventually, until } from '../helpers/wait.js';

let redis: RedisServer;
let client: Redis;
before(async () => {
  redis = await startRedis();
  client = new Redis(redis.url);
});
after(async () => {
  client?.disconnect();
  await redis?.stop();
});

test('joins of one channel on one node return in the order their scripts ran: the occupying one first', async () => {
  const keys = new RedisKeys('join-order');
  const node = new RedisMembership(client, keys, 'n1', 'PUBLISH', () => true);
  for (let round = 0; round < 20; round++) {
    const channel = `news-${round}`;
    const returned: string[] = [];
    const joins = ['s1', 's2', 's3'].map((socketId) =>
      node.join('a1', channel, socketId, null, 0).then((outcome) => {
        returned.push(`${outcome.occupied ? 'occupied ' : ''}count ${String(outcome.count)}`);
      }),
    );
    await Promise.all(joins);
    assert.deepEqual(returned, ['occupied count 1', 'count 2', 'count 3'], `round ${round}`);
  }
  // The listing an occupying join adds to is written all the same (GET /channels).
  await eventually(async () => (await client.scard(keys.appChannels('a1'))) === 20, 'the 20 channels listed');
});

test('a join tried again after an attempt whose answer was lost is answered what that attempt changed; a plain repeat is not', async () => {
  // The adapter tries a join again with `again` after an attempt that timed out (it may have run late): that attempt's
  // webhooks (channel_occupied, member_added, the count) are emitted from the answer the caller gets.
  const keys = new RedisKeys('join-again');
  const node = new RedisMembership(client, keys, 'n1', 'PUBLISH', () => true);
  const first = await node.join('a1', 'news', 's1', null, 0);
  assert.deepEqual([first.occupied, first.count], [true, 1]);
  const again = await node.join('a1', 'news', 's1', null, 0, true);
  assert.deepEqual([again.admitted, again.occupied, again.memberAdded, again.count], [true, true, false, 1]);
  // Its count is the channel's count now.
  await node.join('a1', 'news', 's2', null, 0);
  assert.equal((await node.join('a1', 'news', 's1', null, 0, true)).count, 2);
  // Not asked (a rejoin, a repeat after an answer): nothing.
  const plain = await node.join('a1', 'news', 's1', null, 0);
  assert.deepEqual([plain.admitted, plain.occupied, plain.count], [true, false, undefined]);

  const member = { userId: 'u1', userInfo: { name: 'one' } };
  const joined = await node.join('a1', 'presence-room', 'p1', member, 0);
  assert.deepEqual([joined.occupied, joined.memberAdded], [true, true]);
  const presence = await node.join('a1', 'presence-room', 'p1', member, 0, true);
  assert.deepEqual([presence.occupied, presence.memberAdded, [...presence.members]], [true, true, [['u1', { name: 'one' }]]]);
  // A second connection of the same user added no member: nothing to report for it.
  await node.join('a1', 'presence-room', 'p2', member, 0);
  const second = await node.join('a1', 'presence-room', 'p2', member, 0, true);
  assert.deepEqual([second.occupied, second.memberAdded], [false, false]);
  // The counts are not changed by the repeats.
  assert.equal(await client.hget(keys.channel('a1', 'news').state, 'total'), '2');
  assert.equal(await client.hget(keys.channel('a1', 'presence-room').users, 'u1'), '2');
});

test("the take-back of a join given up answers what no webhook told: none of the late join's own changes, what it changed beyond them, what of them stands", async () => {
  const keys = new RedisKeys('take-back');
  const node = new RedisMembership(client, keys, 'n1', 'PUBLISH', () => true);
  const other = new RedisMembership(client, keys, 'n2', 'PUBLISH', () => true);
  const u1 = { userId: 'u1', userInfo: null };
  const nothing = { occupied: false, memberAdded: false, memberRemoved: false, vacated: false, count: undefined };
  // Alone: the late join's changes undone, none of them announced: nothing to tell.
  await node.join('a1', 'presence-alone', 'late', u1, 0);
  assert.deepEqual(await node.takeBack('a1', 'presence-alone', 'late', u1, node.newLeave()), nothing);
  // Another connection of u1 held the channel (announced) and left while the late record stood (its leave changed
  // nothing): the take-back removes u1 and vacates the channel, and must say so (a review: never told).
  await other.join('a1', 'presence-left', 'held', u1, 0);
  await node.join('a1', 'presence-left', 'late', u1, 0);
  assert.deepEqual(await other.leave('a1', 'presence-left', 'held', u1), { memberRemoved: false, vacated: false, count: undefined });
  assert.deepEqual(await node.takeBack('a1', 'presence-left', 'late', u1, node.newLeave()), { ...nothing, memberRemoved: true, vacated: true, removedUserId: 'u1' });
  // The late join occupied the channel and added u1, then another connection of u1 joined (finding both, announcing
  // neither): the take-back leaves them standing, so they are told now.
  await node.join('a1', 'presence-stays', 'late', u1, 0);
  await other.join('a1', 'presence-stays', 'held', u1, 0);
  assert.deepEqual(await node.takeBack('a1', 'presence-stays', 'late', u1, node.newLeave()), { ...nothing, occupied: true, memberAdded: true });
  // A join that never ran: nothing.
  assert.deepEqual(await node.takeBack('a1', 'presence-stays', 'never', u1, node.newLeave()), nothing);

  // A take-back that ran late (by Redis' clock) and left the late join standing keeps a receipt of it, for its retry.
  await node.join('a1', 'presence-w', 'late', u1, 0);
  await other.join('a1', 'presence-w', 'held', u1, 0);
  const k = keys.channel('a1', 'presence-w');
  const late = await new Script(LEAVE_LUA).run(
    client,
    [k.state, k.users, k.info, keys.share('a1', 'presence-w', 'n1'), keys.subscriptions('a1', 'presence-w', 'n1'), keys.leaveReceipt('a1', 'presence-w', 'n1', 'w1')],
    [keys.nodeField('n1'), 'u1', '', '""', '', k.events, 'PUBLISH', 'late', 10_000, 0, '1'],
  );
  assert.deepEqual(late, [0, 0, 0, -1, 'oa', -1]);
  assert.equal(await client.get(keys.leaveReceipt('a1', 'presence-w', 'n1', 'w1')), '0,0,oa');

  // Retried after an attempt that ran late (its receipt, written as the script writes it; the socket already gone). A
  // review found both: the attempt left the late join standing and kept no receipt, so the retry told nothing (u1's
  // member_added never went out); and one that removed u1 told "added" once u1 was back through another connection,
  // whose own join had told it (member_added twice).
  await other.join('a1', 'presence-r1', 'held', u1, 0);
  await client.set(keys.leaveReceipt('a1', 'presence-r1', 'n1', 'r1'), '0,0,oa');
  assert.deepEqual(await node.takeBack('a1', 'presence-r1', 'gone', u1, 'r1'), { ...nothing, occupied: true, memberAdded: true });
  await other.leave('a1', 'presence-r1', 'held', u1);
  assert.deepEqual(await node.takeBack('a1', 'presence-r1', 'gone', u1, 'r1'), nothing, 'no longer standing: nothing to tell');
  await client.set(keys.leaveReceipt('a1', 'presence-r2', 'n1', 'r2'), '1,1,oa');
  await other.join('a1', 'presence-r2', 'back', u1, 0);
  assert.deepEqual(await node.takeBack('a1', 'presence-r2', 'gone', u1, 'r2'), nothing, 'changed back: told by that join');
  // The late take-back undid the late join's own changes (and what it removed did not come back): nothing (a review:
  // member_removed and channel_vacated for a member and a channel no webhook had announced).
  await client.set(keys.leaveReceipt('a1', 'presence-r4', 'n1', 'r4'), '1,1,oa');
  assert.deepEqual(await node.takeBack('a1', 'presence-r4', 'gone', u1, 'r4'), nothing);
  await other.join('a1', 'presence-r5', 'u2', { userId: 'u2', userInfo: null }, 0);
  await client.set(keys.leaveReceipt('a1', 'presence-r5', 'n1', 'r5'), '1,0,oa');
  assert.deepEqual(await node.takeBack('a1', 'presence-r5', 'gone', u1, 'r5'), { ...nothing, occupied: true });
  await client.set(keys.leaveReceipt('a1', 'r6', 'n1', 'r6'), '0,1,oc');
  assert.deepEqual(await node.takeBack('a1', 'r6', 'gone', null, 'r6'), nothing);
  await client.set(keys.leaveReceipt('a1', 'presence-r3', 'n1', 'r3'), '1,1,');
  assert.deepEqual(await node.takeBack('a1', 'presence-r3', 'gone', u1, 'r3'), { ...nothing, memberRemoved: true, vacated: true });
  await other.join('a1', 'presence-r3', 'back', u1, 0);
  assert.deepEqual(await node.takeBack('a1', 'presence-r3', 'gone', u1, 'r3'), nothing, 'back since: nothing');
});

test("a channel's last leave and the next join on one node return in the order their scripts ran: the vacate first", async () => {
  const keys = new RedisKeys('leave-join-order');
  const node = new RedisMembership(client, keys, 'n1', 'PUBLISH', () => true);
  // Both scripts loaded first: a script Redis does not have yet is sent again in full after its NOSCRIPT answer, behind
  // whatever was sent meanwhile (once per script and Redis start; not what this test is about).
  await node.join('a1', 'warm-up', 'w', null, 0);
  await node.leave('a1', 'warm-up', 'w', null);
  for (let round = 0; round < 20; round++) {
    const channel = `news-${round}`;
    await node.join('a1', channel, 'old', null, 0);
    const returned: string[] = [];
    await Promise.all([
      node.leave('a1', channel, 'old', null).then((outcome) => returned.push(outcome.vacated ? 'vacated' : 'left')),
      node.join('a1', channel, 'new', null, 0).then((outcome) => returned.push(outcome.occupied ? 'occupied' : 'joined')),
    ]);
    assert.deepEqual(returned, ['vacated', 'occupied'], `round ${round}`);
  }
  // The listings end as the subscriptions are: every channel occupied, listed, and held by this node.
  await eventually(async () => (await client.scard(keys.appChannels('a1'))) === 20, 'the 20 channels listed');
  assert.equal(await client.scard(keys.nodeChannels('n1')), 20);
});

const timedOut = (): Error => new Error('Command timed out');

test('a reap whose last "is the node back?" fails after every step removed the share returns what it removed, incomplete', async () => {
  const keys = new RedisKeys('reap-last-back');
  const dead = new RedisMembership(client, keys, 'dead', 'PUBLISH');
  await dead.join('a1', 'presence-room', 's1', { userId: 'bob', userInfo: {} }, 0);
  const survivor = new RedisMembership(client, keys, 'survivor', 'PUBLISH');
  // Asked with the channel's step (answered), then once more before the indexes go (fails: its master timed out).
  let asked = 0;
  const outcome = await survivor.reap('dead', async () => {
    if (++asked > 1) throw timedOut();
    return false;
  });
  assert.equal(asked, 2);
  assert.deepEqual(outcome.channels, [{ appId: 'a1', channel: 'presence-room', removedUsers: ['bob'], vacated: true, count: undefined }]);
  assert.deepEqual([outcome.complete, outcome.error, outcome.channelsLeft, outcome.appsLeft], [false, 'Command timed out', 0, 0]);
  // The indexes stay for a later attempt.
  assert.equal(await client.scard(keys.nodeChannels('dead')), 1);
  assert.deepEqual(await survivor.counts('a1', 'presence-room'), { subscriptionCount: 0, userCount: 0 });
});

test('a reap stopped in its apps by a failing "is the node back?" counts every channel it did not reach as left', async () => {
  const keys = new RedisKeys('reap-app-back');
  const dead = new RedisMembership(client, keys, 'dead', 'PUBLISH');
  await dead.join('a1', 'room-1', 's1', null, 0);
  await dead.join('a1', 'room-2', 's1', null, 0);
  await dead.reserveConnection('a1', 0, 'r1');
  assert.equal(await client.scard(keys.nodeApps('dead')), 1);
  const survivor = new RedisMembership(client, keys, 'survivor', 'PUBLISH');
  const outcome = await survivor.reap('dead', async () => {
    throw timedOut();
  });
  assert.deepEqual([outcome.complete, outcome.channels.length, outcome.appsLeft, outcome.channelsLeft], [false, 0, 0, 2]);
  assert.deepEqual(await survivor.counts('a1', 'room-1'), { subscriptionCount: 1, userCount: 0 });
});

test('a reap lock is shortened only by the node holding it', async () => {
  const shorten = new Script(SHORTEN_LOCK_LUA);
  await client.set('reap-lock-test', 'node-a', 'PX', 60_000);
  assert.equal(await shorten.run(client, ['reap-lock-test'], ['node-b', 1000]), 0);
  assert.ok((await client.pttl('reap-lock-test')) > 50_000, 'another node left it as it was');
  assert.equal(await shorten.run(client, ['reap-lock-test'], ['node-a', 1000]), 1);
  assert.ok((await client.pttl('reap-lock-test')) <= 1000, 'its holder shortened it');
});

test('a reap step that timed out but ran is announced by the next attempt, from its receipt, once', async () => {
  // A stalled master runs the step when it reads again: its member events reach the clients, and the next attempt finds
  // nothing of the node's left there. Before, that attempt announced nothing, so the step's webhooks were never sent.
  const keys = new RedisKeys('reap-late');
  const dead = new RedisMembership(client, keys, 'dead', 'PUBLISH');
  await dead.join('a1', 'presence-late', 's1', { userId: 'bob', userInfo: {} }, 0);
  // The reap script loaded first: an EVALSHA that times out before its NOSCRIPT answer never runs at all.
  await client.script('LOAD', REAP_LUA);
  const slow = new Redis(redis.url, { commandTimeout: 300 });
  try {
    const survivor = new RedisMembership(slow, keys, 'survivor', 'PUBLISH');
    await client.client('PAUSE', 1000, 'WRITE');
    const first = await survivor.reap('dead');
    assert.deepEqual([first.complete, first.channels.length, first.channelsLeft], [false, 0, 1]);
    // The step runs once the pause is over.
    await eventually(async () => (await client.hlen(keys.channel('a1', 'presence-late').users)) === 0, 'the late step run', 5000);
    const second = await survivor.reap('dead');
    assert.deepEqual(second.channels, [{ appId: 'a1', channel: 'presence-late', removedUsers: ['bob'], vacated: true, count: undefined }]);
    assert.equal(second.complete, true);
    assert.equal(await client.exists(keys.reapReceipt('a1', 'presence-late', 'dead')), 0, 'the receipt answered once');
  } finally {
    slow.disconnect();
  }
});

test('a reap step that was answered is not announced again by a later attempt of the same reap', async () => {
  // The reap stops incomplete at another channel (an error reply there), so the next attempt runs every step again.
  const keys = new RedisKeys('reap-answered');
  const dead = new RedisMembership(client, keys, 'dead', 'PUBLISH');
  await dead.join('a1', 'presence-done', 's1', { userId: 'bob', userInfo: {} }, 0);
  await dead.join('a1', 'broken', 's1', null, 0);
  // Its state key of the wrong type: that step fails with WRONGTYPE.
  await client.del(keys.channel('a1', 'broken').state);
  await client.set(keys.channel('a1', 'broken').state, 'not a hash');
  const survivor = new RedisMembership(client, keys, 'survivor', 'PUBLISH');
  const first = await survivor.reap('dead');
  assert.deepEqual([first.complete, first.channels.map((c) => c.channel), first.channelsLeft], [false, ['presence-done'], 1]);
  await client.del(keys.channel('a1', 'broken').state);
  const second = await survivor.reap('dead');
  assert.deepEqual([second.complete, second.channels], [true, []]);
});

test('a receipt answers only what still holds: no member removed who is back, no channel vacated that is occupied again', async () => {
  // A late attempt's receipt is answered up to 10 s (a leave) or 60 s (a reap) after it ran; another node may have
  // occupied the channel again, with the same user, meanwhile. Receipts written as the scripts write them.
  const keys = new RedisKeys('receipt-stale');
  const node = new RedisMembership(client, keys, 'n1', 'PUBLISH', () => true);
  const other = new RedisMembership(client, keys, 'n2', 'PUBLISH', () => true);
  const u = { userId: 'u', userInfo: {} };
  // Leave `r1` of socket s1 (its share already gone) removed u and vacated the channel, late.
  await client.set(keys.leaveReceipt('a1', 'presence-back', 'n1', 'r1'), '1,1');
  await other.join('a1', 'presence-back', 's9', u, 0);
  assert.deepEqual(await node.leave('a1', 'presence-back', 's1', u, 'r1'), { memberRemoved: false, vacated: false, count: undefined });
  await other.leave('a1', 'presence-back', 's9', u);
  assert.deepEqual(await node.leave('a1', 'presence-back', 's1', u, 'r1'), { memberRemoved: true, vacated: true, count: undefined });

  // The reap of dead node `dead` on a channel removed bob and ann and vacated it, late; bob is back.
  await client.sadd(keys.nodeChannels('dead'), JSON.stringify(['a1', 'presence-reaped']));
  await client.set(keys.reapReceipt('a1', 'presence-reaped', 'dead'), JSON.stringify([1, ['bob', '#7'], ['bob', '7']]));
  await other.join('a1', 'presence-reaped', 's8', { userId: 'bob', userInfo: {} }, 0);
  const outcome = await node.reap('dead');
  assert.deepEqual(outcome.channels, [{ appId: 'a1', channel: 'presence-reaped', removedUsers: [7], vacated: false, count: undefined }]);
});

test('a join of a big channel whose count is held back tells its joiner the count, also when tried again after the count went out', async () => {
  // Two reviews: the trailing count skipped a total equal to the one published last, so a joiner told its held count
  // kept it after the channel went back; and a join tried again after the trailing count published its total was
  // answered no count at all.
  const keys = new RedisKeys('held-count');
  const node = new RedisMembership(client, keys, 'n1', 'PUBLISH', () => true);
  for (let i = 0; i < 100; i++) await node.join('a1', 'big', `s${i}`, null, 0);
  const held = await node.join('a1', 'big', 'joiner', null, 0);
  assert.deepEqual([held.count, held.heldCount], [undefined, 101]);
  // The trailing count at the interval's end must go out whatever the last published one was.
  assert.equal(await client.hget(keys.channel('a1', 'big').state, 'countSent'), '-1');
  await node.publishHeldCounts();
  assert.equal(await client.hget(keys.channel('a1', 'big').state, 'countSent'), '101');
  // Tried again now (its first answer lost): told the count as it is.
  const again = await node.join('a1', 'big', 'joiner', null, 0, true);
  assert.deepEqual([again.count, again.heldCount], [undefined, 101]);
});

test('the take-back of a join echoes the member it removes as its member_added did', async () => {
  // The review: a user joined signed 2 by one connection and "2" by another; the first left, the second's join was
  // taken back: member_removed went out as 2, the outcome (and so the webhook) said "2".
  const keys = new RedisKeys('take-back-id');
  const node = new RedisMembership(client, keys, 'n1', 'PUBLISH', () => true);
  const asNumber = { userId: '2', signedUserId: 2, userInfo: {} };
  const asString = { userId: '2', signedUserId: '2', userInfo: {} };
  await node.join('a1', 'presence-t', 'a', asNumber, 0);
  await node.join('a1', 'presence-t', 'b', asString, 0);
  await node.leave('a1', 'presence-t', 'a', asNumber);
  const told = await node.takeBack('a1', 'presence-t', 'b', asString, node.newLeave());
  assert.deepEqual([told.memberRemoved, told.removedUserId], [true, 2]);
});

/**
 * A node on a connection of its own whose next call of `method` on a key, once armed, runs `before` ahead of the command and
 * `after` between its answer and the node reading it: another node's changes landing between two of this node's
 * commands, as a late event loop lets them. `idle()`: no command of the node in flight.
 */
function interleavedNode(keys: RedisKeys, nodeId: string) {
  const connection = new Redis(redis.url);
  let inFlight = 0;
  let armed: { method: string; key: string; before?: () => Promise<void>; after?: () => Promise<void> } | undefined;
  let fired = false;
  /** What a hook threw: the node's own catch would swallow it, so the test rethrows it (`hooksPassed`). */
  let hookError: unknown;
  const proxied = new Proxy(connection, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop, target);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        const around = armed?.method === prop && args[0] === armed.key ? armed : undefined;
        if (around === undefined) {
          const result: unknown = (value as (...a: unknown[]) => unknown).apply(target, args);
          if (!(result instanceof Promise)) return result;
          inFlight++;
          return result.finally(() => inFlight--);
        }
        armed = undefined;
        inFlight++;
        return (async () => {
          try {
            await around.before?.().catch((err: unknown) => (hookError = err));
            const answer: unknown = await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
            await around.after?.().catch((err: unknown) => (hookError = err));
            return answer;
          } finally {
            fired = true;
            inFlight--;
          }
        })();
      };
    },
  });
  const node = new RedisMembership(proxied, keys, nodeId, 'PUBLISH', () => true);
  return {
    node,
    /** Arms the next call of `method` on `key`. */
    arm: (method: 'hget' | 'sadd', key: string, around: { before?: () => Promise<void>; after?: () => Promise<void> }) => {
      armed = { method, key, ...around };
      fired = false;
    },
    /** The armed call ran, and the node has nothing in flight (its index writes and checks are over). */
    settled: () => fired && inFlight === 0,
    idle: () => inFlight === 0,
    hooksPassed: () => {
      if (hookError !== undefined) throw hookError;
    },
    close: () => connection.disconnect(),
  };
}

test("the app's index ends as the channel is when another node occupies and vacates it between a vacate's write and its check", async () => {
  // A probe (two nodes, 10 000 subscribe/unsubscribe flaps): a few empty channels stayed listed for good. n2's vacate
  // read the count after n1 occupied the channel, n1 left it before n2 wrote again, and n2 listed it on that reading.
  const keys = new RedisKeys('index-vacate-race');
  const n1 = new RedisMembership(client, keys, 'n1', 'PUBLISH', () => true);
  const n2 = interleavedNode(keys, 'n2');
  try {
    await n2.node.join('a1', 'c', 's2', null, 0);
    await until(n2.idle, "n2's listing");
    n2.arm('hget', keys.channel('a1', 'c').state, {
      before: async () => {
        await n1.join('a1', 'c', 's1', null, 0);
      },
      after: async () => {
        assert.equal((await n1.leave('a1', 'c', 's1', null)).vacated, true);
        await client.ping();
      },
    });
    assert.equal((await n2.node.leave('a1', 'c', 's2', null)).vacated, true);
    await until(n2.settled, "n2's vacate of the index");
    n2.hooksPassed();
    await eventually(async () => (await client.sismember(keys.appChannels('a1'), 'c')) === 0, 'the empty channel unlisted');
    // Settled: it stays so (before, n2's write came last and nothing removed it).
    await client.ping();
    assert.equal(await client.sismember(keys.appChannels('a1'), 'c'), 0);
    assert.equal(await client.hget(keys.channel('a1', 'c').state, 'total'), null);
  } finally {
    n2.close();
  }
});

test("the app's index ends as the channel is when an occupying join's listing lands after another node vacated the channel", async () => {
  const keys = new RedisKeys('index-list-race');
  const n1 = interleavedNode(keys, 'n1');
  const n2 = new RedisMembership(client, keys, 'n2', 'PUBLISH', () => true);
  try {
    // n1 occupies the channel; before its listing is sent, n2 joins, n1 leaves and n2 vacates the channel.
    n1.arm('sadd', keys.appChannels('a1'), {
      before: async () => {
        await n2.join('a1', 'c', 's2', null, 0);
        await n1.node.leave('a1', 'c', 's1', null);
        assert.equal((await n2.leave('a1', 'c', 's2', null)).vacated, true);
        await client.ping();
      },
    });
    assert.equal((await n1.node.join('a1', 'c', 's1', null, 0)).occupied, true);
    await until(n1.settled, "n1's listing");
    n1.hooksPassed();
    await eventually(async () => (await client.sismember(keys.appChannels('a1'), 'c')) === 0, 'the empty channel unlisted');
    await client.ping();
    assert.equal(await client.sismember(keys.appChannels('a1'), 'c'), 0);
  } finally {
    n1.close();
  }
});

test('GET /channels reads only the channels it answers, their user counts only when asked, a bounded number at once', async () => {
  // A probe: on 22 000 channels a request filtered to one sent 44 000 commands at once (an HGET and an HLEN per channel
  // of the app), the last ones timed out behind the first (503) and the node's thread was held ~1 s.
  const keys = new RedisKeys('index-read');
  const writer = new RedisMembership(client, keys, 'n1', 'PUBLISH', () => true);
  const channels = Array.from({ length: CHANNELS_READ_AT_ONCE * 2 + 10 }, (_, i) => `pub-${i}`);
  for (const channel of channels) await writer.join('a1', channel, `s-${channel}`, null, 0);
  await writer.join('a1', 'presence-room', 'p1', { userId: 'u1', userInfo: {} }, 0);
  await eventually(async () => (await client.scard(keys.appChannels('a1'))) === channels.length + 1, 'every channel listed');

  const connection = new Redis(redis.url);
  const calls = { hget: 0, hlen: 0 };
  const listings = { smembers: 0, sscan: 0 };
  let inFlight = 0;
  let mostInFlight = 0;
  const counting = new Proxy(connection, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop, target);
      if (typeof value !== 'function') return value;
      if (prop === 'smembers' || prop === 'sscan') listings[prop] += 1;
      if (prop !== 'hget' && prop !== 'hlen') return value.bind(target);
      return async (...args: unknown[]) => {
        calls[prop] += 1;
        mostInFlight = Math.max(mostInFlight, ++inFlight);
        try {
          return await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
        } finally {
          inFlight--;
        }
      };
    },
  });
  try {
    const reader = new RedisMembership(counting, keys, 'n2', 'PUBLISH', () => true);
    const one = await reader.channels('a1', { include: (name) => name === 'pub-7', userCount: false });
    assert.deepEqual([...one], [['pub-7', { subscriptionCount: 1, userCount: 0 }]]);
    assert.deepEqual(calls, { hget: 1, hlen: 0 });

    // A prefix is matched by Redis (SSCAN … MATCH): only the matching names come back, and only they are read.
    const presence = await reader.channels('a1', { prefix: 'presence-', userCount: true });
    assert.deepEqual([...presence], [['presence-room', { subscriptionCount: 1, userCount: 1 }]]);
    assert.deepEqual(calls, { hget: 2, hlen: 1 });
    assert.equal(listings.smembers, 1, 'the whole index read only for the request without a prefix');
    assert.ok(listings.sscan >= 1);
    const sevens = await reader.channels('a1', { prefix: 'pub-7', userCount: false });
    assert.deepEqual([...sevens.keys()].sort(), channels.filter((c) => c.startsWith('pub-7')).sort());
    // The prefix is the client's text: a glob character in it is matched as itself (no name holds one).
    assert.equal((await reader.channels('a1', { prefix: 'pub-*' })).size, 0);
    assert.equal((await reader.channels('a1', { prefix: 'pub-[0-9]' })).size, 0);
    calls.hget = 2;
    calls.hlen = 1;

    mostInFlight = 0;
    const all = await reader.channels('a1');
    assert.equal(all.size, channels.length + 1);
    assert.deepEqual(calls, { hget: 2 + channels.length + 1, hlen: 1 + channels.length + 1 });
    assert.ok(mostInFlight <= 2 * CHANNELS_READ_AT_ONCE, `${mostInFlight} commands in flight at once`);
  } finally {
    connection.disconnect();
  }
});

test('GET /channels leaves out a listed channel without subscribers and drops it from the index', async () => {
  // What a failed command or a node gone between its vacate and its index leaves: read on every GET /channels before.
  const keys = new RedisKeys('index-stale');
  const node = new RedisMembership(client, keys, 'n1', 'PUBLISH', () => true);
  await node.join('a1', 'live', 's1', null, 0);
  await client.sadd(keys.appChannels('a1'), 'stale');
  assert.deepEqual([...(await node.channels('a1')).keys()], ['live']);
  await eventually(async () => (await client.smembers(keys.appChannels('a1'))).join() === 'live', 'the stale name dropped');
});

test("a user's own channel (#server-to-user-) is never in the app's index, and one a node listed before is dropped", async () => {
  // Each signed-in user's channel was listed: 100 000 users made every GET /channels read 100 000 names it left out.
  const keys = new RedisKeys('index-users');
  const node = new RedisMembership(client, keys, 'n1', 'PUBLISH', () => true);
  await node.join('a1', 'live', 's1', null, 0);
  for (let i = 0; i < 5; i++) await node.join('a1', `#server-to-user-u${i}`, `s${i + 2}`, null, 0);
  // As a node of an earlier version listed them (a rolling upgrade): u1's is removed when it empties.
  await client.sadd(keys.appChannels('a1'), '#server-to-user-old', '#server-to-user-u1');
  await node.leave('a1', '#server-to-user-u0', 's2', null);
  await node.leave('a1', '#server-to-user-u1', 's3', null);
  assert.deepEqual((await client.smembers(keys.appChannels('a1'))).sort(), ['#server-to-user-old', 'live']);
  assert.deepEqual([...(await node.channels('a1')).keys()], ['live']);
  await eventually(async () => (await client.smembers(keys.appChannels('a1'))).join() === 'live', 'the old listing dropped');
});

test("a reap takes a dead node's signed-in users out a bounded step at a time, offline for each signed in nowhere else", async () => {
  // In one script, 150 000 users held Redis 1.2 s: every node's commands timed out meanwhile.
  const keys = new RedisKeys('reap-users');
  const dead = new RedisMembership(client, keys, 'dead', 'PUBLISH');
  const survivor = new RedisMembership(client, keys, 'survivor', 'PUBLISH');
  const users = Array.from({ length: 2500 }, (_, i) => `u${i}`);
  await Promise.all(users.map((user) => dead.userPresence('a1', user, true)));
  await Promise.all(users.slice(0, 10).map((user) => survivor.userPresence('a1', user, true)));
  const watcher = new Redis(redis.url);
  const offline = new Set<string>();
  try {
    await watcher.subscribe(keys.users('a1').events);
    watcher.on('message', (_channel: string, message: string) => {
      const { userId, online } = JSON.parse(message) as { userId: string; online: boolean };
      if (!online) offline.add(userId);
    });
    const evals = async () => Number(/cmdstat_evalsha:calls=(\d+)/.exec(await client.info('commandstats'))?.[1] ?? 0);
    const before = await evals();
    await survivor.reap('dead');
    // Its connections' step, and the users' in three.
    assert.equal((await evals()) - before, 4);
    await until(() => offline.size === 2490, 'offline for every user signed in nowhere else');
    assert.equal(users.slice(0, 10).some((user) => offline.has(user)), false);
    assert.equal(await client.exists(keys.users('a1').share('dead')), 0);
    assert.deepEqual(await survivor.usersOnline('a1', users), new Set(users.slice(0, 10)));
  } finally {
    watcher.disconnect();
  }
});

test('a reap of signed-in users stops between two steps when the node is back: the rest are its own again', async () => {
  const keys = new RedisKeys('reap-users-back');
  const dead = new RedisMembership(client, keys, 'dead', 'PUBLISH');
  const survivor = new RedisMembership(client, keys, 'survivor', 'PUBLISH');
  const users = Array.from({ length: 2500 }, (_, i) => `u${i}`);
  await Promise.all(users.map((user) => dead.userPresence('a1', user, true)));
  let asked = 0;
  // Not back when the reap begins (asked with the first step), back when asked after it.
  const outcome = await survivor.reap('dead', async () => ++asked > 1);
  assert.deepEqual([outcome.complete, outcome.appsLeft], [false, 1]);
  assert.equal(await client.scard(keys.users('a1').share('dead')), 1500, 'the users after the first step left to their node');
  assert.equal((await survivor.usersOnline('a1', users)).size, 1500);
});
