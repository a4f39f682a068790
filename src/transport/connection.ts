/**
 * One client connection: its identity, its subscriptions, its counters, and the only way to write to or close its socket.
 * The shape is fixed: every field is set in the constructor (nothing is ever added to the `ws` socket).
 */
import type { SpanContext } from '@opentelemetry/api';
import type { WebSocket } from 'ws';
import type { AppConfig } from '../config.js';
import { CloseCode } from '../protocol/close-codes.js';
import { encodeError } from '../protocol/encode.js';
import type { Logger } from '../telemetry/logger.js';
import type { CloseReason, MessageErrorReason, Metrics, SentKind } from '../telemetry/metrics.js';
import { TextFrame, writeTextFrame } from './preframed.js';
import type { WriteTurnState } from './write-turns.js';

/** A presence membership held by this connection on one channel. */
export interface Membership {
  userId: string;
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
  upgradeSpan: SpanContext | undefined;
  /** Called once, after the socket is closed for any reason, so the hub can forget the connection. */
  onClosed: (connection: Connection) => void;
}

/** The log catalog events a rejected frame is logged as (docs/telemetry.md): refused signatures and rate limits have their own. */
export type RejectionLogEvent = 'message_rejected' | 'rate_limited' | 'auth_failed';

const WS_OPEN = 1;
/** A Buffer sent as a text frame: fan-out encodes the UTF-8 bytes once instead of once per recipient. */
const TEXT_FRAME = { binary: false } as const;
/** How long a server-initiated close waits for the peer's close frame before the socket is cut. */
const CLOSE_HANDSHAKE_MS = 2000;
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
  watchlist: readonly string[] = [];
  lastActivityAt: number;
  /** When the server's unanswered ping was sent; 0 when none is pending. */
  pingSentAt = 0;
  messagesIn = 0;
  messagesOut = 0;
  bytesIn = 0;
  bytesOut = 0;
  /** Client-event rate limit: events counted in the current one-second window. */
  clientEventWindowStart = 0;
  clientEventCount = 0;
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
      this.close(CloseCode.OverCapacity, 'Slow consumer: send buffer full', 'slow_consumer');
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
   * the catalog event of this kind of rejection). Every rejected client frame goes through here.
   */
  reject(
    reason: MessageErrorReason,
    message: string,
    code: number | null = null,
    logEvent: RejectionLogEvent = reason === 'rate_limited' ? 'rate_limited' : 'message_rejected',
  ): void {
    this.metrics.messageError(this.app.id, reason);
    // A flooding client must not flood the logs: the metric counts every rejection, the log tells the first ones.
    this.rejections++;
    if (this.rejections <= LOGGED_REJECTIONS) {
      this.logger.info({ event: logEvent, reason, code }, message);
    } else if (this.rejections === LOGGED_REJECTIONS + 1) {
      this.logger.warn({ event: 'message_rejected', reason }, 'further rejections on this connection are counted, not logged');
    }
    this.send(encodeError(message, code), 'protocol');
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
    if (this.closeReason === undefined) {
      this.closeReason = code === 1006 ? 'error' : 'client_close';
      this.closeCode = code;
    }
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
      },
      'connection closed',
    );
  }
}
