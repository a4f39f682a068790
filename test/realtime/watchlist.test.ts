/**
 * Watchlist events around a sign-in, on real Connections over in-memory sockets: the first `watchlist_events` frame (who is
 * online in the cluster, asked of the adapter) comes before any change of a watched user, whenever that change arrives.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createRouter } from '../../src/realtime/router.js';
import { notifyWatchers } from '../../src/realtime/watchlist.js';
import { sign, userAuthString } from '../../src/protocol/signatures.js';
import { unitWorld, type UnitWorld } from '../helpers/unit.js';

const WATCHLIST_EVENTS = 'pusher_internal:watchlist_events';

/** A world whose adapter's `usersOnline` answers only when the test says (`answer`), and resolves `asked` once it is called. */
function worldWithPendingUsersOnline() {
  const world = unitWorld();
  let answer!: (present: Promise<Set<string>>) => void;
  let called!: () => void;
  const asked = new Promise<void>((resolve) => (called = resolve));
  world.deps.adapter = {
    ...world.deps.adapter,
    usersOnline: () => {
      called();
      return new Promise<Set<string>>((resolve) => (answer = resolve));
    },
  };
  return { world, asked, answer: (present: Promise<Set<string>>) => answer(present) };
}

/** Alice signs in on `world` with a watchlist of bob and carol. */
function signInAlice(world: UnitWorld) {
  const { connection, socket } = world.connect();
  const userData = JSON.stringify({ id: 'alice', watchlist: ['bob', 'carol'] });
  const auth = `${world.app.key}:${sign(world.app.secret, userAuthString(connection.socketId, userData))}`;
  const text = JSON.stringify({ event: 'pusher:signin', data: { auth, user_data: userData } });
  connection.frameReceived(Buffer.byteLength(text), performance.now());
  createRouter(world.deps).handle(connection, text, Buffer.byteLength(text));
  return { connection, socket };
}

/** The adapter telling this node that `userId` came online or went offline, as app.ts wires it. */
function change(world: UnitWorld, userId: string, online: boolean): void {
  notifyWatchers(world.deps.hub.state(world.app.id)!, userId, online);
}

/** Lets the sign-in's awaits run (bounded). */
async function settle(done: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !done(); i++) await Promise.resolve();
}

test('a change that arrives while the sign-in asks who is online comes after the first frame, unless that frame says it already', async () => {
  const { world, asked, answer } = worldWithPendingUsersOnline();
  const { socket } = signInAlice(world);
  await asked;
  change(world, 'carol', true); // carol's first connection, already in the cluster's answer below
  change(world, 'bob', true); // bob's, not in it (recorded after it was read)
  assert.deepEqual(socket.data(WATCHLIST_EVENTS), [], 'nothing before the first frame');
  answer(Promise.resolve(new Set(['carol'])));
  await settle(() => socket.data(WATCHLIST_EVENTS).length >= 2);
  assert.deepEqual(socket.data(WATCHLIST_EVENTS), [
    { events: [{ name: 'online', user_ids: ['carol'] }, { name: 'offline', user_ids: ['bob'] }] },
    { events: [{ name: 'online', user_ids: ['bob'] }] },
  ]);
  // From then on a change goes out as it comes.
  change(world, 'carol', false);
  assert.deepEqual(socket.data(WATCHLIST_EVENTS).at(-1), { events: [{ name: 'offline', user_ids: ['carol'] }] });
});

test('without a first frame (the adapter failed) the changes held meanwhile still reach the connection', async () => {
  const { world, asked, answer } = worldWithPendingUsersOnline();
  const { socket } = signInAlice(world);
  await asked;
  change(world, 'bob', true);
  answer(Promise.reject(new Error('cluster engine broke')));
  await settle(() => socket.data(WATCHLIST_EVENTS).length >= 1);
  assert.deepEqual(socket.data(WATCHLIST_EVENTS), [{ events: [{ name: 'online', user_ids: ['bob'] }] }]);
});
