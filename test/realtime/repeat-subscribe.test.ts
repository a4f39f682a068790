/**
 * A `pusher:subscribe` repeated for a channel the connection already holds (or is still joining): answered again each
 * time, as the first was, but it is no new subscription — counted as `ok` and logged as `subscribed` once, however often
 * a client repeats it (up to its frame budget, 200 a second by default). A refused repeat is counted as any refusal.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { subscribe, unsubscribe } from '../../src/realtime/subscribe.js';
import { plainSubscribe, signedSubscribe, unitWorld } from '../helpers/unit.js';

describe('a repeated subscribe', () => {
  test('is answered every time but counted and logged once; after an unsubscribe it is a new subscription again', async () => {
    const world = unitWorld();
    const { connection, socket } = world.connect();
    for (let i = 0; i < 50; i++) await subscribe(world.deps, connection, plainSubscribe('news'));
    assert.equal(socket.frames().filter((f) => f.event === 'pusher_internal:subscription_succeeded').length, 50);
    assert.equal(world.count('subscription('), 1);
    assert.equal(world.count('subscription(app-id, public, ok)'), 1);
    assert.deepEqual(world.logged('subscribed').map((l) => l.channel), ['news']);
    assert.deepEqual(world.webhooks.map((w) => w.name), ['channel_occupied']);
    assert.equal(connection.subscriptions.size, 1);

    unsubscribe(world.deps, connection, { event: 'pusher:unsubscribe', channel: 'news' });
    await subscribe(world.deps, connection, plainSubscribe('news'));
    assert.equal(world.count('subscription(app-id, public, ok)'), 2);
    assert.equal(world.logged('subscribed').length, 2);
  });

  test('while the first is still joining: both answered, one subscription counted and logged', async () => {
    const world = unitWorld();
    const { connection, socket } = world.connect();
    await Promise.all([subscribe(world.deps, connection, plainSubscribe('news')), subscribe(world.deps, connection, plainSubscribe('news'))]);
    assert.equal(socket.frames().filter((f) => f.event === 'pusher_internal:subscription_succeeded').length, 2);
    assert.equal(world.count('subscription(app-id, public, ok)'), 1);
    assert.equal(world.logged('subscribed').length, 1);
  });

  test('presence: the member list is sent again, one subscription and one member_added', async () => {
    const world = unitWorld();
    const { connection, socket } = world.connect();
    const data = JSON.stringify({ user_id: 'u1' });
    for (let i = 0; i < 3; i++) await subscribe(world.deps, connection, signedSubscribe(world, connection, 'presence-room', data));
    const answers = socket.data('pusher_internal:subscription_succeeded') as { presence: { ids: string[] } }[];
    assert.deepEqual(answers.map((a) => a.presence.ids), [['u1'], ['u1'], ['u1']]);
    assert.equal(world.count('subscription(app-id, presence, ok)'), 1);
    assert.equal(world.logged('subscribed').length, 1);
    assert.equal(world.webhooks.filter((w) => w.name === 'member_added').length, 1);
  });

  test('a private repeat with a bad signature is refused and counted as before', async () => {
    const world = unitWorld();
    const { connection, socket } = world.connect();
    await subscribe(world.deps, connection, signedSubscribe(world, connection, 'private-a'));
    await subscribe(world.deps, connection, { ...signedSubscribe(world, connection, 'private-b'), channel: 'private-a' });
    await subscribe(world.deps, connection, signedSubscribe(world, connection, 'private-a'));
    assert.deepEqual(socket.data('pusher:subscription_error').map((d) => (d as { status: number }).status), [401]);
    assert.equal(world.count('subscription(app-id, private, auth_failed)'), 1);
    assert.equal(world.count('subscription(app-id, private, ok)'), 1);
    assert.equal(world.logged('subscribed').length, 1);
  });
});
