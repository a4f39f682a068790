/**
 * `pusher:subscribe` / `pusher:unsubscribe` on real Connections, the real hub and the local adapter (no sockets): what
 * the client is answered, what the hub and the connection hold after, what is counted, logged and sent as webhooks.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { subscribe, unsubscribe } from '../../src/realtime/subscribe.js';
import { plainSubscribe, signedSubscribe, unitApp, unitWorld } from '../helpers/unit.js';

describe('subscribe', () => {
  test('a public channel: subscription_succeeded, held by the connection and the hub, counted, logged, occupied and count webhooks', async () => {
    const world = unitWorld(unitApp({ enableSubscriptionCount: true }));
    const { connection, socket } = world.connect();
    await subscribe(world.deps, connection, plainSubscribe('news'));
    assert.deepEqual(socket.frames().map((f) => [f.event, f.channel]), [
      ['pusher_internal:subscription_succeeded', 'news'],
      ['pusher_internal:subscription_count', 'news'],
    ]);
    assert.equal(connection.subscriptions.get('news'), null);
    assert.ok(world.deps.hub.channel(world.app.id, 'news')?.subscribers.has(connection));
    assert.equal(world.count('subscription(app-id, public, ok)'), 1);
    assert.deepEqual(world.logged('subscribed').map((l) => [l.channel, l.channel_type]), [['news', 'public']]);
    // The app counts subscriptions: the count this join published is a webhook too, after the occupancy.
    assert.deepEqual(world.webhooks, [
      { name: 'channel_occupied', channel: 'news' },
      { name: 'subscription_count', channel: 'news', subscription_count: 1 },
    ]);
    assert.equal(connection.authorized, false, 'a public channel does not authorize the connection');
  });

  test('an app without subscription counting (the default): no subscription_count to the joiner or the others', async () => {
    const world = unitWorld();
    const first = world.connect();
    const second = world.connect();
    await subscribe(world.deps, first.connection, plainSubscribe('news'));
    await subscribe(world.deps, second.connection, plainSubscribe('news'));
    unsubscribe(world.deps, second.connection, { event: 'pusher:unsubscribe', channel: 'news' });
    await world.deps.adapter.settle();
    await new Promise<void>((resolve) => setImmediate(resolve));
    assert.deepEqual(world.webhooks.map((w) => w.name), ['channel_occupied'], 'the leave was recorded');
    assert.deepEqual(first.socket.frames().map((f) => [f.event, f.channel]), [['pusher_internal:subscription_succeeded', 'news']]);
    assert.deepEqual(second.socket.frames().map((f) => [f.event, f.channel]), [['pusher_internal:subscription_succeeded', 'news']]);
  });

  test('a private channel signed by the backend succeeds and authorizes the connection; a bad signature is refused 401', async () => {
    const world = unitWorld();
    const { connection, socket } = world.connect();
    await subscribe(world.deps, connection, { ...signedSubscribe(world, connection, 'private-a'), channel: 'private-b' });
    assert.deepEqual(socket.data('pusher:subscription_error').map((d) => (d as { status: number }).status), [401]);
    assert.equal(connection.subscriptions.has('private-b'), false);
    assert.equal(world.count('subscription(app-id, private, auth_failed)'), 1);
    assert.deepEqual(world.logged('auth_failed').map((l) => [l.channel, l.reason]), [['private-b', 'auth_failed']]);
    assert.equal(connection.authorized, false);

    await subscribe(world.deps, connection, signedSubscribe(world, connection, 'private-a'));
    assert.equal(connection.subscriptions.has('private-a'), true);
    assert.equal(connection.authorized, true);
  });

  test('presence: the member list is sent, the membership held, member_added emitted once per user', async () => {
    const world = unitWorld();
    const first = world.connect();
    const second = world.connect();
    const data = JSON.stringify({ user_id: 7, user_info: { name: 'Ann' } });
    await subscribe(world.deps, first.connection, signedSubscribe(world, first.connection, 'presence-room', data));
    await subscribe(world.deps, second.connection, signedSubscribe(world, second.connection, 'presence-room', data));
    const [answer] = second.socket.data('pusher_internal:subscription_succeeded') as { presence: { ids: string[]; count: number } }[];
    assert.deepEqual(answer?.presence.ids, ['7']);
    assert.deepEqual(second.connection.subscriptions.get('presence-room'), { userId: '7', signedUserId: 7, userInfo: { name: 'Ann' } });
    assert.equal(world.deps.hub.channel(world.app.id, 'presence-room')?.members.get('7')?.connections, 2);
    assert.deepEqual(
      world.webhooks.filter((w) => w.name === 'member_added'),
      [{ name: 'member_added', channel: 'presence-room', user_id: 7 }],
    );
  });

  test('presence: a user_id "__proto__" is listed in hash like any other (it was left out: the assignment set the prototype)', async () => {
    const world = unitWorld();
    const first = world.connect();
    const second = world.connect();
    const proto = JSON.stringify({ user_id: '__proto__', user_info: { name: 'P' } });
    await subscribe(world.deps, first.connection, signedSubscribe(world, first.connection, 'presence-room', proto));
    const bob = JSON.stringify({ user_id: 'bob', user_info: { name: 'B' } });
    await subscribe(world.deps, second.connection, signedSubscribe(world, second.connection, 'presence-room', bob));
    // And the answer to a repeated subscribe, built apart.
    await subscribe(world.deps, second.connection, signedSubscribe(world, second.connection, 'presence-room', bob));
    const answers = second.socket.sent.filter((s) => s.includes('pusher_internal:subscription_succeeded'));
    assert.equal(answers.length, 2);
    for (const answer of answers) {
      const data = JSON.parse((JSON.parse(answer) as { data: string }).data) as { presence: { hash: Record<string, unknown> } };
      assert.deepEqual(Object.entries(data.presence.hash), [['__proto__', { name: 'P' }], ['bob', { name: 'B' }]]);
    }
  });

  test('presence: a numeric user_id is held as signed, a 64-bit one as its exact digits; an id is counted in characters', async () => {
    const world = unitWorld();
    const { connection, socket } = world.connect();
    // 1e999 was listed as "Infinity" and echoed as null; a fraction is no id; the field twice is ambiguous.
    const refused = [
      '{"user_id":1e999}',
      '{"user_id":1.5}',
      // The top-level id written with an exponent or under an escaped key: a nested one rounding to the same double
      // (ids 2 048 apart) was taken for it.
      '{"user_id":1.2345678901234567e19,"user_info":{"user_id":12345678901234567891}}',
      '{"user\\u005fid":12345678901234567890,"user_info":{"user_id":12345678901234568000}}',
    ];
    refused.push(JSON.stringify({ user_id: '😀'.repeat(129) }));
    for (const data of refused) await subscribe(world.deps, connection, signedSubscribe(world, connection, 'presence-room', data));
    assert.deepEqual(socket.data('pusher:subscription_error').map((d) => (d as { type: string }).type), Array(5).fill('InvalidChannelData'));
    // 128 emoji: 128 characters, 256 UTF-16 units (refused before as longer than 128).
    await subscribe(world.deps, connection, signedSubscribe(world, connection, 'presence-room', JSON.stringify({ user_id: '😀'.repeat(128) })));
    assert.equal(connection.subscriptions.get('presence-room')?.userId, '😀'.repeat(128));

    // A snowflake id, as PHP's json_encode writes a 64-bit int: held, listed and echoed as signed (it was …7000).
    const other = world.connect();
    // A nested field of the same name does not hide it.
    const snowflake = '{"user_id":12345678901234567890,"user_info":{"user_id":7}}';
    await subscribe(world.deps, other.connection, signedSubscribe(world, other.connection, 'presence-room', snowflake));
    assert.deepEqual(other.connection.subscriptions.get('presence-room'), {
      userId: '12345678901234567890',
      signedUserId: '12345678901234567890',
      userInfo: { user_id: 7 },
    });
    const answer = other.socket.data('pusher_internal:subscription_succeeded')[0] as { presence: { ids: string[] } };
    assert.ok(answer.presence.ids.includes('12345678901234567890'));
    assert.deepEqual(socket.data('pusher_internal:member_added').at(-1), { user_id: '12345678901234567890', user_info: { user_id: 7 } });
  });

  test('presence: a user_id with a lone surrogate is refused (it has no UTF-8 form of its own: two would be one member)', async () => {
    const world = unitWorld();
    const { connection, socket } = world.connect();
    const data = JSON.stringify({ user_id: '\ud800', user_info: {} });
    await subscribe(world.deps, connection, signedSubscribe(world, connection, 'presence-room', data));
    assert.deepEqual(socket.data('pusher:subscription_error').map((d) => (d as { type: string }).type), ['InvalidChannelData']);
    assert.equal(connection.subscriptions.has('presence-room'), false);
  });

  test('presence: a subscribe signed without channel_data is told it is missing, not that it is not JSON', async () => {
    const world = unitWorld();
    const { connection, socket } = world.connect();
    await subscribe(world.deps, connection, signedSubscribe(world, connection, 'presence-room'));
    await subscribe(world.deps, connection, signedSubscribe(world, connection, 'presence-other', '{'));
    const errors = socket.data('pusher:subscription_error') as { type: string; error: string; status: number }[];
    assert.deepEqual(
      errors.map((e) => [e.status, e.type, e.error]),
      [
        [400, 'InvalidChannelData', 'channel_data is required on a presence channel'],
        [400, 'InvalidChannelData', 'channel_data is not JSON'],
      ],
    );
    assert.equal(connection.subscriptions.has('presence-room'), false);
    assert.equal(world.count('subscription(app-id, presence, invalid)'), 2);
  });

  test('an invalid name is refused 400, a server-to-user channel needs the sign-in of that user (401)', async () => {
    const world = unitWorld();
    const { connection, socket } = world.connect();
    await subscribe(world.deps, connection, plainSubscribe('bad name!'));
    await subscribe(world.deps, connection, plainSubscribe('#server-to-user-u1'));
    assert.deepEqual(
      socket.data('pusher:subscription_error').map((d) => (d as { status: number }).status),
      [400, 401],
    );
    assert.equal(world.count('subscription(app-id, public, invalid)'), 1);
    // A user channel's bound is the user id's, and its answer says so, not the channel name's characters.
    await subscribe(world.deps, connection, plainSubscribe(`#server-to-user-${'u'.repeat(129)}`));
    const messages = socket.data('pusher:subscription_error').map((d) => (d as { error: string }).error);
    assert.match(messages[0]!, /at most 200 of/);
    assert.match(messages[2]!, /user id of 1 to 128 characters/);
    world.deps.hub.setUser(connection, 'u1');
    await subscribe(world.deps, connection, plainSubscribe('#server-to-user-u1'));
    assert.equal(connection.subscriptions.has('#server-to-user-u1'), true);
  });

  test('the subscription cap counts channels still joining, and refusals past it are also counted as message errors', async () => {
    const world = unitWorld(undefined, { maxSubscriptionsPerConnection: 2 });
    const { connection, socket } = world.connect();
    // Three at once: the third is refused although neither of the first two has been answered yet.
    await Promise.all(['a', 'b', 'c'].map((name) => subscribe(world.deps, connection, plainSubscribe(name))));
    assert.deepEqual([...connection.subscriptions.keys()].sort(), ['a', 'b']);
    assert.deepEqual(socket.frames().filter((f) => f.event === 'pusher:subscription_error').map((f) => f.channel), ['c']);
    assert.equal(world.count('messageError(app-id, too_many_subscriptions)'), 1);
    assert.equal(world.count('subscription(app-id, public, limit)'), 1);
  });

  test('refusals are all counted but only the first 20 of a connection are logged, then one warn line', async () => {
    const world = unitWorld();
    const { connection } = world.connect();
    for (let i = 0; i < 30; i++) await subscribe(world.deps, connection, plainSubscribe(`bad name ${i}`));
    assert.equal(world.count('subscription(app-id, public, invalid)'), 30);
    assert.equal(world.logged('subscription_failed').length, 20);
    assert.deepEqual(world.logged('message_rejected').map((l) => l.level), ['warn']);
  });

  test('unsubscribe: gone from the connection and the hub, logged; the cluster records the leave (vacated webhook)', async () => {
    const world = unitWorld();
    const { connection } = world.connect();
    await subscribe(world.deps, connection, plainSubscribe('news'));
    unsubscribe(world.deps, connection, { event: 'pusher:unsubscribe', channel: 'news' });
    assert.equal(connection.subscriptions.size, 0);
    assert.equal(world.deps.hub.channel(world.app.id, 'news'), undefined);
    // As the `subscribed` line, with the channel's type (docs/telemetry.md): a LogQL filter on it sees both.
    assert.deepEqual(world.logged('unsubscribed').map((l) => [l.channel, l.channel_type]), [['news', 'public']]);
    await world.deps.adapter.settle();
    await new Promise<void>((resolve) => setImmediate(resolve));
    assert.deepEqual(world.webhooks.map((w) => w.name), ['channel_occupied', 'channel_vacated']);
    // Unsubscribing from a channel it does not hold changes and logs nothing.
    unsubscribe(world.deps, connection, { event: 'pusher:unsubscribe', channel: 'news' });
    assert.equal(world.logged('unsubscribed').length, 1);
  });
});
