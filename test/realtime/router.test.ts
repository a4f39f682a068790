/**
 * The router on real Connections over in-memory sockets: per-frame counting, refusals before decoding (size, depth,
 * JSON), dispatch of every frame kind, and a handler that throws logged as the server's `handler_failed`, never as the
 * client's `message_rejected`.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createRouter } from '../../src/realtime/router.js';
import { sign, userAuthString } from '../../src/protocol/signatures.js';
import { unitApp, unitWorld, type UnitWorld } from '../helpers/unit.js';

/** Counts the frame as ws-route does, then hands it to the router. */
function frame(world: UnitWorld, connection: ReturnType<UnitWorld['connect']>['connection'], text: string): void {
  const bytes = Buffer.byteLength(text);
  connection.frameReceived(bytes, performance.now());
  createRouter(world.deps).handle(connection, text, bytes);
}

describe('router', () => {
  test('a decoded frame is counted by kind and size and logged at debug; pusher:ping is answered with pusher:pong', () => {
    const world = unitWorld();
    const { connection, socket } = world.connect();
    const text = '{"event":"pusher:ping","data":{}}';
    frame(world, connection, text);
    assert.deepEqual(socket.frames().map((f) => f.event), ['pusher:pong']);
    assert.equal(world.count(`messageReceived(app-id, ping, ${text.length})`), 1);
    assert.equal(world.count('messageProcessed(ping)'), 1);
    assert.deepEqual(
      world.logged('message_received').map((l) => [l.level, l.kind, l.bytes]),
      [['debug', 'ping', text.length]],
    );
    assert.equal(connection.messagesIn, 1);
    assert.equal(connection.bytesIn, text.length);
  });

  test('a frame over the size bound, too deep, or not JSON is refused with pusher:error, counted invalid, logged once each', () => {
    const world = unitWorld(unitApp(), { maxPayloadBytes: 100, maxJsonDepth: 3 });
    const { connection, socket } = world.connect();
    // Over the bound: the data's 100 bytes, a 200-character name's 2 400 (12 bytes each at most), the channel's and the envelope's.
    frame(world, connection, `{"event":"client-x","channel":"private-a","data":"${'x'.repeat(5000)}"}`);
    frame(world, connection, '{"event":"pusher:ping","data":{"a":{"b":{"c":1}}}}');
    frame(world, connection, 'not json');
    assert.deepEqual(
      world.logged('message_rejected').map((l) => [l.level, l.reason]),
      [['info', 'too_large'], ['info', 'too_deep'], ['info', 'invalid_json']],
    );
    assert.equal(world.count('messageReceived(app-id, invalid'), 3);
    assert.deepEqual(
      world.calls.filter((c) => c.startsWith('messageError')),
      ['messageError(app-id, too_large)', 'messageError(app-id, too_deep)', 'messageError(app-id, invalid_json)'],
    );
    assert.deepEqual(socket.frames().map((f) => f.event), ['pusher:error', 'pusher:error', 'pusher:error']);
    assert.equal(connection.isOpen, true, 'a refused frame does not close the connection');
  });

  test('a frame whose event name is within its limit in characters is not refused as too large, whatever their bytes', () => {
    // A review: names are limited in characters, but the frame's bound allowed one byte each, so a client event with a
    // name of 157 emoji (within 200) and data within the limit was refused as an anonymous too_large.
    const world = unitWorld(unitApp({ enableClientEvents: true }), { maxPayloadBytes: 1024 });
    const { connection, socket } = world.connect();
    frame(world, connection, `{"event":"client-${'😀'.repeat(150)}","channel":"private-a","data":"${'x'.repeat(1000)}"}`);
    assert.deepEqual(world.logged('message_rejected').map((l) => l.reason), ['not_subscribed']);
    assert.equal(socket.frames().length, 1);
  });

  test('a client event whose data string is within the limit is not refused as too large for its escapes in the frame', () => {
    // The Android client sends a client event's JSON data as a string, each quote escaped in the frame: 9 000 bytes of data
    // with 4 000 quotes took 13 000, past a bound of the limit plus the names (12 664 here), an anonymous too_large.
    const world = unitWorld(unitApp({ enableClientEvents: true }), { maxPayloadBytes: 10_000 });
    const { connection, socket } = world.connect();
    const data = `${'"'.repeat(4000)}${'x'.repeat(5000)}`;
    const text = JSON.stringify({ event: 'client-json', channel: 'private-a', data });
    assert.ok(text.length > 13_000);
    frame(world, connection, text);
    // Past the bound and decoded: refused only for what it is (not subscribed, in this world).
    assert.deepEqual(world.logged('message_rejected').map((l) => l.reason), ['not_subscribed']);
    assert.equal(socket.frames().length, 1);
  });

  test('a malformed pusher:subscribe is refused on its channel with subscription_error 400', () => {
    const world = unitWorld();
    const { connection, socket } = world.connect();
    frame(world, connection, '{"event":"pusher:subscribe","data":{"channel":"news","auth":5}}');
    const [refusal] = socket.frames();
    assert.equal(refusal?.event, 'pusher:subscription_error');
    assert.equal(refusal?.channel, 'news');
    assert.deepEqual(socket.data('pusher:subscription_error'), [
      { type: 'InvalidMessage', error: '"auth" must be a string', status: 400 },
    ]);
    assert.equal(world.count('subscription(app-id, public, invalid)'), 1);
    assert.equal(world.count('messageReceived(app-id, invalid'), 1);
    assert.equal(world.count('messageError(app-id, invalid_message)'), 1);
    assert.equal(world.logged('subscription_failed').length, 1);
  });

  test('a pong settles the server ping and records its round trip', () => {
    const world = unitWorld();
    const { connection } = world.connect();
    connection.ping(performance.now() - 5);
    assert.notEqual(connection.pingSentAt, 0);
    frame(world, connection, '{"event":"pusher:pong","data":{}}');
    assert.equal(connection.pingSentAt, 0);
    assert.equal(world.count('pingRtt('), 1);
  });

  test('a handler that throws is logged as handler_failed at error, not as a rejection of the client frame', () => {
    const world = unitWorld(unitApp({ enableClientEvents: true }));
    world.deps.webhooks = {
      emit: () => {
        throw new Error('webhook sink broke');
      },
    };
    const { connection } = world.connect();
    world.deps.hub.join(connection, 'private-room', null);
    frame(world, connection, '{"event":"client-typing","channel":"private-room","data":{}}');
    const [line, ...more] = world.logged('handler_failed');
    assert.equal(more.length, 0);
    assert.equal(line?.level, 'error');
    assert.match(String((line?.err as { message?: string } | undefined)?.message), /webhook sink broke/);
    assert.equal(world.logged('message_rejected').length, 0);
    assert.equal(world.count('messageError('), 0, 'the client did nothing wrong');
  });

  test('a handler that rejects after an await is logged as handler_failed at error too', async () => {
    const world = unitWorld();
    const { adapter } = world.deps;
    let failed!: () => void;
    const settled = new Promise<void>((resolve) => (failed = resolve));
    world.deps.adapter = {
      ...adapter,
      usersOnline: () => {
        failed();
        return Promise.reject(new Error('cluster engine broke'));
      },
    };
    const { connection } = world.connect();
    const userData = JSON.stringify({ id: 'u1', watchlist: ['u2'] });
    const auth = `${world.app.key}:${sign(world.app.secret, userAuthString(connection.socketId, userData))}`;
    frame(world, connection, JSON.stringify({ event: 'pusher:signin', data: { auth, user_data: userData } }));
    await settled;
    // The rejection reaches the router's handler on the next turns of the microtask queue.
    for (let i = 0; i < 10 && world.logged('handler_failed').length === 0; i++) await Promise.resolve();
    assert.deepEqual(world.logged('handler_failed').map((l) => l.level), ['error']);
    assert.equal(world.logged('message_rejected').length, 0);
  });
});
