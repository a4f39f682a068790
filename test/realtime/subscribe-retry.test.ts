/**
 * A subscription the cluster engine could not record (Redis unreachable, a shard failing over, no answer in time) is tried
 * again, with back-off, for up to `SUBSCRIBE_RETRY_MS` before it is refused with 503: pusher-js never subscribes again
 * after a refusal, so a refusal during a failover of a few seconds left the client off the channel for good. An
 * unsubscribe or a close meanwhile ends the retries, unanswered.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { EngineUnavailableError, type Adapter, type TakeBackOutcome } from '../../src/adapters/adapter.js';
import { JOIN_RETRIES_WAITING_MAX } from '../../src/realtime/membership.js';
import { subscribe, unsubscribe } from '../../src/realtime/subscribe.js';
import { plainSubscribe, signedSubscribe, unitWorld, type UnitWorld } from '../helpers/unit.js';

/**
 * The engine refuses the first `failures` joins (as a Redis that is down does), then records them; counts the attempts,
 * and the joins given up (`abandonJoin`: what an attempt that ran late recorded is then taken back).
 */
function failingJoins(
  world: UnitWorld,
  failures: number,
  told: TakeBackOutcome = { occupied: false, memberAdded: false, memberRemoved: false, vacated: false },
): { attempts: () => number; abandoned: string[] } {
  const adapter: Adapter = world.deps.adapter;
  const { join } = adapter;
  let attempts = 0;
  const abandoned: string[] = [];
  adapter.join = (...args) => {
    attempts++;
    return attempts <= failures ? Promise.reject(new EngineUnavailableError('cluster engine down')) : join.apply(adapter, args);
  };
  adapter.abandonJoin = (appId, channel, socketId, member) => {
    abandoned.push(`${appId} ${channel} ${socketId} ${member?.userId ?? '-'}`);
    return Promise.resolve(told);
  };
  return { attempts: () => attempts, abandoned };
}

describe('a subscription the engine could not record', () => {
  test('is tried again until the engine records it, then answered as any: nothing refused, counted once', async () => {
    const world = unitWorld();
    const engine = failingJoins(world, 2);
    const { connection, socket } = world.connect();
    await subscribe(world.deps, connection, signedSubscribe(world, connection, 'presence-room', JSON.stringify({ user_id: 'u1' })));
    assert.equal(engine.attempts(), 3);
    // Before: refused 503 at the first failure, and pusher-js never tried again.
    assert.deepEqual(socket.frames().map((f) => f.event), ['pusher_internal:subscription_succeeded']);
    assert.deepEqual(world.calls.filter((c) => c.startsWith('subscription(')), ['subscription(app-id, presence, ok)']);
    assert.deepEqual(world.logged('subscription_failed'), []);
    assert.deepEqual(world.webhooks.map((w) => w.name), ['channel_occupied', 'member_added']);
    assert.ok(connection.subscriptions.has('presence-room'));
    // Answered: nothing to give up (before, the engine took back every failed attempt at once, whatever came next).
    assert.deepEqual(engine.abandoned, []);
  });

  test("the channel's events published while it waited are not held for it: only those after the join that records it", async () => {
    const world = unitWorld();
    const first = world.connect();
    await subscribe(world.deps, first.connection, plainSubscribe('news'));
    const engine = failingJoins(world, 1);
    const { connection, socket } = world.connect();
    const joining = subscribe(world.deps, connection, plainSubscribe('news'));
    // The channel is busy meanwhile (held by another subscriber of this node): before, every event was held for the join
    // over the whole window and sent at once after its answer.
    const publish = (i: number) =>
      world.deps.publisher.publish({ appId: world.app.id, channel: 'news', event: 'tick', data: String(i), source: 'http_api' });
    for (let i = 0; i < 100; i++) publish(i);
    await joining;
    assert.equal(engine.attempts(), 2);
    publish(100);
    await world.deps.adapter.settle();
    assert.deepEqual(socket.frames().map((f) => `${f.event} ${String(f.data ?? '')}`), ['pusher_internal:subscription_succeeded {}', 'tick 100']);
    assert.equal(first.socket.frames().filter((f) => f.event === 'tick').length, 101);
  });

  test('is refused with 503 once SUBSCRIBE_RETRY_MS is over, having been tried more than once', async () => {
    const world = unitWorld(undefined, { subscribeRetryMs: 600 });
    const engine = failingJoins(world, Infinity);
    const { connection, socket } = world.connect();
    const started = Date.now();
    await subscribe(world.deps, connection, plainSubscribe('news'));
    const elapsed = Date.now() - started;
    assert.ok(engine.attempts() >= 3, `${engine.attempts()} attempts`);
    // Once the window is over, after a last try at its end: not before (a wait that would end past it was not begun,
    // and the refusal came up to 2 s early), nor long after.
    assert.ok(elapsed >= 600 && elapsed <= 600 + 150, `refused after ${elapsed} ms`);
    assert.deepEqual(socket.data('pusher:subscription_error'), [
      { type: 'ServiceUnavailable', error: 'The cluster engine is unavailable; retry', status: 503 },
    ]);
    assert.deepEqual(world.calls.filter((c) => c.startsWith('subscription(')), ['subscription(app-id, public, unavailable)']);
    assert.equal(connection.subscriptions.size, 0);
    assert.deepEqual(engine.abandoned, [`app-id news ${connection.socketId} -`]);
  });

  test('past JOIN_RETRIES_WAITING_MAX joins waiting on the node, a failed one is refused at once', async () => {
    const world = unitWorld();
    const engine = failingJoins(world, Infinity);
    const { connection, socket } = world.connect();
    world.deps.hub.joinsWaitingRetry = JOIN_RETRIES_WAITING_MAX;
    await subscribe(world.deps, connection, plainSubscribe('news'));
    assert.equal(engine.attempts(), 1);
    assert.equal(socket.data('pusher:subscription_error').length, 1);
    // Under it, a retry counts while it waits, and no more once it has.
    const next = unitWorld();
    const retried = failingJoins(next, 1);
    const subscriber = next.connect();
    const done = subscribe(next.deps, subscriber.connection, plainSubscribe('other'));
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(next.deps.hub.joinsWaitingRetry, 1);
    await done;
    assert.equal(retried.attempts(), 2);
    assert.equal(next.deps.hub.joinsWaitingRetry, 0);
  });

  test("a join given up is taken back, and what that changed beyond the late join's own changes goes out as webhooks", async () => {
    // A review: the take-back of a late join removed the member and vacated the channel that another subscription's
    // announced join had made (that one's leave changed nothing while the late record stood): no webhook said so.
    const world = unitWorld(undefined, { subscribeRetryMs: 0 });
    failingJoins(world, Infinity, { occupied: false, memberAdded: false, memberRemoved: true, vacated: true });
    const { connection } = world.connect();
    await subscribe(world.deps, connection, signedSubscribe(world, connection, 'presence-room', JSON.stringify({ user_id: 'u1' })));
    await world.deps.adapter.settle();
    assert.deepEqual(world.webhooks.map((w) => `${w.name} ${'user_id' in w ? String(w.user_id) : ''}`), ['member_removed u1', 'channel_vacated ']);
    // And a change of the late join the take-back left standing (the user joined meanwhile from another connection).
    const other = unitWorld(undefined, { subscribeRetryMs: 0 });
    failingJoins(other, Infinity, { occupied: true, memberAdded: true, memberRemoved: false, vacated: false });
    const second = other.connect();
    await subscribe(other.deps, second.connection, signedSubscribe(other, second.connection, 'presence-room', JSON.stringify({ user_id: 'u1' })));
    await other.deps.adapter.settle();
    assert.deepEqual(other.webhooks.map((w) => w.name), ['channel_occupied', 'member_added']);
  });

  test('SUBSCRIBE_RETRY_MS=0 refuses at the first failure', async () => {
    const world = unitWorld(undefined, { subscribeRetryMs: 0 });
    const engine = failingJoins(world, Infinity);
    const { connection, socket } = world.connect();
    await subscribe(world.deps, connection, plainSubscribe('news'));
    assert.equal(engine.attempts(), 1);
    assert.equal(socket.data('pusher:subscription_error').length, 1);
    assert.equal(engine.abandoned.length, 1);
  });

  test('an unsubscribe or a close while a join waits for its next try gives it up at once, not after the back-off', async () => {
    const world = unitWorld();
    const engine = failingJoins(world, Infinity);
    const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
    const waiting = async (n: number): Promise<void> => {
      for (let i = 0; i < 1000 && world.deps.hub.joinsWaitingRetry !== n; i++) await turn();
      assert.equal(world.deps.hub.joinsWaitingRetry, n);
    };
    const { connection } = world.connect();
    const left = subscribe(world.deps, connection, plainSubscribe('news'));
    await waiting(1);
    unsubscribe(world.deps, connection, { event: 'pusher:unsubscribe', channel: 'news' });
    // One turn: the back-off (125-250 ms for a first retry) cannot have run out. Before, the join slept it out, and a drain
    // closing its connections settled before the take-backs of their joins were sent (a member left in Redis for good).
    await turn();
    assert.deepEqual(engine.abandoned, [`app-id news ${connection.socketId} -`]);
    await left;
    const closed = world.connect();
    const dropped = subscribe(world.deps, closed.connection, plainSubscribe('news'));
    await waiting(1);
    closed.socket.terminate();
    await turn();
    assert.equal(engine.abandoned.length, 2);
    await dropped;
    assert.equal(world.deps.hub.joinsWaitingRetry, 0);
    assert.equal(engine.attempts(), 2);
  });

  test('an unsubscribe or a close meanwhile ends the retries: no answer, nothing counted, no join later', async () => {
    const world = unitWorld();
    const engine = failingJoins(world, Infinity);
    const { connection, socket } = world.connect();
    const left = subscribe(world.deps, connection, plainSubscribe('news'));
    unsubscribe(world.deps, connection, { event: 'pusher:unsubscribe', channel: 'news' });
    await left;
    const closed = world.connect();
    const dropped = subscribe(world.deps, closed.connection, plainSubscribe('news'));
    closed.socket.terminate();
    await dropped;
    // One attempt each: the retry saw the client gone before waiting. Each given up once.
    assert.equal(engine.attempts(), 2);
    assert.deepEqual(engine.abandoned, [`app-id news ${connection.socketId} -`, `app-id news ${closed.connection.socketId} -`]);
    assert.deepEqual([socket.frames(), closed.socket.frames()], [[], []]);
    assert.deepEqual(world.calls.filter((c) => c.startsWith('subscription(')), []);
  });
});
