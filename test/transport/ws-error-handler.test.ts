/** The WebSocket route's error handler: a peer's socket error is left to the connection; a thrown handler is the server's. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { WebSocket } from 'ws';
import { wsErrorHandler } from '../../src/transport/ws-route.js';
import { capturedLogger, MemorySocket } from '../helpers/unit.js';

test('a handler that throws is logged as handler_failed at error and its socket cut; a peer error is not logged here', () => {
  const { logger, lines } = capturedLogger();
  const handle = wsErrorHandler(logger);
  const peer = new MemorySocket();
  handle(Object.assign(new Error('Invalid UTF-8'), { code: 'WS_ERR_INVALID_UTF8' }), peer as unknown as WebSocket);
  handle(Object.assign(new Error('reset'), { code: 'ECONNRESET' }), peer as unknown as WebSocket);
  assert.equal(lines.length, 0, 'the connection counts and logs what the peer caused');
  assert.equal(peer.readyState, 1);

  const broken = new MemorySocket();
  handle(new TypeError('handler bug'), broken as unknown as WebSocket);
  assert.deepEqual(lines.map((l) => [l.event, l.level, l.msg]), [['handler_failed', 'error', 'WebSocket handler failed']]);
  assert.equal(broken.readyState, 3, 'terminated');
});
