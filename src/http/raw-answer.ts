/**
 * An HTTP error answered straight on a socket, where there is no fastify reply to send it: a request Node's HTTP parser
 * refused (client-errors.ts) and a WebSocket handshake ws refused (transport/ws-route.ts). The answer has the API's shape
 * (http/api-error.ts): a registry error's status and `{"error": message}`. The socket is closed once it is written.
 */
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { HttpError } from '../protocol/errors.js';

/** Writes `error` (with `message`, its formatted text) and `headers` (whole `Name: value` lines) to `socket`, then closes it. */
export function answerOnSocket(socket: Duplex, error: HttpError, message: string, headers: readonly string[] = []): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = JSON.stringify({ error: message });
  const head = [
    `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status] ?? ''}`,
    'Connection: close',
    'Content-Type: application/json; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    ...headers,
  ];
  socket.once('finish', () => socket.destroy());
  // `end` also writes out anything held corked (an upgrade's socket is corked from its preHandler hook on).
  socket.end(`${head.join('\r\n')}\r\n\r\n${body}`);
}
