/**
 * A connection's log lines carry its session, socket and app ids, first after the process's own fields, as a pino child's
 * bindings would put them; they are written through the process logger with the ids copied into each line, and no child
 * logger is made (a child cost its bindings serialised and ~0.7 KiB per connection, and was made again for a line written
 * after a GC).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { WebSocket } from 'ws';
import { channelKind } from '../../src/protocol/channel-name.js';
import { capturedLogger, MemorySocket, unitConnection } from '../helpers/unit.js';

/** A connection over a MemorySocket whose logger counts the child loggers made from it. */
function open(level: string) {
  const { logger, lines } = capturedLogger(level);
  let children = 0;
  const child = logger.child.bind(logger);
  logger.child = ((...args: Parameters<typeof child>) => {
    children++;
    return child(...args);
  }) as typeof logger.child;
  const socket = new MemorySocket();
  const connection = unitConnection(socket as unknown as WebSocket, { logger });
  socket.on('close', (code: number) => connection.finish(code));
  return { connection, socket, lines, children: () => children };
}

function lifetime(level: string): { children: number; lines: Record<string, unknown>[] } {
  const { connection, socket, lines, children } = open(level);
  connection.opened(() => ({ remote_address: '127.0.0.1' }));
  connection.subscribed('news', channelKind('news'));
  connection.unsubscribed('news', channelKind('news'));
  socket.terminate();
  return { children: children(), lines };
}

describe('connection logger', () => {
  it('writes nothing for lines the level drops', () => {
    const { children, lines } = lifetime('warn');
    assert.equal(lines.length, 0);
    assert.equal(children, 0);
  });

  it('writes the connection ids first in every line, through the process logger', () => {
    const { children, lines } = lifetime('info');
    assert.equal(children, 0, 'a child logger was made');
    assert.deepEqual(
      lines.map((l) => l.event),
      ['connection_opened', 'subscribed', 'unsubscribed', 'connection_closed'],
    );
    for (const line of lines) {
      assert.deepEqual(Object.keys(line).slice(0, 9), ['level', 'time', 'service', 'env', 'node_id', 'session_id', 'socket_id', 'app_id', 'event']);
      assert.deepEqual([line.session_id, line.socket_id, line.app_id], ['session-1', '1.1', 'app-id']);
    }
  });
});
