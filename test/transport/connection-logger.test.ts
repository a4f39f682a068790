/**
 * A connection's log lines carry its session, socket and app ids through a pino child logger. The child costs bindings
 * serialised and an object per connection, so it is made only for a line that is written: at LOG_LEVEL=warn a connection
 * that opens, subscribes, unsubscribes and closes makes none.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { WebSocket } from 'ws';
import { channelKind } from '../../src/protocol/channel-name.js';
import { Connection } from '../../src/transport/connection.js';
import { capturedLogger, MemorySocket, recordingMetrics, unitApp } from '../helpers/unit.js';

function lifetime(level: string): { children: number; lines: Record<string, unknown>[] } {
  const { logger, lines } = capturedLogger(level);
  let children = 0;
  const child = logger.child.bind(logger);
  logger.child = ((...args: Parameters<typeof child>) => {
    children++;
    return child(...args);
  }) as typeof logger.child;
  const socket = new MemorySocket();
  const connection = new Connection({
    ws: socket as unknown as WebSocket,
    app: unitApp(),
    socketId: '1.1',
    sessionId: 'session-1',
    logger,
    logBindings: { session_id: 'session-1', socket_id: '1.1', app_id: 'app-id' },
    metrics: recordingMetrics().metrics,
    sendBufferMaxBytes: 1_000_000,
    framesPerSecond: 0,
    upgradeSpan: undefined,
    onClosed: () => {},
  });
  socket.on('close', (code: number) => connection.finish(code));
  connection.opened(() => ({ remote_address: '127.0.0.1' }));
  connection.subscribed('news', channelKind('news'));
  connection.unsubscribed('news');
  socket.terminate();
  return { children, lines };
}

describe('connection logger', () => {
  it('makes no child logger for lines the level drops', () => {
    const { children, lines } = lifetime('warn');
    assert.equal(lines.length, 0);
    assert.equal(children, 0);
  });

  it('makes one child logger, whose lines carry the connection ids, when the lines are written', () => {
    const { children, lines } = lifetime('info');
    assert.equal(children, 1);
    assert.deepEqual(
      lines.map((l) => l.event),
      ['connection_opened', 'subscribed', 'unsubscribed', 'connection_closed'],
    );
    for (const line of lines) assert.equal(line.session_id, 'session-1');
  });
});
