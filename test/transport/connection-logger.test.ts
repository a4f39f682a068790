/**
 * A connection's log lines carry its session, socket and app ids through a pino child logger. The child costs bindings
 * serialised and ~0.7 KiB per connection, so it is made only for a line that is written (at LOG_LEVEL=warn a connection
 * that opens, subscribes, unsubscribes and closes makes none), and an idle connection does not keep it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setImmediate as nextJob } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { WebSocket } from 'ws';
import { channelKind } from '../../src/protocol/channel-name.js';
import { Connection } from '../../src/transport/connection.js';
import { capturedLogger, MemorySocket, recordingMetrics, unitApp } from '../helpers/unit.js';

/** A connection over a MemorySocket whose logger counts (and weakly keeps) the child loggers made from it. */
function open(level: string) {
  const { logger, lines } = capturedLogger(level);
  const made: WeakRef<object>[] = [];
  const child = logger.child.bind(logger);
  logger.child = ((...args: Parameters<typeof child>) => {
    const c = child(...args);
    made.push(new WeakRef(c));
    return c;
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
  return { connection, socket, lines, made };
}

function lifetime(level: string): { children: number; lines: Record<string, unknown>[] } {
  const { connection, socket, lines, made } = open(level);
  connection.opened(() => ({ remote_address: '127.0.0.1' }));
  connection.subscribed('news', channelKind('news'));
  connection.unsubscribed('news');
  socket.terminate();
  return { children: made.length, lines };
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

  it('does not keep its child logger while idle; a later line still carries the connection ids', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const { connection, socket, lines, made } = open('info');
    connection.opened(() => ({ remote_address: '127.0.0.1' }));
    connection.subscribed('news', channelKind('news'));
    assert.equal(made.length, 1);
    // A weakly held object survives until the current job ends: collect in a later one.
    await nextJob();
    gc();
    assert.equal(made[0]?.deref(), undefined, 'the idle connection still holds its child logger');
    socket.terminate();
    assert.equal(made.length, 2);
    assert.deepEqual(
      lines.map((l) => [l.event, l.session_id]),
      [
        ['connection_opened', 'session-1'],
        ['subscribed', 'session-1'],
        ['connection_closed', 'session-1'],
      ],
    );
  });
});
