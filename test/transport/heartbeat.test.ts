/**
 * The heartbeat's sweep on real Connections with an injected clock (no sockets, no timers waited on): ping after
 * ACTIVITY_TIMEOUT of silence, 4201 when the ping stays unanswered, any frame settles a ping, and 4009 for apps that
 * require a sign-in.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CloseCode } from '../../src/protocol/close-codes.js';
import { channelKind } from '../../src/protocol/channel-name.js';
import { startHeartbeat, sweepInterval } from '../../src/transport/heartbeat.js';
import { unitApp, unitWorld, type UnitWorld } from '../helpers/unit.js';

const ACTIVITY_MS = 120_000;
const PONG_MS = 30_000;
const AUTH_MS = 30_000;

/**
 * A heartbeat over `world`'s hub whose clock reads `start` (when the connections opened, rounded up to a whole
 * millisecond) + `offset`. Whole: `performance.now()` is fractional, and sums of it and the timeouts are not exact — a
 * ping at start + 120 000 and a sweep at start + 150 000 can be 29 999.999… apart (CI: the 4201 came one sweep late).
 */
function heartbeat(world: UnitWorld, start: number) {
  const clock = { start: Math.ceil(start), offset: 0 };
  const beat = startHeartbeat({
    hub: world.deps.hub,
    activityTimeoutMs: ACTIVITY_MS,
    pongTimeoutMs: PONG_MS,
    userAuthTimeoutMs: AUTH_MS,
    now: () => clock.start + clock.offset,
  });
  /** Sweeps at `offset` ms after the start. */
  const at = (offset: number): void => {
    clock.offset = offset;
    beat.sweep();
  };
  return { at, clock, stop: () => beat.stop() };
}

describe('heartbeat', () => {
  test('a silent connection is pinged after the activity timeout and closed with 4201 when no pong follows', () => {
    const world = unitWorld();
    const { connection, socket } = world.connect();
    const beat = heartbeat(world, connection.openedAt);
    try {
      beat.at(ACTIVITY_MS - 1000);
      assert.equal(socket.sent.length, 0, 'not pinged before the timeout');
      beat.at(ACTIVITY_MS);
      assert.deepEqual(socket.frames().map((f) => f.event), ['pusher:ping']);
      assert.equal(connection.pingSentAt, beat.clock.start + ACTIVITY_MS);
      beat.at(ACTIVITY_MS + PONG_MS - 1);
      assert.equal(connection.isOpen, true);
      assert.equal(socket.frames().length, 1, 'one ping, not one per sweep');
      beat.at(ACTIVITY_MS + PONG_MS);
      assert.equal(connection.closeReason, 'pong_timeout');
      assert.equal(socket.closedWith?.code, CloseCode.PongNotReceived);
    } finally {
      beat.stop();
    }
  });

  test('any frame after the ping settles it, not only a pong; a frame keeps the connection from being pinged', () => {
    const world = unitWorld();
    const { connection, socket } = world.connect();
    const beat = heartbeat(world, connection.openedAt);
    try {
      beat.at(ACTIVITY_MS);
      connection.frameReceived(40, beat.clock.start + ACTIVITY_MS + 1);
      beat.at(ACTIVITY_MS + PONG_MS);
      assert.equal(connection.isOpen, true);
      assert.equal(connection.pingSentAt, 0);
      beat.at(2 * ACTIVITY_MS);
      assert.equal(socket.frames().length, 1, 'the frame reset the activity timeout: no second ping yet');
    } finally {
      beat.stop();
    }
  });

  test('a pong records the round trip and clears the ping', () => {
    const world = unitWorld();
    const { connection } = world.connect();
    const beat = heartbeat(world, connection.openedAt);
    try {
      beat.at(ACTIVITY_MS);
      connection.pongReceived(beat.clock.start + ACTIVITY_MS + 20);
      assert.equal(connection.pingSentAt, 0);
      assert.equal(world.count('pingRtt('), 1);
      beat.at(ACTIVITY_MS + PONG_MS);
      assert.equal(connection.isOpen, true);
    } finally {
      beat.stop();
    }
  });

  test('an app that requires sign-in closes, with 4009, connections neither signed in nor authorized by a signed channel', () => {
    const world = unitWorld(unitApp({ userAuthenticationRequired: true }));
    const anonymous = world.connect();
    const signedIn = world.connect();
    const authorized = world.connect();
    world.deps.hub.setUser(signedIn.connection, 'u1');
    authorized.connection.subscribed('private-a', channelKind('private-a'));
    const beat = heartbeat(world, anonymous.connection.openedAt);
    try {
      beat.at(AUTH_MS - 1);
      assert.equal(anonymous.connection.isOpen, true);
      beat.at(AUTH_MS);
      assert.equal(anonymous.socket.closedWith?.code, CloseCode.Unauthorized);
      beat.at(AUTH_MS + 1000); // past the timeout of the connections opened after it too
      assert.equal(signedIn.connection.isOpen, true);
      assert.equal(authorized.connection.isOpen, true);
    } finally {
      beat.stop();
    }
  });

  test('a closing connection is left alone', () => {
    const world = unitWorld();
    const { connection, socket } = world.connect();
    connection.close(CloseCode.Reconnect, 'bye', 'server_shutdown');
    const beat = heartbeat(world, connection.openedAt);
    try {
      beat.at(ACTIVITY_MS);
      assert.deepEqual(socket.frames().map((f) => f.event), ['pusher:error'], 'only the close frame, no ping');
    } finally {
      beat.stop();
    }
  });
});

test('the sweep runs every quarter of the shortest timeout, the user-authentication one included, between 250 ms and 1 s', () => {
  assert.equal(sweepInterval(120_000, 30_000, 30_000), 1000);
  // USER_AUTH_TIMEOUT_MS=2000 is acted on within 500 ms of it (the sweep ran every second: up to 1 s late).
  assert.equal(sweepInterval(120_000, 30_000, 2000), 500);
  assert.equal(sweepInterval(2000, 30_000, 30_000), 500);
  assert.equal(sweepInterval(120_000, 600, 300), 250);
});
