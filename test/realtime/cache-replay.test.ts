/**
 * A cache channel's last event for a new subscriber (src/realtime/membership.ts `replayCached`), with the cluster join
 * held back as a Redis engine answers it: the cached event is read in order with the events held for the joining
 * subscriber, so it is replayed only when none of those reaches it, and sent once either way.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { subscribe } from '../../src/realtime/subscribe.js';
import { plainSubscribe, slowJoins, unitWorld, type UnitWorld } from '../helpers/unit.js';

const CHANNEL = 'cache-score';

function publish(world: UnitWorld, data: string, excludeSocketId?: string): void {
  world.deps.publisher.publish({ appId: world.app.id, channel: CHANNEL, event: 'score', data, excludeSocketId, source: 'http_api' });
}

/** What the subscriber got on the channel after its answer: `event data` per frame. */
function after(frames: { event: string; channel?: string; data?: unknown }[]): string[] {
  return frames.filter((f) => f.channel === CHANNEL && f.event !== 'pusher_internal:subscription_succeeded').map((f) => `${f.event} ${JSON.stringify(f.data ?? null)}`);
}

test('nothing published while it joins: the cached event is replayed, or cache_miss when there is none', async () => {
  const world = unitWorld();
  const first = world.connect();
  await subscribe(world.deps, first.connection, plainSubscribe(CHANNEL));
  assert.deepEqual(after(first.socket.frames()), ['pusher:cache_miss null']);
  publish(world, '1');
  const late = world.connect();
  await subscribe(world.deps, late.connection, plainSubscribe(CHANNEL));
  assert.deepEqual(after(late.socket.frames()), ['score "1"']);
});

test('an event published while it joins is the cached one: sent once, in its place, not replayed again', async () => {
  const world = unitWorld();
  publish(world, '1');
  const slow = slowJoins(world);
  const { connection, socket } = world.connect();
  const joining = subscribe(world.deps, connection, plainSubscribe(CHANNEL));
  publish(world, '2');
  slow.release();
  await joining;
  assert.deepEqual(after(socket.frames()), ['score "2"']);
});

test('an event published while it joins that excludes this subscriber: the cached event is replayed, as after it', async () => {
  const world = unitWorld();
  const slow = slowJoins(world);
  const { connection, socket } = world.connect();
  const joining = subscribe(world.deps, connection, plainSubscribe(CHANNEL));
  publish(world, '2', connection.socketId);
  slow.release();
  await joining;
  // Before: the held event counted as received, so the subscriber got neither the event nor cache_miss.
  assert.deepEqual(after(socket.frames()), ['score "2"']);
});

test('a client event held while it joins is never the cached one: the backend\'s event (or cache_miss) comes first, then it', async () => {
  const world = unitWorld();
  const clientEvent = (data: string): void =>
    world.deps.publisher.publish({ appId: world.app.id, channel: CHANNEL, event: 'client-x', data, source: 'client_event' });
  for (const cached of [undefined, '1']) {
    if (cached !== undefined) publish(world, cached);
    const slow = slowJoins(world);
    const { connection, socket } = world.connect();
    const joining = subscribe(world.deps, connection, plainSubscribe(CHANNEL));
    clientEvent('c');
    slow.release();
    await joining;
    // Before: the held client event counted as the cached one — neither the backend's event nor cache_miss was sent.
    assert.deepEqual(after(socket.frames()), [cached === undefined ? 'pusher:cache_miss null' : 'score "1"', 'client-x "c"']);
  }
});
