/**
 * A connection's close without the errors nobody reads. When a connection closes, ws 8 ends its Receiver and the socket
 * again: `socketOnEnd` (the peer's FIN) ends both and `socketOnClose` the Receiver once more, though the close frame, or
 * the first of those calls, already ended them. Node's `end()` on a stream that has finished does nothing but build an
 * `ERR_STREAM_ALREADY_FINISHED` for a callback there is none of, and a Node error captures the whole stack: three per
 * connection closed with a close frame (~20 µs of its ~90), one when the peer just goes away (~5 of ~45; bench/README.md,
 * "A connection's close").
 *
 * So the socket's and the Receiver's `end` are shadowed, per connection, by one that skips a call without arguments on a
 * stream whose end was already called — what Node's `end()` does then, but the error — and hands every other call to
 * the prototype's `end`. Only where that is Node's own (`net.Socket`'s, `Writable`'s): a ws or Node that changed either
 * keeps its own. test/transport/quiet-end.test.ts pins it to the installed ws.
 */
import { Socket } from 'node:net';
import { Writable } from 'node:stream';
import type { WebSocket } from 'ws';

/** The private fields of a ws 8 WebSocket this module reads. */
interface WebSocketInternals {
  _socket?: unknown;
  _receiver?: unknown;
}

type End = (this: Writable, chunk?: unknown, encoding?: unknown, callback?: unknown) => Writable;

// Each calls the prototype's `end` as it is at the call, not a copy taken at load: what a test wraps there sees every
// call this lets through.
function quietSocketEnd(this: Writable, chunk?: unknown, encoding?: unknown, callback?: unknown): Writable {
  if (chunk === undefined && encoding === undefined && callback === undefined && this.writableEnded) return this;
  return (Socket.prototype.end as End).call(this, chunk, encoding, callback);
}

function quietWritableEnd(this: Writable, chunk?: unknown, encoding?: unknown, callback?: unknown): Writable {
  if (chunk === undefined && encoding === undefined && callback === undefined && this.writableEnded) return this;
  return (Writable.prototype.end as End).call(this, chunk, encoding, callback);
}

/** Shadows `end` of `ws`'s socket and Receiver (see above), each only if it is Node's own. */
export function quietEnds(ws: WebSocket): void {
  const { _socket: socket, _receiver: receiver } = ws as unknown as WebSocketInternals;
  if (socket instanceof Socket && socket.end === Socket.prototype.end) socket.end = quietSocketEnd as Socket['end'];
  if (receiver instanceof Writable && receiver.end === Writable.prototype.end) receiver.end = quietWritableEnd as Writable['end'];
}
