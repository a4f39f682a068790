/**
 * Member lists read again after the engine said member events may have been missed (realtime/member-resync.ts): read
 * against the last change seen when the loss began, sent again to every subscriber whose list is older, and the events
 * at or below it that are still on their way are not sent after it. (test/e2e/presence-resync.test.ts runs it on a real
 * Redis with two nodes.)
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { MemberSnapshot } from '../../src/adapters/adapter.js';
import { EngineUnavailableError } from '../../src/adapters/adapter.js';
import { internalEnvelope } from '../../src/adapters/membership-events.js';
import { createFanout } from '../../src/realtime/fanout.js';
import { gateMemberEvents } from '../../src/realtime/member-delivery.js';
import { createMemberResync } from '../../src/realtime/member-resync.js';
import { subscribe } from '../../src/realtime/subscribe.js';
import { capturedLogger, signedSubscribe, unitWorld, type UnitWorld } from '../helpers/unit.js';

const ROOM = 'presence-room';
type Answer = MemberSnapshot | 'unchanged' | 'unrecorded';

/** Two members of ROOM (u1, u2), each on its own connection, both answered; and a resync over an engine the test answers. */
async function room(world: UnitWorld = unitWorld()) {
  const one = world.connect();
  const two = world.connect();
  await subscribe(world.deps, one.connection, signedSubscribe(world, one.connection, ROOM, JSON.stringify({ user_id: 'u1' })));
  await subscribe(world.deps, two.connection, signedSubscribe(world, two.connection, ROOM, JSON.stringify({ user_id: 'u2' })));
  const reads: { since: number; answer: (a: Answer) => void; fail: (e: Error) => void }[] = [];
  const adapter = {
    membersChangedSince: (_appId: string, _channel: string, since: number) =>
      new Promise<Answer>((answer, fail) => reads.push({ since, answer, fail })),
  };
  const { logger, lines } = capturedLogger('info');
  const resync = createMemberResync({ hub: world.deps.hub, adapter, logger });
  const { hub, metrics } = world.deps;
  const deliver = gateMemberEvents(hub, metrics, createFanout({ hub, metrics }));
  /** A member event of ROOM arriving from the engine. */
  const event = (kind: 'added' | 'removed', user: string, seq: number) =>
    deliver(internalEnvelope(world.app.id, ROOM, kind, JSON.stringify({ user_id: user }), seq, undefined));
  return { world, one, two, channel: hub.channel(world.app.id, ROOM)!, reads, lines, resync, event };
}

/** The member ids of each list the socket got, in order. */
const lists = (socket: { data(event: string): unknown[] }) =>
  socket.data('pusher_internal:subscription_succeeded').map((d) => Object.keys((d as { presence: { hash: object } }).presence.hash).sort().join(','));
/** The user ids of the member events the socket got, as `+u` / `-u`. */
const events = (socket: { frames(): { event: string; data?: unknown }[] }) =>
  socket
    .frames()
    .filter((f) => f.event === 'pusher_internal:member_added' || f.event === 'pusher_internal:member_removed')
    .map((f) => `${f.event.endsWith('added') ? '+' : '-'}${(JSON.parse(f.data as string) as { user_id: string }).user_id}`);

test('a change missed, then events that came before the read: the list is read against the change seen when the loss began', async () => {
  const { world, one, two, channel, reads, lines, resync, event } = await room();
  const seen = channel.seenSeq;
  assert.ok(seen > 0, 'the joins told their seq');
  resync.missing(() => true);
  // Missed: u2 left (seen + 1). Then u3's member_added came live (seen + 2) before the node read anything: the review's
  // case, where the last change seen hid the missed one and u2 stayed a ghost.
  event('added', 'u3', seen + 2);
  resync.recovered();
  assert.deepEqual(reads.map((r) => r.since), [seen]);
  reads[0]!.answer({ members: new Map([['u1', null], ['u3', null]]), seq: seen + 2 });
  await resync.settled();
  assert.deepEqual(lists(one.socket), ['u1', 'u1,u3']);
  assert.deepEqual(lists(two.socket), ['u1,u2', 'u1,u3']);
  assert.equal(channel.missedSince, undefined);
  assert.deepEqual(
    lines.filter((l) => l.event === 'presence_resynced').map((l) => [l.level, l.app_id, l.channels, l.connections, l.unread]),
    [['info', world.app.id, 1, 2, 0]],
  );
  // An event at or below the list's seq still on its way is not sent after it; a later one is.
  event('removed', 'u2', seen + 1);
  event('added', 'u4', seen + 3);
  assert.deepEqual(events(one.socket), ['+u2', '+u3', '+u4']);
});

test('a gap: told before the envelope that showed it is delivered, the list as new as that envelope is sent', async () => {
  const { one, channel, reads, resync, event } = await room();
  const seen = channel.seenSeq;
  // The engine's order on a gap: missing, the envelope delivered, recovered.
  resync.missing((_app, name) => name === ROOM);
  event('added', 'u3', seen + 2);
  resync.recovered();
  reads[0]!.answer({ members: new Map([['u1', null], ['u3', null]]), seq: seen + 2 });
  await resync.settled();
  assert.deepEqual(lists(one.socket), ['u1', 'u1,u3']);
});

test('nothing changed since: nothing sent or logged; a list older than what was delivered is read again; a newer subscriber is skipped', async () => {
  const { one, two, channel, reads, lines, resync, event } = await room();
  const seen = channel.seenSeq;
  resync.missing(() => true);
  resync.recovered();
  reads[0]!.answer('unchanged');
  await resync.settled();
  assert.deepEqual([lists(one.socket).length, lists(two.socket).length, lines.length], [1, 1, 0]);
  assert.equal(channel.missedSince, undefined, 'read: no longer noted');
  // A channel not noted is not read.
  resync.recovered();
  await resync.settled();
  assert.equal(reads.length, 1);

  resync.missing(() => true);
  resync.recovered();
  // The answer comes after an event newer than it: read again rather than take that change back.
  event('added', 'u3', seen + 3);
  reads[1]!.answer({ members: new Map([['u1', null], ['u2', null]]), seq: seen + 1 });
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(reads.map((r) => r.since), [seen, seen, seen]);
  // u2 joined again since with a list newer than the answer: only u1 gets it.
  channel.snapshotSeq.set(two.connection, seen + 9);
  reads[2]!.answer({ members: new Map([['u1', null], ['u3', null]]), seq: seen + 4 });
  await resync.settled();
  assert.deepEqual([lists(one.socket), lists(two.socket).length], [['u1', 'u1,u3'], 1]);
});

test("this node's share not recorded (Redis lost it): kept noted, read once the engine says it is recovered again", async () => {
  const { one, channel, reads, lines, resync } = await room();
  const seen = channel.seenSeq;
  resync.missing(() => true);
  resync.recovered();
  reads[0]!.answer('unrecorded');
  await resync.settled();
  assert.deepEqual([lists(one.socket).length, lines.length, channel.missedSince], [1, 0, seen]);
  resync.recovered();
  reads[1]!.answer({ members: new Map([['u1', null], ['u2', null], ['u5', null]]), seq: seen + 1 });
  await resync.settled();
  assert.deepEqual(lists(one.socket), ['u1', 'u1,u2,u5']);
});

test('a read the engine cannot answer: counted unread (warn), tried again a second later; recovered during a round: one more round', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const { one, channel, reads, lines, resync } = await room();
  resync.missing(() => true);
  resync.recovered();
  resync.recovered();
  resync.recovered();
  assert.equal(reads.length, 1, 'one read while the round runs');
  reads[0]!.fail(new EngineUnavailableError('cluster engine down'));
  // The recovered calls made during it: one more round, one more read.
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(reads.length, 2);
  reads[1]!.fail(new EngineUnavailableError('cluster engine down'));
  await resync.settled();
  assert.deepEqual(
    lines.filter((l) => l.event === 'presence_resynced').map((l) => [l.level, l.channels, l.connections, l.unread]),
    [['warn', 0, 0, 1], ['warn', 0, 0, 1]],
  );
  assert.equal(reads.length, 2);
  t.mock.timers.tick(1000);
  assert.equal(reads.length, 3, 'tried again after a second');
  reads[2]!.answer({ members: new Map([['u1', null]]), seq: channel.seenSeq + 1 });
  await resync.settled();
  assert.deepEqual(lists(one.socket), ['u1', 'u1']);
});

test('a loss begun while a read is under way: the list it answers is sent, and the channel stays noted for the next round', async () => {
  // The review: the read cleared the note the second loss had found set, and the member_removed missed then stayed.
  const { one, channel, reads, resync } = await room();
  const seen = channel.seenSeq;
  resync.missing(() => true);
  resync.recovered();
  resync.missing(() => true);
  reads[0]!.answer({ members: new Map([['u1', null], ['u2', null], ['u3', null]]), seq: seen + 1 });
  await resync.settled();
  assert.deepEqual(lists(one.socket), ['u1', 'u1,u2,u3']);
  assert.equal(channel.missedSince, seen, 'still noted, since the first loss');
  resync.recovered();
  assert.deepEqual(reads.map((r) => r.since), [seen, seen]);
  reads[1]!.answer({ members: new Map([['u1', null], ['u3', null]]), seq: seen + 2 });
  await resync.settled();
  assert.deepEqual(lists(one.socket), ['u1', 'u1,u2,u3', 'u1,u3']);
  assert.equal(channel.missedSince, undefined);
});

test('a presence join under way when a loss began: noted from its own list once answered, and read', async () => {
  // The review: the channel did not exist yet when the loss began, so nothing noted it, and its list went stale.
  const { world, reads, resync } = await room();
  const three = world.connect();
  const joining = subscribe(world.deps, three.connection, signedSubscribe(world, three.connection, 'presence-other', JSON.stringify({ user_id: 'u3' })));
  // Any loss: the channel it names (or every one) cannot name a channel not made yet.
  resync.missing((_app, name) => name === 'presence-other');
  await joining;
  const other = world.deps.hub.channel(world.app.id, 'presence-other')!;
  assert.equal(other.missedSince, other.seenSeq, 'noted from the seq of the list it was answered');
  assert.deepEqual(reads.map((r) => r.since), [other.seenSeq], 'read at once (the engine may be back already)');
  reads[0]!.answer('unchanged');
  await resync.settled();
  assert.equal(other.missedSince, undefined);
  // A join begun after the loss is not noted.
  const four = world.connect();
  await subscribe(world.deps, four.connection, signedSubscribe(world, four.connection, 'presence-later', JSON.stringify({ user_id: 'u4' })));
  assert.equal(world.deps.hub.channel(world.app.id, 'presence-later')!.missedSince, undefined);
});
