/**
 * `client-*` events on real Connections, the real hub, publisher and local adapter (no sockets): relayed as written to
 * the other subscribers, never echoed, and each refusal answered with its own code on its channel, counted and logged.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ErrorCode } from '../../src/protocol/close-codes.js';
import { clientEvent } from '../../src/realtime/client-events.js';
import type { Connection } from '../../src/transport/connection.js';
import { unitApp, unitWorld, type UnitWorld } from '../helpers/unit.js';

function send(world: UnitWorld, connection: Connection, channel: string, data = '{"typing":true}', name = 'client-typing'): void {
  clientEvent(world.deps, connection, { event: 'client_event', name, channel, data: JSON.parse(data) }, data, undefined);
}

/** Two connections of an app with client events on, both in `channel` (joined through the hub, as membership.ts does). */
function pair(channel = 'private-room', app = unitApp({ enableClientEvents: true })) {
  const world = unitWorld(app);
  const sender = world.connect();
  const receiver = world.connect();
  const membership = channel.startsWith('presence-') ? { userId: 'u1', signedUserId: 'u1', userInfo: null } : null;
  world.deps.hub.join(sender.connection, channel, membership);
  world.deps.hub.join(receiver.connection, channel, null);
  return { world, sender, receiver };
}

/** The `pusher:error` codes and channels a connection was sent. */
function refusals(socket: { frames(): { event: string; channel?: string; data?: unknown }[] }) {
  return socket
    .frames()
    .filter((f) => f.event === 'pusher:error')
    .map((f) => [(f.data as { code: number }).code, f.channel]);
}

describe('client events', () => {
  test('relayed to the other subscribers with the data exactly as written, never echoed; published and webhooked', () => {
    const { world, sender, receiver } = pair();
    const data = '{ "typing" : true }';
    send(world, sender.connection, 'private-room', data);
    assert.deepEqual(receiver.socket.sent, [JSON.stringify({ event: 'client-typing', channel: 'private-room', data })]);
    assert.equal(sender.socket.sent.length, 0);
    assert.equal(world.count('eventPublished(app-id, client_event)'), 1);
    assert.deepEqual(world.webhooks.map((w) => w.name), ['client_event']);
  });

  test('on a presence channel the event carries the sender user_id', () => {
    const { world, sender, receiver } = pair('presence-room');
    send(world, sender.connection, 'presence-room');
    assert.equal((receiver.socket.frames()[0] as { user_id?: string }).user_id, 'u1');
  });

  test('refused when the app does not enable them, on a public channel, or on a channel the sender is not in', () => {
    const off = pair('private-room', unitApp());
    send(off.world, off.sender.connection, 'private-room');
    assert.deepEqual(refusals(off.sender.socket), [[ErrorCode.ClientEventsDisabled, 'private-room']]);

    const { world, sender, receiver } = pair('news');
    send(world, sender.connection, 'news');
    send(world, sender.connection, 'private-elsewhere');
    assert.deepEqual(refusals(sender.socket), [
      [ErrorCode.ClientEventChannelNotAllowed, 'news'],
      [ErrorCode.ClientEventNotSubscribed, 'private-elsewhere'],
    ]);
    assert.equal(receiver.socket.sent.length, 0);
    assert.deepEqual(
      world.calls.filter((c) => c.startsWith('messageError')),
      ['messageError(app-id, unauthorized)', 'messageError(app-id, not_subscribed)'],
    );
    assert.deepEqual(world.logged('message_rejected').map((l) => l.reason), ['unauthorized', 'not_subscribed']);
  });

  test('a name or data over its bound is refused with its own code', () => {
    const { world, sender, receiver } = pair();
    world.deps.limits = { ...world.deps.limits, maxEventNameLength: 20, maxPayloadBytes: 10 };
    send(world, sender.connection, 'private-room', '"ok"', `client-${'n'.repeat(20)}`);
    send(world, sender.connection, 'private-room', `"${'x'.repeat(20)}"`);
    // In characters, as user ids are: 20 with 13 emoji (33 UTF-16 units) pass (a probe: counted in units, refused).
    const delivered = receiver.socket.sent.length;
    send(world, sender.connection, 'private-room', '"ok"', `client-${'😀'.repeat(13)}`);
    assert.equal(receiver.socket.sent.length, delivered + 1);
    send(world, sender.connection, 'private-room', '"ok"', `client-${'😀'.repeat(14)}`);
    assert.deepEqual(refusals(sender.socket), [
      [ErrorCode.ClientEventNameTooLong, 'private-room'],
      [ErrorCode.ClientEventTooLarge, 'private-room'],
      [ErrorCode.ClientEventNameTooLong, 'private-room'],
    ]);
  });

  test('past clientEventsPerSecond: 4301, counted as a rate limit, logged as rate_limited; the next second admits again', () => {
    const { world, sender, receiver } = pair('private-room', unitApp({ enableClientEvents: true, clientEventsPerSecond: 2 }));
    for (let i = 0; i < 4; i++) send(world, sender.connection, 'private-room');
    assert.equal(receiver.socket.sent.length, 2);
    assert.deepEqual(refusals(sender.socket), [
      [ErrorCode.ClientEventRateLimited, 'private-room'],
      [ErrorCode.ClientEventRateLimited, 'private-room'],
    ]);
    assert.equal(world.count('rateLimited(app-id, client_events)'), 2);
    assert.equal(world.count('messageError(app-id, rate_limited)'), 2);
    assert.deepEqual(world.logged('rate_limited').map((l) => l.reason), ['rate_limited', 'rate_limited']);
    // The window is the connection's (limits/fixed-window.ts): a second later it admits again.
    assert.equal(sender.connection.admitClientEvent(performance.now() + 1000), true);
  });
});
