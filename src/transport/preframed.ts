/**
 * Pre-framed text frames: one fan-out builds the WebSocket frame once (header and payload in one Buffer; server frames are
 * unmasked, so the bytes are identical for every subscriber) and writes it to each socket with one `write`, instead of
 * `ws.send()` framing it again and writing header and payload as two buffers per recipient (a `writev` each).
 *
 * `ws` has no public API for this. The frame comes from ws's own `Sender.frame` (the exact bytes `send()` would write),
 * and the raw write is taken only when ws itself would write straight to the socket: the socket is OPEN, no extension
 * (permessage-deflate) is negotiated, ws's Sender is idle (no compression or Blob read in progress, nothing queued) and not
 * inside a fragmented message. Anything else — or a ws version whose internals differ — goes through `ws.send()`, so order
 * and ws's own state are never bypassed. `bufferedAmount` stays exact: a raw write is queued in the socket, which ws counts.
 * test/transport/preframed.test.ts pins this to the installed ws.
 */
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import { beforeWrite, type WriteTurnState } from './write-turns.js';

/** ws's Sender, as far as this module reads it (private fields of ws 8). */
interface SenderInternals {
  _state?: unknown;
  _queue?: { length: number };
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

/** True when `record` has an own or inherited enumerable key; no array is allocated (this runs per recipient). */
function hasAny(record: Record<string, unknown>): boolean {
  for (const _ in record) return true;
  return false;
}

/** True when ws would write a frame for `ws` straight to its socket now, so a pre-built frame may be written instead. */
export function canWriteRaw(ws: WebSocket): boolean {
  if (ws.readyState !== WS_OPEN) return false;
  const internals = ws as unknown as WebSocketInternals;
  const sender = internals._sender;
  const socket = internals._socket;
  const extensions = internals._extensions;
  return (
    sender !== undefined &&
    sender._state === SENDER_IDLE &&
    sender._queue?.length === 0 &&
    sender._firstFragment === true &&
    extensions !== undefined &&
    !hasAny(extensions) &&
    socket !== undefined &&
    socket.writable
  );
}

/**
 * Writes `frame` to `ws`: raw when `canWriteRaw`, otherwise through `ws.send()`. Returns true when the raw path was taken.
 * With `turns` (the connection's coalescing state), a second raw frame in the same turn is coalesced (write-turns.ts).
 * The caller has checked that the connection is open and within its send-buffer bound.
 */
export function writeTextFrame(ws: WebSocket, frame: TextFrame, turns?: WriteTurnState): boolean {
  if (canWriteRaw(ws)) {
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
