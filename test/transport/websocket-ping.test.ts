/**
 * WebSocket pings on a Connection (ws's autoPong is off: ws-route.ts answers them): held to the inbound budget like every
 * frame, answered under the same send-buffer bound as every other write, and no proof of life — pings alone must not keep
 * open a connection that the activity check would close (one holding a half-sent message cannot answer `pusher:ping`).
 * The route's wiring (pongs in order, 4301 past the budget) is tested end to end in test/e2e/connection.test.ts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { unitWorld } from '../helpers/unit.js';

test('a ping is answered with its pong while the send buffer is within its bound, and counted as sent', () => {
  const world = unitWorld();
  const { connection, socket } = world.connect();
  connection.answerPing(Buffer.from('hi'));
  assert.deepEqual(socket.pongs.map(String), ['hi']);
  assert.equal(world.count('messagesSent(app-id, protocol'), 1, 'a pong is a frame sent');
});

test('a client that does not read gets no pong past the send-buffer bound: it is closed as a slow consumer', () => {
  // Pongs were written with ws.pong() past any bound: a client sending pings and reading nothing grew its buffer without
  // limit (30 × SEND_BUFFER_MAX_BYTES before an unrelated write closed it).
  const world = unitWorld();
  const { connection, socket } = world.connect({ sendBufferMaxBytes: 65_536 });
  socket.bufferedAmount = 65_537;
  connection.answerPing(Buffer.from('hi'));
  assert.deepEqual(socket.pongs, []);
  assert.equal(socket.closedWith?.code, 4110);
  assert.equal(world.logged('slow_consumer').length, 1);
});

test('pings count against the frame budget, and are no proof of life', () => {
  const world = unitWorld();
  const { connection } = world.connect({ framesPerSecond: 3 });
  const before = connection.lastActivityAt;
  const now = before + 60_000;
  assert.deepEqual(
    [1, 2, 3, 4].map(() => connection.pingReceived(0, now)),
    [true, true, true, false],
  );
  assert.equal(connection.lastActivityAt, before, 'a ping does not refresh the activity check');
  assert.equal(connection.frameReceived(10, now), false, 'the budget is the one every frame draws on');
  assert.equal(connection.lastActivityAt, now, 'a message does');
});
