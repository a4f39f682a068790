/**
 * The `seq` gate in front of the fan-out (src/realtime/member-delivery.ts): a subscriber whose answer already had a change
 * (its snapshot at or above the envelope's `seq`) does not get it again; once an envelope past its snapshot went by, the
 * snapshot is dropped and the envelope goes through the ordinary fan-out when nobody needs skipping.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Envelope } from '../../src/adapters/envelope.js';
import { gateMemberEvents } from '../../src/realtime/member-delivery.js';
import { subscribe } from '../../src/realtime/subscribe.js';
import { plainSubscribe, recordingMetrics, unitApp, unitWorld } from '../helpers/unit.js';

const count = (n: number, seq: number): Envelope => ({
  appId: 'app-id',
  channel: 'news',
  event: 'pusher_internal:subscription_count',
  data: JSON.stringify({ subscription_count: n }),
  userId: undefined,
  excludeSocketId: undefined,
  kind: 'protocol',
  trace: undefined,
  publishedAt: 0,
  seq,
});

test('a count at or below a subscriber’s snapshot skips it; the first past it drops the snapshot and goes through the fan-out', async () => {
  const world = unitWorld();
  const early = world.connect();
  const late = world.connect();
  await subscribe(world.deps, early.connection, plainSubscribe('news'));
  await subscribe(world.deps, late.connection, plainSubscribe('news'));
  const channel = world.deps.hub.channel('app-id', 'news')!;
  channel.snapshotSeq.set(late.connection, 10);
  const fannedOut: number[] = [];
  const deliver = gateMemberEvents(world.deps.hub, recordingMetrics().metrics, (e) => fannedOut.push(e.seq ?? 0));
  const counts = (socket: typeof early.socket) =>
    socket.data('pusher_internal:subscription_count').map((d) => (d as { subscription_count: number }).subscription_count);

  deliver(count(1, 9));
  assert.deepEqual(counts(early.socket), [1]);
  assert.deepEqual(counts(late.socket), [], 'its own answer already had it');
  assert.equal(channel.snapshotSeq.has(late.connection), true);

  deliver(count(2, 11));
  assert.deepEqual(fannedOut, [11], 'nobody to skip: the ordinary fan-out');
  assert.equal(channel.snapshotSeq.size, 0, 'the snapshot is passed: dropped');
});

test('a join records a snapshot for its own count only when it published one (a big channel’s count may be held back)', async () => {
  const world = unitWorld(unitApp({ enableSubscriptionCount: true }));
  const adapter = world.deps.adapter;
  const join = adapter.join.bind(adapter);
  let published = true;
  // As the Redis engine answers: the channel's seq, and the count the join published (none when it was held back).
  adapter.join = async (...args) => {
    const outcome = await join(...args);
    return { ...outcome, seq: 50, count: published ? outcome.count : undefined };
  };
  const counted = world.connect();
  await subscribe(world.deps, counted.connection, plainSubscribe('news'));
  published = false;
  const held = world.connect();
  await subscribe(world.deps, held.connection, plainSubscribe('news'));
  const channel = world.deps.hub.channel('app-id', 'news')!;
  assert.equal(channel.snapshotSeq.get(counted.connection), 50);
  // Before: recorded too, so the counts on their way to it were skipped while it had none of its own.
  assert.equal(channel.snapshotSeq.has(held.connection), false);
});
