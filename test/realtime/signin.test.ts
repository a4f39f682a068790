/** `pusher:signin` on real Connections and the real hub (no sockets): accepted, refused, and the watchlist's first answer. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ErrorCode } from '../../src/protocol/close-codes.js';
import { sign, userAuthString } from '../../src/protocol/signatures.js';
import { Hub } from '../../src/realtime/hub.js';
import { signin } from '../../src/realtime/signin.js';
import type { Connection } from '../../src/transport/connection.js';
import { unitWorld, type UnitWorld } from '../helpers/unit.js';

/** A sign-in as the app's backend would sign it. */
function signed(world: UnitWorld, connection: Connection, user: unknown) {
  const userData = typeof user === 'string' ? user : JSON.stringify(user);
  const auth = `${world.app.key}:${sign(world.app.secret, userAuthString(connection.socketId, userData))}`;
  return { event: 'pusher:signin' as const, auth, userData };
}

describe('signin', () => {
  test('a signed sign-in: signin_success echoes user_data, the connection and the hub know the user, one signin line', async () => {
    const world = unitWorld();
    const { connection, socket } = world.connect();
    const message = signed(world, connection, { id: 'u1', user_info: { name: 'Ann' } });
    await signin(world.deps, connection, message);
    assert.deepEqual(socket.data('pusher:signin_success'), [{ user_data: message.userData }]);
    assert.equal(connection.userId, 'u1');
    assert.deepEqual([...world.deps.hub.userConnections(world.app.id, 'u1')], [connection]);
    assert.deepEqual(world.logged('signin').map((l) => l.user_id), ['u1']);
  });

  test('a numeric id is held in its string form', async () => {
    const world = unitWorld();
    const { connection } = world.connect();
    await signin(world.deps, connection, signed(world, connection, { id: 42 }));
    assert.equal(connection.userId, '42');
  });

  test('a bad signature is refused with 4009 and logged as auth_failed; the connection stays signed out', async () => {
    const world = unitWorld();
    const { connection, socket } = world.connect();
    await signin(world.deps, connection, { ...signed(world, connection, { id: 'u1' }), userData: '{"id":"u2"}' });
    assert.deepEqual(socket.data('pusher:error').map((d) => (d as { code: number }).code), [ErrorCode.Unauthorized]);
    assert.equal(connection.userId, undefined);
    assert.equal(world.count('messageError(app-id, unauthorized)'), 1);
    assert.deepEqual(world.logged('auth_failed').map((l) => l.reason), ['unauthorized']);
    assert.equal(world.logged('message_rejected').length, 0);
  });

  test('user_data that is not JSON, or has no usable id, is refused as invalid_message', async () => {
    const world = unitWorld();
    const { connection, socket } = world.connect();
    await signin(world.deps, connection, signed(world, connection, 'not json'));
    await signin(world.deps, connection, signed(world, connection, { name: 'no id' }));
    await signin(world.deps, connection, signed(world, connection, { id: 'x'.repeat(129) }));
    assert.equal(socket.data('pusher:error').length, 3);
    // The answer says the bound, so a 129-character id is not told it has no id.
    assert.match((socket.data('pusher:error')[2] as { message: string }).message, /of 1 to 128 characters/);
    assert.equal(world.count('messageError(app-id, invalid_message)'), 3);
    assert.equal(world.logged('message_rejected').length, 3);
    assert.equal(connection.userId, undefined);
  });

  test('a watchlist over MAX_WATCHLIST_SIZE is refused with its own code', async () => {
    const world = unitWorld(undefined, { maxWatchlistSize: 2 });
    const { connection, socket } = world.connect();
    await signin(world.deps, connection, signed(world, connection, { id: 'u1', watchlist: ['a', 'b', 'c'] }));
    assert.deepEqual(socket.data('pusher:error').map((d) => (d as { code: number }).code), [ErrorCode.WatchlistLimit]);
    assert.deepEqual(connection.watchlist, []);
  });

  test('the watchlist is held and answered with who is online and who is not', async () => {
    const world = unitWorld();
    const friend = world.connect();
    await signin(world.deps, friend.connection, signed(world, friend.connection, { id: 'friend' }));
    const { connection, socket } = world.connect();
    await signin(world.deps, connection, signed(world, connection, { id: 'u1', watchlist: ['friend', 'stranger'] }));
    assert.deepEqual(connection.watchlist, ['friend', 'stranger']);
    assert.deepEqual(socket.data('pusher_internal:watchlist_events'), [
      { events: [{ name: 'online', user_ids: ['friend'] }, { name: 'offline', user_ids: ['stranger'] }] },
    ]);
  });

  test('a second sign-in as another user is refused with 4009 and counted; the connection stays the first user', async () => {
    const world = unitWorld();
    const { connection, socket } = world.connect();
    await signin(world.deps, connection, signed(world, connection, { id: 'u1', watchlist: ['w1'] }));
    for (let i = 0; i < 25; i++) await signin(world.deps, connection, signed(world, connection, { id: 'u2', watchlist: ['w2'] }));
    assert.deepEqual(
      socket.data('pusher:error').map((d) => d as { code: number; message: string }),
      Array.from({ length: 25 }, () => ({ code: ErrorCode.Unauthorized, message: 'Already signed in as another user' })),
    );
    assert.equal(socket.data('pusher:signin_success').length, 1);
    assert.equal(connection.userId, 'u1');
    assert.deepEqual([...world.deps.hub.userConnections(world.app.id, 'u1')], [connection]);
    assert.equal(world.deps.hub.userConnections(world.app.id, 'u2').size, 0);
    assert.deepEqual(connection.watchlist, ['w1']);
    assert.equal(world.count('messageError(app-id, unauthorized)'), 25);
    // Logged within the connection's rejection cap, like every refusal: 20 lines, then one saying counting took over.
    const logged = world.logged('message_rejected');
    assert.equal(logged.filter((l) => l.level !== 'warn' && l.level !== 40).length, 20);
    assert.equal(logged.length, 21);
    assert.ok(logged.slice(0, 20).every((l) => l.reason === 'unauthorized'));
    assert.deepEqual([logged[20]!.first_unlogged, logged[20]!.first_unlogged_reason], ['message_rejected', 'unauthorized']);
  });

  test('a watchlist of anything but user ids is refused with its own error, never thrown; ids named twice count once', async () => {
    const world = unitWorld();
    const { connection, socket } = world.connect();
    // user_data as a frame of 100 KB can nest it (the frame's depth check does not read inside a string).
    const deep = `{"id":"u1","watchlist":[${'['.repeat(40_000)}"x"${']'.repeat(40_000)}]}`;
    // Before: `{"toString":1}` and the deep array threw inside String() (handler_failed, an error line, no answer), and
    // null, {} and [1,2] became the ids "null", "[object Object]" and "1,2".
    const refused = [[{ toString: 1 }], [null], [{}], [[1, 2]], [''], [1e999], 'u2', { a: 'u2' }].map((watchlist) =>
      JSON.stringify({ id: 'u1', watchlist }),
    );
    refused.push(deep);
    for (const userData of refused) await signin(world.deps, connection, signed(world, connection, userData));
    const errors = socket.data('pusher:error') as { message: string; code: number | null }[];
    assert.equal(errors.length, refused.length);
    for (const error of errors) assert.deepEqual(error, { message: 'watchlist must be a list of user ids, as id is', code: null });
    assert.equal(world.count('messageError(app-id, invalid_message)'), refused.length);
    assert.deepEqual(world.logged('handler_failed'), []);
    assert.equal(connection.userId, undefined);

    await signin(world.deps, connection, signed(world, connection, { id: 'u1', watchlist: ['u2', 7, 'u2', '7', 'u3'] }));
    assert.deepEqual(connection.watchlist, ['u2', '7', 'u3']);
    assert.deepEqual(socket.data('pusher_internal:watchlist_events'), [{ events: [{ name: 'offline', user_ids: ['u2', '7', 'u3'] }] }]);
  });

  test('an id is counted in characters, not UTF-16 units, and a number only if a double holds it exactly', async () => {
    const world = unitWorld();
    const { connection, socket } = world.connect();
    // 1e999 was held as "Infinity"; a fraction is no id.
    const refused = ['{"id":1e999}', '{"id":1.5}', JSON.stringify({ id: '😀'.repeat(129) })];
    // An exponent at the top: a nested id rounding to the same double was signed in as (another user's channel).
    refused.push('{"id":1.2345678901234567e19,"user_info":{"team":{"id":12345678901234567001}}}');
    for (const userData of refused) await signin(world.deps, connection, signed(world, connection, userData));
    assert.equal(socket.data('pusher:error').length, 4);
    assert.equal(connection.userId, undefined);
    // A 64-bit id is held as its exact digits (it was "12345678901234567000", another user than the one signed).
    const snowflake = world.connect();
    await signin(world.deps, snowflake.connection, signed(world, snowflake.connection, '{"id":12345678901234567890,"team":{"id":5}}'));
    assert.equal(snowflake.connection.userId, '12345678901234567890');
    // 128 emoji are 128 characters (256 UTF-16 units): refused before as longer than 128.
    await signin(world.deps, connection, signed(world, connection, { id: '😀'.repeat(128) }));
    assert.equal(connection.userId, '😀'.repeat(128));
  });

  test('signing in again as the same user is accepted (a new watchlist replaces the old)', async () => {
    const world = unitWorld();
    const { connection, socket } = world.connect();
    await signin(world.deps, connection, signed(world, connection, { id: 'u1', watchlist: ['a'] }));
    await signin(world.deps, connection, signed(world, connection, { id: 'u1', watchlist: ['b'] }));
    assert.equal(socket.data('pusher:signin_success').length, 2);
    assert.deepEqual(socket.data('pusher:error'), []);
    assert.equal(connection.userId, 'u1');
    assert.deepEqual(connection.watchlist, ['b']);
  });

  test('closing a signed-in connection takes its user out of the hub', async () => {
    const world = unitWorld();
    const { connection, socket } = world.connect();
    await signin(world.deps, connection, signed(world, connection, { id: 'u1', watchlist: ['friend'] }));
    socket.terminate();
    assert.equal(world.deps.hub.userConnections(world.app.id, 'u1').size, 0);
    assert.equal(connection.userId, undefined);
    assert.deepEqual(connection.watchlist, []);
  });

  test('signin_success waits until the cluster counts the user, so a watchlist asked anywhere right after sees it online', async () => {
    const world = unitWorld();
    let recorded: (() => void) | undefined;
    // A cluster engine that records the user's first sign-in when the test says so.
    const hub = new Hub([world.app], () => new Promise<void>((resolve) => (recorded = resolve)));
    const { connection, socket } = world.connect();
    hub.addConnection(connection);
    const done = signin({ ...world.deps, hub }, connection, signed(world, connection, { id: 'u1' }));
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(connection.userId, 'u1', 'the connection is signed in at once (its own frames may rely on it)');
    assert.deepEqual(socket.data('pusher:signin_success'), [], 'no success before the cluster counted the user');
    assert.ok(recorded !== undefined);
    recorded();
    await done;
    assert.equal(socket.data('pusher:signin_success').length, 1);
  });
});
