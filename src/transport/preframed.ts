/**
 * Pre-framed text frames: one fan-out builds the WebSocket frame once (header and payload in one Buffer; server frames are
 * unmasked, so the bytes are identical for every subscriber) and writes it to each socket with one `write`, instead of
 * `ws.send()` framing it again and writing header and payload as two buffers per recipient (a `writev` each).
 *
 * `ws` has no public API for this. The frame comes from ws's own `Sender.frame` (the exact bytes `send()` would write),
 * and a raw write is only ever made where ws itself would write straight to the socket:
 * - no extension (permessage-deflate) was negotiated: read once, when a connection opens (`rawFrameSocket`);
 * - ws's Sender is idle (not compressing, not reading a Blob, so nothing queued) and between messages. A `Connection`
 *   (connection.ts), the one writer of its socket, keeps it so by how it writes: through ws only whole messages from a
 *   Buffer or a string, never a Blob nor a fragment. Without compression ws writes those to the socket at once, as it
 *   writes its own pongs and close frames, so its Sender never turns busy. Nothing about the Sender is read per write.
 * - the connection is open and its socket writable: checked per write by the connection.
 * A connection with an extension, or a ws version whose internals differ, writes every frame through `ws.send()`.
 * `bufferedAmount` stays exact: a raw write is queued in the socket, which ws counts (but for the rest of one frame
 * libuv may hold after a direct write, which `Connection.queuedBytes` adds). test/transport/preframed.test.ts pins all of
 * this to the installed ws.
 */
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import { writeToSocket, type StreamHandle } from './direct-write.js';
import { beforeWrite, type WriteTurnState } from './write-turns.js';

/** The private fields of a ws 8 WebSocket this module reads. */
interface WebSocketInternals {
  _sender?: object;
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

const TEXT_FRAME: FrameOptions = { fin: true, opcode: 0x1, mask: false, readOnly: true, rsv1: false };

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
  wireBytes(sender: object): Buffer | undefined {
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
 * The TCP socket a `Connection` writes its pre-built frames to for its whole life, or undefined (every frame through
 * `ws.send()`): ws's socket when no extension (permessage-deflate) was negotiated and ws's Sender class builds frames.
 * Extensions are settled by the handshake, so a connection reads this once, when it opens. Only for an owner that writes
 * nothing else through ws but whole messages from Buffers and strings (see the module comment): then everything
 * `bufferedAmount` counts is in this socket.
 */
export function rawFrameSocket(ws: WebSocket): Socket | undefined {
  const internals = ws as unknown as WebSocketInternals;
  const sender = internals._sender;
  const extensions = internals._extensions;
  const possible =
    sender !== undefined &&
    typeof (sender.constructor as Partial<SenderClass>).frame === 'function' &&
    extensions !== undefined &&
    !hasAny(extensions);
  return possible ? internals._socket : undefined;
}

/**
 * Writes `frame` to `socket` (`rawFrameSocket(ws)`) with one write, coalesced within the turn (write-turns.ts): straight
 * to its `handle` when it has one and Node would (direct-write.ts). The caller has checked that the connection is open,
 * within its send-buffer bound and its socket writable. Returns false, having written nothing, when ws's Sender class
 * builds no frames.
 */
export function writeRawFrame(
  ws: WebSocket,
  socket: Socket,
  handle: StreamHandle | undefined,
  frame: TextFrame,
  turns: WriteTurnState,
): boolean {
  const wire = frame.wireBytes((ws as unknown as Required<WebSocketInternals>)._sender);
  if (wire === undefined) return false;
  beforeWrite(socket, turns);
  writeToSocket(socket, handle, wire);
  return true;
}
