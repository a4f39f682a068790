/**
 * Member lists read again after the engine said member events may have been missed (realtime/member-resync.ts): sent
 * again only when the snapshot holds a change the node has not seen, to every subscriber whose list is older, and the
 * events at or below it that are still on their way are not sent again. Requests made while a round runs are served by
 * one more round. (test/e2e/presence-resync.test.ts runs it on a real Redis with two nodes.)
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { MemberSnapshot } from '../../src/adapters/adapter.js';
import { EngineUnavailableError } from '../../src/adapters/adapter.js';
import { internalEnvelope } from '../../src/adapters/membership-events.js';
import { createMemberResync } from '../../src/realtime/member-resync.js';
import { gateMemberEvents } from '../../src/realtime/member-delivery.js';
import { createFanout } from '../../src/realtime/fanout.js';
import { subscribe } from '../../src/realtime/subscribe.js';
import { capturedLogger, signedSubscribe, unitWorld, type UnitWorld } from '../helpers/unit.js';

const ROOM = 'presence-room';

/** Two members of ROOM (u1, u2), each on its own connection, both answered. */
async function room(world: UnitWorld) {
  const one = world.connect();
  const two = world.connect();
  await subscribe(world.deps, one.connection, signedSubscribe(world, one.connection, ROOM, JSON.stringify({ user_id: 'u1' })));
  await subscribe(world.deps, two.connection, signedSubscribe(world, two.connection, ROOM, JSON.stringify({ user_id: 'u2' })));
  return { one, two, channel: world.deps.hub.channel(world.app.id, ROOM)! };
}

/** An engine whose reads the test answers: each waits until `answer` (or `fail`); `since` is the seq the node saw. */
function engine() {
  const reads: { channel: string; since: number; answer: (s: MemberSnapshot | undefined) => void; fail: (e: Error) => void }[] = [];
  return {
    reads,
    membersChangedSince: (_appId: string, channel: string, since: number) =>
      new Promise<MemberSnapshot | undefined>((answer, fail) => reads.push({ channel, since, answer, fail })),
  };
}

/** The member ids of each list the socket got, in order. */
const lists = (socket: { data(event: string): unknown[] }) =>
  socket.data('pusher_internal:subscription_succeeded').map((d) => Object.keys((d as { presence: { hash: object } }).presence.hash).sort().join(','));
/** The user ids of the member_added events the socket got. */
const added = (socket: { data(event: string): unknown[] }) =>
  socket.data('pusher_internal:member_added').map((d) => (d as { user_id: string }).user_id);

test('a snapshot past the last change seen: every subscriber gets the list again, once, and older events are not sent after it', async () => {
  const world = unitWorld();
  const { one, two, channel } = await room(world);
  const seen = channel.seenSeq;
  assert.ok(seen > 0, 'the joins told their seq');
  const fake = engine();
  const { logger, lines } = capturedLogger('info');
  const resync = createMemberResync({ hub: world.deps.hub, adapter: fake, logger });
  const done = resync(() => true);
  assert.deepEqual(fake.reads.map((r) => [r.channel, r.since]), [[ROOM, seen]]);
  // u2 left unseen (seq + 2), and u3 came, its member_added (seq + 1) still on its way: the list has u1 alone.
  fake.reads[0]!.answer({ members: new Map([['u1', null]]), seq: seen + 2 });
  await done;
  assert.deepEqual(lists(one.socket), ['u1', 'u1']);
  assert.deepEqual(lists(two.socket), ['u1,u2', 'u1']);
  assert.equal(channel.seenSeq, seen + 2);
  assert.deepEqual(
    lines.filter((l) => l.event === 'presence_resynced').map((l) => [l.level, l.app_id, l.channels, l.connections, l.unread]),
    [['info', world.app.id, 1, 2, 0]],
  );
  // The member event that was on its way (at or below the snapshot) is not sent after the list; a later one is.
  const deliver = gateMemberEvents(world.deps.hub, world.deps.metrics, createFanout({ hub: world.deps.hub, metrics: world.deps.metrics }));
  deliver(internalEnvelope(world.app.id, ROOM, 'added', JSON.stringify({ user_id: 'u3' }), seen + 1, undefined));
  deliver(internalEnvelope(world.app.id, ROOM, 'added', JSON.stringify({ user_id: 'u4' }), seen + 3, undefined));
  assert.deepEqual(added(one.socket), ['u2', 'u4']);
});

test('no change past the last one seen sends nothing and logs nothing; nor one the events brought meanwhile; a subscriber with a newer list is skipped', async () => {
  const world = unitWorld();
  const { one, two, channel } = await room(world);
  const fake = engine();
  const { logger, lines } = capturedLogger('info');
  const resync = createMemberResync({ hub: world.deps.hub, adapter: fake, logger });
  let done = resync(() => true);
  fake.reads[0]!.answer(undefined);
  await done;
  assert.deepEqual([lists(one.socket).length, lists(two.socket).length], [1, 1]);
  // Read, but the member event came before the answer: its list is no newer than what the clients have.
  done = resync(() => true);
  const seen = channel.seenSeq;
  channel.seenSeq = seen + 3;
  fake.reads[1]!.answer({ members: new Map([['u1', null], ['u2', null]]), seq: seen + 2 });
  await done;
  assert.deepEqual([lists(one.socket).length, lists(two.socket).length], [1, 1]);
  assert.deepEqual(lines, []);

  // u2 joined after the change the snapshot holds (its answer's seq is newer): only u1 gets the list.
  channel.snapshotSeq.set(two.connection, channel.seenSeq + 5);
  done = resync((appId, name) => appId === world.app.id && name === ROOM);
  fake.reads[2]!.answer({ members: new Map([['u1', null], ['u2', null]]), seq: channel.seenSeq + 4 });
  await done;
  assert.deepEqual([lists(one.socket).length, lists(two.socket).length], [2, 1]);
  // A channel the request does not name is not read.
  done = resync(() => false);
  await done;
  assert.equal(fake.reads.length, 3);
});

test('requests while a round runs are served by one more round; a read the engine cannot answer is counted unread (warn)', async () => {
  const world = unitWorld();
  const { one, channel } = await room(world);
  const fake = engine();
  const { logger, lines } = capturedLogger('info');
  const resync = createMemberResync({ hub: world.deps.hub, adapter: fake, logger });
  const first = resync(() => true);
  const more = [resync(() => true), resync((_a, name) => name === ROOM), resync(() => true)];
  assert.equal(fake.reads.length, 1, 'one read while the round runs');
  fake.reads[0]!.fail(new EngineUnavailableError('cluster engine down'));
  await first;
  assert.deepEqual(
    lines.filter((l) => l.event === 'presence_resynced').map((l) => [l.level, l.channels, l.connections, l.unread]),
    [['warn', 0, 0, 1]],
  );
  // The three requests made meanwhile: one more round, one more read.
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(fake.reads.length, 2);
  fake.reads[1]!.answer({ members: new Map([['u1', null]]), seq: channel.seenSeq + 1 });
  await Promise.all(more);
  assert.equal(fake.reads.length, 2);
  assert.deepEqual(lists(one.socket), ['u1', 'u1']);
});
