/**
 * Direct socket writes: a pre-built fan-out frame handed to the TCP socket's handle in one call, where `socket.write()`
 * would go through Node's Writable (write → writeOrBuffer → _writeGeneric → a request object per write → the write
 * callback → an after-write tick) only to make the same call. That machinery was ~13 % of Beacon's CPU per delivery in
 * the fan-out (bench/README.md, "Fan-out frames written straight to the TCP handle").
 *
 * Node has no public API for this. The handle's own `writeBuffer(req, buffer)` is what `socket.write()` ends in; the
 * request object and the write's outcome come from `process.binding('stream_wrap')` (deprecated for documentation only,
 * DEP0111: a `--pending-deprecation` run prints one warning; under `--throw-deprecation` it is not used, and every
 * write goes through `socket.write()`). A direct write is made only where Node itself would hand the bytes straight to
 * the handle, checked per write:
 * - nothing is held in the Writable (`writableLength` 0), so no byte Node holds is overtaken, and it is not corked (a
 *   corked socket, write-turns.ts, is left to Node, so a turn's frames still leave together);
 * - nothing is queued in libuv (`writeQueueSize` 0): a backlog is left to Node, which holds it and drains it in one
 *   writev (libuv itself keeps its queue in order);
 * - the socket has its handle and no idle timeout, which every Node write would refresh (ws sets none);
 * anything else, and a socket whose handle is not TCP's, goes through `socket.write()`.
 * When the kernel takes the whole frame (a write on a socket with room: the common case) libuv is done with it and the
 * one request object is used again. When it takes part, libuv queues the rest, in order, ahead of any later write
 * (each of which then goes through Node, as `writeQueueSize` is no longer 0); the frame is held until libuv is done,
 * and a failed write destroys the socket, as Node would. A write refused at once (a peer gone) destroys it too.
 * Bytes libuv holds are in the handle's `writeQueueSize`, not in `writableLength`: `queuedBytes` reads both.
 * test/transport/direct-write.test.ts pins all of this to the running Node.
 */
import type { Socket } from 'node:net';

/** What a libuv stream handle (node's `TCP` wrap) offers that this module uses. */
interface StreamHandle {
  writeBuffer(req: object, data: Buffer): number;
  readonly writeQueueSize: number;
}

/** A request object: filled in only when libuv queued part of a write and will call back. */
interface WriteRequest {
  oncomplete?: (this: WriteRequest, status: number) => void;
  buffer?: Buffer;
  socket?: Socket;
}

interface StreamWrapBinding {
  WriteWrap: new () => WriteRequest;
  streamBaseState: Int32Array;
  kLastWriteWasAsync: number;
}

/** Node's private socket fields this module reads. */
interface SocketInternals {
  _handle: StreamHandle | null;
  timeout?: number;
}

/** The bindings, or undefined where this Node does not offer them (then every write goes through `socket.write()`). */
function loadBindings(): { streamWrap: StreamWrapBinding; tcp: new () => object } | undefined {
  // Deprecations made fatal (`--throw-deprecation`): no deprecated API, then. With `--pending-deprecation` too,
  // `process.binding`'s warning would end the process, thrown on the next tick where no `catch` here reaches it.
  if (process.throwDeprecation) return undefined;
  try {
    const node = process as unknown as { binding(name: string): Record<string, unknown> };
    const streamWrap = node.binding('stream_wrap') as Partial<StreamWrapBinding>;
    const tcp = node.binding('tcp_wrap').TCP as (new () => object) | undefined;
    if (
      typeof streamWrap.WriteWrap !== 'function' ||
      !(streamWrap.streamBaseState instanceof Int32Array) ||
      typeof streamWrap.kLastWriteWasAsync !== 'number' ||
      typeof tcp !== 'function' ||
      typeof (tcp.prototype as Partial<StreamHandle>).writeBuffer !== 'function'
    ) {
      return undefined;
    }
    return { streamWrap: streamWrap as StreamWrapBinding, tcp };
  } catch {
    return undefined;
  }
}

const bindings = loadBindings();
/** The binding's members a direct write reads, each once here rather than through the binding on every write. */
const WriteWrap = bindings?.streamWrap.WriteWrap;
const streamBaseState = bindings?.streamWrap.streamBaseState ?? new Int32Array(1);
const LAST_WRITE_WAS_ASYNC = bindings?.streamWrap.kLastWriteWasAsync ?? 0;
/** The request object for writes the kernel takes whole (libuv keeps nothing of it then); replaced when libuv keeps it. */
let spare: WriteRequest | undefined = WriteWrap === undefined ? undefined : new WriteWrap();

/** libuv finished the rest of a direct write: the frame can go; a failure ends the socket, as in Node's own writes. */
function afterQueuedWrite(this: WriteRequest, status: number): void {
  const socket = this.socket;
  this.buffer = undefined;
  this.socket = undefined;
  if (status < 0) socket?.destroy();
}

/**
 * The handle a connection writes its frames to directly, for its whole life, or undefined (every write through
 * `socket.write()`): the socket's TCP handle, where this Node offers what direct writes need. Read once per connection.
 */
export function directWriteHandle(socket: Socket): StreamHandle | undefined {
  const handle = (socket as unknown as SocketInternals)._handle;
  return bindings !== undefined && handle instanceof bindings.tcp ? handle : undefined;
}

/** Writes `wire` to `socket`: straight to `handle` (`directWriteHandle(socket)`) when Node would, else `socket.write()`. */
export function writeToSocket(socket: Socket, handle: StreamHandle | undefined, wire: Buffer): void {
  const internals = socket as unknown as SocketInternals;
  if (
    handle === undefined ||
    internals._handle !== handle ||
    socket.writableLength !== 0 ||
    socket.writableCorked !== 0 ||
    handle.writeQueueSize !== 0 ||
    internals.timeout
  ) {
    socket.write(wire);
    return;
  }
  // A handle is only ever given where the bindings exist (`directWriteHandle`), so `spare` and `WriteWrap` are set.
  const req = spare!;
  if (handle.writeBuffer(req, wire) !== 0) {
    // Refused before a byte was taken (the peer reset the connection): Node would destroy the socket with the error.
    socket.destroy();
    return;
  }
  if (streamBaseState[LAST_WRITE_WAS_ASYNC] !== 0) {
    req.buffer = wire;
    req.socket = socket;
    req.oncomplete = afterQueuedWrite;
    spare = new WriteWrap!();
  }
}

/** Bytes written to `socket` and not yet taken by the kernel: held by Node's Writable or queued in libuv. */
export function queuedBytes(socket: Socket, handle: StreamHandle | undefined): number {
  // Node's own writes queued in libuv are in both; a direct write's rest only in libuv's count.
  return handle === undefined ? socket.writableLength : Math.max(socket.writableLength, handle.writeQueueSize);
}

export type { StreamHandle };
