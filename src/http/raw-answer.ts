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
import type { Socket } from 'node:net';
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

/** How long a refused pipeliner's socket stays open after its last answer, for the client to read it. */
const LINGER_MS = 1000;

/**
 * How the socket of a refused pipeliner closes, once the 429 (its last answer: `Connection: close`) is written: its side
 * ended, nothing more read (what it still sends is neither parsed nor served), and destroyed when the client closes or
 * LINGER_MS later. Destroyed at once, the socket was reset by the kernel (its input unread), and the client lost the
 * answers it had not read yet, the 429 included: 37 of 50 flooding clients were reset. Node calls `destroySoon` on the
 * socket after a last answer (its `end` otherwise). Used by the main port (http-server.ts) and the metrics port
 * (otel/metrics-server.ts).
 */
export function lingerAfterLast(socket: Socket): void {
  socket.destroySoon = () => {
    socket.end();
    socket.pause();
    const timer = setTimeout(() => socket.destroy(), LINGER_MS).unref();
    socket.once('close', () => clearTimeout(timer));
  };
}
