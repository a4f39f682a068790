/**
 * Pre-framed text frames: one fan-out builds the WebSocket frame once (header and payload in one Buffer; server frames are
 * unmasked, so the bytes are identical for every subscriber) and writes it to each socket with one `write`, instead of
 * `ws.send()` framing it again and writing header and payload as two buffers per recipient (a `writev` each).
 *
 * `ws` has no public API for this. The frame comes from ws's own `Sender.frame` (the exact bytes `send()` would write),
 * and the raw write is taken only when ws itself would write straight to the socket: the socket is OPEN, no extension
 * (permessage-deflate) is negotiated (read once per connection), ws's Sender is idle (no compression or Blob read in
 * progress, so nothing queued) and not inside a fragmented message. Anything else — or a ws version whose internals
 * differ — goes through `ws.send()`, so order and ws's own state are never bypassed. `bufferedAmount` stays exact: a raw
 * write is queued in the socket, which ws counts. test/transport/preframed.test.ts pins this to the installed ws.
 */
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import { beforeWrite, type WriteTurnState } from './write-turns.js';

/** ws's Sender, as far as this module reads it (private fields of ws 8). */
interface SenderInternals {
  _state?: unknown;
  _firstFragment?: unknown;
}

/** The private fields of a ws 8 WebSocket this module reads. */
interface WebSocketInternals {
  _sender?: SenderInternals;
  _socket?: Socket;
  _extensions?: Record<string, unknown>;
}

interface FrameOptions {
  fin: boolean;
  opcode: number;
  mask: boolean;
  readOnly: boolean;
  rsv1: boolean;
}

/** ws's Sender class, whose static `frame` builds the bytes `send()` writes (ws's types do not declare it). */
interface SenderClass {
  frame(data: Buffer, options: FrameOptions): Buffer[];
}

const WS_OPEN = 1;
/** Sender state DEFAULT of ws 8: not compressing, not reading a Blob. */
const SENDER_IDLE = 0;
const TEXT_FRAME: FrameOptions = { fin: true, opcode: 0x1, mask: false, readOnly: true, rsv1: false };
const SEND_AS_TEXT = { binary: false } as const;

/** One text message for many sockets: its payload, and its wire frame once a socket could take it raw. */
export class TextFrame {
  /** The UTF-8 payload (what `ws.send()` is given on the fallback path). */
  readonly payload: Buffer;
  private wire: Buffer | undefined = undefined;

  constructor(payload: Buffer) {
    this.payload = payload;
  }

  /**
   * The frame's bytes, built the first time a socket needs them by the static `frame` of that socket's own Sender class
   * (the very copy of ws that owns the socket); undefined if it has none.
   */
  wireBytes(sender: SenderInternals): Buffer | undefined {
    if (this.wire === undefined) {
      const framer = sender.constructor as Partial<SenderClass>;
      if (typeof framer.frame !== 'function') return undefined;
      const parts = framer.frame(this.payload, TEXT_FRAME);
      this.wire = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
    }
    return this.wire;
  }
}

/** True when `record` has an own or inherited enumerable key; no array is allocated. */
function hasAny(record: Record<string, unknown>): boolean {
  for (const _ in record) return true;
  return false;
}

/**
 * True when ws could ever take a pre-built frame for `ws`: no extension (permessage-deflate) was negotiated and its Sender
 * class builds frames. Extensions are settled by the handshake, so a connection reads this once, when it opens.
 */
export function rawFramesPossible(ws: WebSocket): boolean {
  const internals = ws as unknown as WebSocketInternals;
  const sender = internals._sender;
  const extensions = internals._extensions;
  return (
    sender !== undefined &&
    typeof (sender.constructor as Partial<SenderClass>).frame === 'function' &&
    extensions !== undefined &&
    !hasAny(extensions)
  );
}

/**
 * True when ws, which could take pre-built frames (`rawFramesPossible`), would write one straight to the socket now: open,
 * its Sender idle and not inside a fragmented message, the socket writable. This runs per recipient, so it reads only
 * what changes. The Sender's queue is not read: ws 8 queues a send only while its Sender is busy (compressing, reading a
 * Blob) and drains the queue synchronously whenever it becomes idle again, so an idle Sender's queue is empty
 * (test/transport/preframed.test.ts pins this to the installed ws).
 */
function writesStraightThrough(ws: WebSocket): boolean {
  if (ws.readyState !== WS_OPEN) return false;
  const internals = ws as unknown as Required<WebSocketInternals>;
  const sender = internals._sender;
  return sender._state === SENDER_IDLE && sender._firstFragment === true && internals._socket.writable;
}

/** True when ws would write a frame for `ws` straight to its socket now, so a pre-built frame may be written instead. */
export function canWriteRaw(ws: WebSocket): boolean {
  return rawFramesPossible(ws) && writesStraightThrough(ws);
}

/**
 * Writes `frame` to `ws`: raw when `canWriteRaw`, otherwise through `ws.send()`. Returns true when the raw path was taken.
 * With `turns` (the connection's coalescing state), a second raw frame in the same turn is coalesced (write-turns.ts).
 * `rawPossible` is `rawFramesPossible(ws)`, which a connection reads once. The caller has checked that the connection is
 * open and within its send-buffer bound.
 */
export function writeTextFrame(ws: WebSocket, frame: TextFrame, turns?: WriteTurnState, rawPossible = rawFramesPossible(ws)): boolean {
  if (rawPossible && writesStraightThrough(ws)) {
    const internals = ws as unknown as Required<WebSocketInternals>;
    const wire = frame.wireBytes(internals._sender);
    if (wire !== undefined) {
      if (turns !== undefined) beforeWrite(internals._socket, turns);
      internals._socket.write(wire);
      return true;
    }
  }
  ws.send(frame.payload, SEND_AS_TEXT);
  return false;
}
