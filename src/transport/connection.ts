/**
 * One client connection: its identity, its subscriptions, its counters, and the only way to write to or close its socket.
 * The shape is fixed: every field is set in the constructor (nothing is ever added to the `ws` socket).
 */
import type { SpanContext } from '@opentelemetry/api';
import type { WebSocket } from 'ws';
import type { AppConfig } from '../config.js';
import { Errors } from '../protocol/errors.js';
import { encodeError } from '../protocol/encode.js';
import { FixedWindow } from '../limits/fixed-window.js';
import type { Logger } from '../telemetry/logger.js';
import type { SentKind } from '../protocol/frame-kinds.js';
import type { MessageErrorReason, Metrics } from '../telemetry/metrics.js';
import type { CloseReason } from './close-reasons.js';
import { TextFrame, writeTextFrame } from './preframed.js';
import type { WriteTurnState } from './write-turns.js';

/** A presence membership held by this connection on one channel. */
export interface Membership {
  /** The member's identity (its string form): the key of presence bookkeeping. */
  userId: string;
  /**
   * `user_id` exactly as the backend signed it (a number stays a number): what member_added / member_removed and their
   * webhooks echo, as Pusher does (docs/protocol-compatibility.md, "Numeric user ids").
   */
  signedUserId: string | number;
  userInfo: unknown;
}

export interface ConnectionOptions {
  ws: WebSocket;
  app: AppConfig;
  socketId: string;
  sessionId: string;
  /** The process logger; the connection's own logger is its child with `logBindings`, made on first use. */
  logger: Logger;
  /** Fields of every line this connection logs (session and socket ids, app id). */
  logBindings: Record<string, string>;
  metrics: Metrics;
  sendBufferMaxBytes: number;
  /** Frames per second this connection may send, every kind (FRAME_RATE_LIMIT_PER_SECOND); 0 means unlimited. */
  framesPerSecond: number;
  upgradeSpan: SpanContext | undefined;
  /** Called once, after the socket is closed for any reason, so the hub can forget the connection. */
  onClosed: (connection: Connection) => void;
}

/** The log catalog events a rejected frame is logged as (docs/telemetry.md): refused signatures and rate limits have their own. */
export type RejectionLogEvent = 'message_rejected' | 'rate_limited' | 'auth_failed' | 'subscription_failed';

/** The close code ws sends for each of its frame-level errors (the rest are 1002, protocol error). */
const WS_ERROR_CLOSE: Readonly<Record<string, { code: number; reason: MessageErrorReason }>> = {
  WS_ERR_UNSUPPORTED_MESSAGE_LENGTH: { code: Errors.CLOSE_MESSAGE_TOO_BIG.code, reason: 'too_large' },
  WS_ERR_INVALID_UTF8: { code: Errors.CLOSE_INVALID_UTF8.code, reason: 'invalid_utf8' },
};

const WS_OPEN = 1;
/** A Buffer sent as a text frame: fan-out encodes the UTF-8 bytes once instead of once per recipient. */
const TEXT_FRAME = { binary: false } as const;
/** How long a server-initiated close waits for the peer's close frame before the socket is cut. */
export const CLOSE_HANDSHAKE_MS = 2000;
/** Rejections logged per connection; later ones are only counted (websocket_message_errors_total). */
const LOGGED_REJECTIONS = 20;

export class Connection implements WriteTurnState {
  readonly ws: WebSocket;
  readonly app: AppConfig;
  readonly socketId: string;
  readonly sessionId: string;
  private readonly rootLogger: Logger;
  private readonly logBindings: Record<string, string>;
  private childLogger: Logger | undefined = undefined;
  readonly upgradeSpan: SpanContext | undefined;
  readonly openedAt: number;
  /** Channel name → presence membership (or null for non-presence channels). */
  readonly subscriptions = new Map<string, Membership | null>();
  /** Signed-in user id (pusher:signin), if any. */
  userId: string | undefined = undefined;
  /** Subscribed to a private or presence channel the app's backend signed: as good as a sign-in for 4009 (Pusher's rule). */
  authorized = false;
  watchlist: readonly string[] = [];
  lastActivityAt: number;
  /** When the server's unanswered ping was sent; 0 when none is pending. */
  pingSentAt = 0;
  messagesIn = 0;
  messagesOut = 0;
  bytesIn = 0;
  bytesOut = 0;
  /** The inbound budget: every frame counts, checked before the frame is decoded. */
  readonly frames: FixedWindow;
  /** Client events per second (the app's clientEventsPerSecond). */
  readonly clientEvents: FixedWindow;
  /** The socket-level error that ended the connection, if any (its code: `ECONNRESET`, `WS_ERR_…`). */
  socketError: string | undefined = undefined;
  /** Set once; a closing connection sends nothing more. */
  closeReason: CloseReason | undefined = undefined;
  closeCode = 0;
  /** Write coalescing (transport/write-turns.ts): the turn of the last raw write, and whether the socket is held corked. */
  lastWriteTurn = 0;
  writeCorked = false;
  private readonly metrics: Metrics;
  private readonly sendBufferMaxBytes: number;
  private readonly onClosed: (connection: Connection) => void;
  private finished = false;
  private rejections = 0;
  /** True while reading from the socket is paused for the rest of the frame budget's window. */
  private inboundHeld = false;

  constructor(options: ConnectionOptions) {
    this.ws = options.ws;
    this.app = options.app;
    this.socketId = options.socketId;
    this.sessionId = options.sessionId;
    this.rootLogger = options.logger;
    this.logBindings = options.logBindings;
    this.metrics = options.metrics;
    this.sendBufferMaxBytes = options.sendBufferMaxBytes;
    this.upgradeSpan = options.upgradeSpan;
    this.onClosed = options.onClosed;
    this.frames = new FixedWindow(options.framesPerSecond);
    this.clientEvents = new FixedWindow(options.app.clientEventsPerSecond);
    this.openedAt = Date.now();
    this.lastActivityAt = this.openedAt;
  }

  /**
   * The connection's logger (lines carry its session, socket and app ids). Made on first use: with info lines off, an idle
   * connection never pays for a pino child (bindings serialised, redaction run) it would not write with.
   */
  get logger(): Logger {
    this.childLogger ??= this.rootLogger.child(this.logBindings);
    return this.childLogger;
  }

  /** True when info lines are written (checked before building a line's fields on the connection path). */
  get logsInfo(): boolean {
    return this.rootLogger.isLevelEnabled('info');
  }

  get isOpen(): boolean {
    return this.closeReason === undefined && this.ws.readyState === WS_OPEN;
  }

  /**
   * Writes one already-encoded frame. Returns false when the frame was not written (closing, or the connection was just
   * closed as a slow consumer). Counts bytes here; the caller records message metrics (once per fan-out, not per recipient).
   */
  sendFrame(frame: Buffer, bytes: number): boolean {
    if (!this.admitsWrite()) return false;
    this.ws.send(frame, TEXT_FRAME);
    this.messagesOut++;
    this.bytesOut += bytes;
    return true;
  }

  /**
   * Writes one frame built once for many recipients (fan-out): one socket write of the prebuilt wire bytes when ws's state
   * allows it (transport/preframed.ts), `ws.send()` otherwise. Same contract as `sendFrame`.
   */
  sendTextFrame(frame: TextFrame): boolean {
    if (!this.admitsWrite()) return false;
    writeTextFrame(this.ws, frame, this);
    this.messagesOut++;
    this.bytesOut += frame.payload.length;
    return true;
  }

  /** False when nothing may be written: closing, or just closed as a slow consumer (counted and logged here, once). */
  private admitsWrite(): boolean {
    if (!this.isOpen) return false;
    if (this.ws.bufferedAmount > this.sendBufferMaxBytes) {
      // The client does not read as fast as we write: close it rather than let its buffer grow without bound.
      this.metrics.backpressure(this.app.id, 'disconnected');
      this.logger.warn(
        { event: 'slow_consumer', buffered_bytes: this.ws.bufferedAmount, limit_bytes: this.sendBufferMaxBytes },
        'send buffer over its bound; closing slow consumer',
      );
      this.close(Errors.CLOSE_SLOW_CONSUMER.code, Errors.CLOSE_SLOW_CONSUMER.message, 'slow_consumer');
      return false;
    }
    return true;
  }

  /** Writes a frame that is addressed to this connection alone, recording its message metrics. */
  send(frame: string, kind: SentKind): boolean {
    const text = new TextFrame(Buffer.from(frame));
    const written = this.sendTextFrame(text);
    if (written) this.metrics.messagesSent(this.app.id, kind, text.payload.length, 1);
    return written;
  }

  /**
   * Rejects one client frame without closing: sends `pusher:error`, counts it with its reason, logs it once (as `logEvent`,
   * the catalog event of this kind of rejection). Every rejected client frame goes through here. `channel` is set for a
   * refused client event, so the client can tell which channel's event it was.
   */
  reject(
    reason: MessageErrorReason,
    message: string,
    code: number | null = null,
    logEvent: RejectionLogEvent = reason === 'rate_limited' ? 'rate_limited' : 'message_rejected',
    channel?: string,
  ): void {
    this.metrics.messageError(this.app.id, reason);
    this.logRejection(logEvent, { reason, code }, message);
    this.send(encodeError(message, code, channel), 'protocol');
  }

  /**
   * Logs one refusal of this client's input, whatever its path (rejected frame, failed subscription, socket-level error):
   * a flooding client must not flood the logs, so the metric counts every refusal and the log tells the first ones.
   */
  logRejection(event: RejectionLogEvent, fields: Record<string, unknown>, message: string): void {
    this.rejections++;
    if (this.rejections <= LOGGED_REJECTIONS) {
      this.logger.info({ event, ...fields }, message);
    } else if (this.rejections === LOGGED_REJECTIONS + 1) {
      this.logger.warn(
        { event: 'message_rejected', reason: fields.reason },
        'further rejections on this connection are counted, not logged',
      );
    }
  }

  /**
   * The socket itself failed: a frame ws refused (invalid UTF-8: 1007, over the hard size limit: 1009, other protocol
   * violations: 1002), or the TCP connection broke. A client's fault, never a server error: counted with its reason, logged
   * within the rejection cap, and the close code ws sent is the one `connection_closed` reports.
   */
  socketFailed(err: Error & { code?: string }): void {
    const code = err.code ?? 'socket_error';
    this.socketError ??= code;
    if (!code.startsWith('WS_ERR')) {
      // A reset or a broken pipe: the peer went away. `connection_closed` tells it (reason `error`, `error` field).
      this.closeReason ??= 'error';
      return;
    }
    const known = WS_ERROR_CLOSE[code] ?? { code: Errors.CLOSE_INVALID_FRAME.code, reason: 'invalid_frame' as const };
    this.metrics.messageError(this.app.id, known.reason);
    this.logRejection('message_rejected', { reason: known.reason, code: known.code, error: code }, err.message);
    if (this.closeReason === undefined) {
      this.closeReason = 'protocol_error';
      this.closeCode = known.code;
    }
    // ws has sent its close frame and stopped reading; bound the wait for the peer as `close` does.
    setTimeout(() => this.ws.terminate(), CLOSE_HANDSHAKE_MS).unref();
  }

  /**
   * Stops reading this client's socket until its frame budget's window ends. A flood then waits in the kernel's buffers and
   * the client's own (TCP backpressure) instead of in this event loop: past its budget a connection costs the frames of
   * one read, not everything it can send.
   */
  holdInbound(now: number): void {
    if (this.inboundHeld || !this.isOpen) return;
    this.inboundHeld = true;
    this.ws.pause();
    // Until one millisecond past the window's end, so the first frame read again falls in the next window.
    setTimeout(() => {
      this.inboundHeld = false;
      if (this.isOpen) this.ws.resume();
    }, this.frames.resetsIn(now) + 1).unref();
  }

  /** Sends `pusher:error` with the close code and closes with it: the one way the server ends a connection. */
  close(code: number, message: string, reason: CloseReason): void {
    if (this.closeReason !== undefined) return;
    this.closeReason = reason;
    this.closeCode = code;
    if (this.ws.readyState === WS_OPEN) {
      const frame = encodeError(message, code);
      this.ws.send(frame);
      this.metrics.messagesSent(this.app.id, 'protocol', Buffer.byteLength(frame), 1);
      this.ws.close(code, message.slice(0, 120));
      // The close frame queues behind whatever is buffered; a peer that does not read (a slow consumer) would hold the
      // socket open until ws's own 30 s timeout. Bound the handshake.
      setTimeout(() => this.ws.terminate(), CLOSE_HANDSHAKE_MS).unref();
    } else {
      this.ws.terminate();
    }
  }

  /**
   * Called exactly once when the socket is gone (close event, error, or reset). Records the close and tells the hub.
   * `code` is what the peer or the server sent on the close frame (1006 for an abnormal close).
   */
  finish(code: number): void {
    if (this.finished) return;
    this.finished = true;
    if (this.closeReason === undefined) this.closeReason = code === 1006 ? 'error' : 'client_close';
    // A close the server started keeps the code it sent; otherwise the code is the one on the wire (1006: none).
    if (this.closeCode === 0) this.closeCode = code;
    const durationMs = Date.now() - this.openedAt;
    this.metrics.connectionClosed(this.app.id, this.closeReason, durationMs / 1000);
    this.onClosed(this);
    if (!this.logsInfo) return;
    this.logger.info(
      {
        event: 'connection_closed',
        reason: this.closeReason,
        code: this.closeCode,
        duration_ms: durationMs,
        messages_in: this.messagesIn,
        messages_out: this.messagesOut,
        bytes_in: this.bytesIn,
        bytes_out: this.bytesOut,
        ...(this.socketError === undefined ? {} : { error: this.socketError }),
      },
      'connection closed',
    );
  }
}
