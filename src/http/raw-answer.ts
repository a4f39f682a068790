/**
 * An HTTP error answered where there is no fastify reply to send it: on the socket, a request Node's HTTP parser refused
 * (client-errors.ts) and a WebSocket handshake ws refused (transport/ws-route.ts); on Node's response, a request refused
 * before fastify saw it (http-server.ts). The answer has the API's shape (http/api-error.ts): a registry error's status
 * and `{"error": message}`.
 *
 * As Node's own answer to a refused request: written only when the socket is writable and no response of an earlier
 * request on it has begun (its head would be cut by ours), then the socket is destroyed at once. Nothing waits for a peer
 * that does not read, and a parser that keeps failing on more of the same request finds the socket gone.
 */
import { STATUS_CODES, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { HttpError } from '../protocol/errors.js';

/** Node's private field: the response being written on a keep-alive socket. */
interface HttpSocket {
  _httpMessage?: { headersSent?: boolean } | null;
}

/** Writes `error` (with `message`, its formatted text) and `headers` (whole `Name: value` lines) to `socket`, then destroys it. */
export function answerOnSocket(socket: Duplex, error: HttpError, message: string, headers: readonly string[] = []): void {
  if (socket.writable && (socket as HttpSocket)._httpMessage?.headersSent !== true) {
    const body = JSON.stringify({ error: message });
    const head = [
      `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status] ?? ''}`,
      'Connection: close',
      'Content-Type: application/json; charset=utf-8',
      `Content-Length: ${Buffer.byteLength(body)}`,
      ...headers,
    ];
    // An upgrade's socket is corked from its preHandler hook on: what is held would be discarded by `destroy`.
    while (socket.writableCorked > 0) socket.uncork();
    socket.write(`${head.join('\r\n')}\r\n\r\n${body}`);
  }
  socket.destroy();
}

/**
 * Answers `error` (with `message`) on Node's `response` and closes the connection after it: Node writes it after the
 * answers to the requests before it on the socket, then ends the socket.
 */
export function answerOnResponse(response: ServerResponse, error: HttpError, message: string): void {
  const body = JSON.stringify({ error: message });
  response.writeHead(error.status, {
    Connection: 'close',
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
  });
  response.end(body);
}
