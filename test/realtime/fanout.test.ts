/** Fan-out on one node: one frame for everyone, the excluded socket skipped, frames a closing socket refuses counted. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Envelope } from '../../src/adapters/envelope.js';
import { createFanout } from '../../src/realtime/fanout.js';
import { CloseCode } from '../../src/protocol/close-codes.js';
import { unitWorld } from '../helpers/unit.js';

test('every subscriber but the excluded one gets the same frame; refused frames are counted as dropped', () => {
  const world = unitWorld();
  const { hub } = world.deps;
  const [open1, open2, sender, closing] = [1, 2, 3, 4].map(() => world.connect());
  for (const { connection } of [open1!, open2!, sender!, closing!]) hub.join(connection, 'news', null);
  // Closing but not yet gone (its close handshake is under way): still a subscriber, refuses every frame.
  closing!.connection.close(CloseCode.Reconnect, 'bye', 'server_shutdown');
  world.calls.length = 0;
  const envelope: Envelope = {
    appId: world.app.id,
    channel: 'news',
    event: 'tick',
    data: '{"n":1}',
    userId: undefined,
    excludeSocketId: sender!.connection.socketId,
    kind: 'channel_event',
    trace: undefined,
    publishedAt: Date.now(),
  };
  createFanout({ hub, metrics: world.deps.metrics })(envelope);
  const frame = '{"event":"tick","channel":"news","data":"{\\"n\\":1}"}';
  assert.deepEqual(open1!.socket.sent, [frame]);
  assert.deepEqual(open2!.socket.sent, [frame]);
  assert.equal(sender!.socket.sent.length, 0, 'never echoed to the excluded socket');
  assert.equal(closing!.socket.sent.filter((f) => f.includes('"tick"')).length, 0);
  assert.equal(open1!.connection.messagesOut, 1);
  assert.equal(open1!.connection.bytesOut, Buffer.byteLength(frame));
  assert.deepEqual(world.calls, [
    `messagesSent(app-id, channel_event, ${Buffer.byteLength(frame)}, 2)`,
    'backpressure(app-id, dropped, 1)',
    'broadcast(public, 2)',
  ]);
});
