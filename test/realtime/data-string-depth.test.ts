/**
 * A subscribe, unsubscribe or sign-in whose `data` is a JSON-encoded string nested past MAX_JSON_DEPTH, through the router
 * on real Connections: refused as the same nesting written as an object is (`too_deep`, `pusher:error`), before decode.ts
 * parses the string, before any signature is checked, and before anything is joined.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createRouter } from '../../src/realtime/router.js';
import { sign, userAuthString } from '../../src/protocol/signatures.js';
import { unitWorld, type UnitWorld } from '../helpers/unit.js';

/** Counts the frame as ws-route does, then hands it to the router. */
function frame(world: UnitWorld, connection: ReturnType<UnitWorld['connect']>['connection'], text: string): void {
  const bytes = Buffer.byteLength(text);
  connection.frameReceived(bytes, performance.now());
  createRouter(world.deps).handle(connection, text, bytes);
}

/** `{"channel":…, "a":[[…1…]]}` with `levels` arrays, JSON-encoded: the data string of a frame. */
function deepData(fields: Record<string, string>, levels: number): string {
  return JSON.stringify(fields).slice(0, -1) + `,"a":${'['.repeat(levels)}1${']'.repeat(levels)}}`;
}

describe('a data string nested too deep', () => {
  test('a subscribe is refused too_deep with pusher:error and not subscribed; one level less subscribes', async () => {
    const world = unitWorld(undefined, { maxJsonDepth: 8 });
    const { connection, socket } = world.connect();
    // The frame (1) + data's object (1) + 7 arrays: one level over 8.
    frame(world, connection, JSON.stringify({ event: 'pusher:subscribe', data: deepData({ channel: 'news' }, 7) }));
    assert.deepEqual(socket.frames().map((f) => f.event), ['pusher:error']);
    assert.deepEqual(socket.data('pusher:error'), [{ message: 'Frame nested deeper than 8 levels', code: null }]);
    assert.deepEqual(world.logged('message_rejected').map((l) => [l.level, l.reason]), [['info', 'too_deep']]);
    assert.equal(world.count('messageError(app-id, too_deep)'), 1);
    assert.equal(world.count('messageReceived(app-id, invalid'), 1);
    assert.equal(world.count('subscription('), 0);
    assert.equal(connection.subscriptions.has('news'), false);

    frame(world, connection, JSON.stringify({ event: 'pusher:subscribe', data: deepData({ channel: 'news' }, 6) }));
    // The join completes on the local adapter's next microtask turns.
    for (let i = 0; i < 10 && !connection.subscriptions.has('news'); i++) await Promise.resolve();
    assert.equal(socket.frames().at(-1)?.event, 'pusher_internal:subscription_succeeded');
    assert.equal(connection.subscriptions.has('news'), true);
  });

  test('an unsubscribe and a sign-in (before its signature is checked) are refused the same way', () => {
    const world = unitWorld(undefined, { maxJsonDepth: 8 });
    const { connection, socket } = world.connect();
    world.deps.hub.join(connection, 'news', null);
    frame(world, connection, JSON.stringify({ event: 'pusher:unsubscribe', data: deepData({ channel: 'news' }, 7) }));
    const userData = JSON.stringify({ id: 'u1' });
    const auth = `${world.app.key}:${sign(world.app.secret, userAuthString(connection.socketId, userData))}`;
    frame(world, connection, JSON.stringify({ event: 'pusher:signin', data: deepData({ auth, user_data: userData }, 7) }));
    assert.deepEqual(socket.frames().map((f) => f.event), ['pusher:error', 'pusher:error']);
    assert.equal(world.count('messageError(app-id, too_deep)'), 2);
    assert.equal(connection.subscriptions.has('news'), true, 'not unsubscribed');
    assert.equal(connection.userId, undefined, 'not signed in');
  });
});
