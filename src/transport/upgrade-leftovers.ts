/**
 * What routing an upgrade through fastify leaves attached to a WebSocket for its whole life, and letting go of it.
 *
 * @fastify/websocket routes each upgrade as an HTTP request: it builds a `ServerResponse` for the socket and fastify wraps
 * the pair in its own Request, Reply and request logger. Once the handshake is done none of them is used again, yet two
 * references would keep them (headers, raw headers, URL, the response and fastify's wrappers: ~3.3 KB of heap per idle
 * connection, two thirds of what Beacon kept beyond a bare `ws` connection, by heap snapshots at 1000 and 4000 idle
 * connections) for as long as the WebSocket lives:
 * - the TCP socket's `_httpMessage`, set by `ServerResponse.assignSocket`, with the response's 'close' listener on the
 *   socket. `detachSocket` is the inverse Node's own HTTP server calls when a response is done;
 * - @fastify/websocket's 'error' listener on the WebSocket, a closure over the request and reply that passes socket
 *   errors to the plugin's `errorHandler` (ws-route.ts's `wsErrorHandler`, which ignores a peer's errors). An accepted
 *   connection handles every error of its socket itself, so its own listener replaces that one.
 * test/transport/upgrade-leftovers.test.ts checks that an accepted connection's request is collected.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';

/**
 * The reply fastify made for an upgrade (its `raw` is the response @fastify/websocket built), by the raw request it
 * answers; recorded by a preHandler hook, so also where a handshake ws refuses finds fastify's request (`upgradeRequest`).
 */
const replies = new WeakMap<object, FastifyReply>();

/** Records the routing reply of an upgrade request (`request.raw`), to be detached once it is answered. */
export function recordUpgradeReply(raw: object, reply: FastifyReply): void {
  replies.set(raw, reply);
}

/** fastify's request for the raw upgrade request `raw`, while its reply is recorded (until `detachUpgradeResponse`). */
export function upgradeRequest(raw: object): FastifyRequest | undefined {
  return replies.get(raw)?.request;
}

/** Detaches the routing response from the socket of the upgrade request `raw` (once the handler has answered). */
export function detachUpgradeResponse(raw: object): void {
  const reply = replies.get(raw);
  if (reply === undefined) return;
  replies.delete(raw);
  const response = reply.raw;
  if (response.socket !== null) response.detachSocket(response.socket);
}

/**
 * Makes `onError` the only 'error' listener of an accepted connection's WebSocket, replacing the plugin's (which holds the
 * request and reply). A WebSocket must always have one: ws emits 'error' for a peer's bad frames.
 */
export function ownSocketErrors(socket: WebSocket, onError: (err: Error & { code?: string }) => void): void {
  socket.removeAllListeners('error');
  socket.on('error', onError);
}
