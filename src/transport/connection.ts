/**
 * One client connection: its identity, the only way to write to or close its socket, and the intent methods that count,
 * log and trace what happens to it. Its own state (channels, user, counters) is ConnectionState's (connection-state.ts).
 * The shape is fixed: every field is set in the constructor (nothing is ever added to the `ws` socket).
 * Through ws it writes only whole messages from a Buffer or a string, never a Blob nor a fragment (`fin: false`): its
 * pre-built fan-out frames are written straight to the socket on that ground (transport/preframed.ts).
 */
import type { Span, SpanContext } from '@opentelemetry/api';
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import type { AppConfig } from '../config.js';
import type { ChannelKind } from '../protocol/channel-name.js';
import { encodeError, PING_FRAME } from '../protocol/encode.js';
import { Errors } from '../protocol/errors.js';
import { logEvent, type LogEvent, type LogLevel, type LogLine } from '../telemetry/log-events.js';
import type { Logger } from '../telemetry/logger.js';
import type { ReceivedKind, SentKind } from '../protocol/frame-kinds.js';
import type { MessageErrorReason, Metrics, RateLimitScope } from '../telemetry/metrics.js';
import { addSpanEvent, endWithError, withSpan } from '../telemetry/tracing.js';
import type { CloseReason } from './close-reasons.js';
import { ConnectionState, type Membership } from './connection-state.js';
import { directWriteHandle, queuedBytes, type StreamHandle } from './direct-write.js';
import { rawFrameSocket, TextFrame, writeRawFrame } from './preframed.js';
import type { WriteTurnState } from './write-turns.js';

export type { Membership };

/** What a Connection is made of (ws-route.ts builds it for each accepted upgrade). */
export interface ConnectionOptions {
  ws: WebSocket;
  app: AppConfig;
  socketId: string;
  sessionId: string;
  /** The process logger: the connection writes its lines to it, each with `logBindings` first. */
  logger: Logger;
  /** Fields of every line this connection logs (session and socket ids, app id), first in the line. */
  logBindings: Record<string, string>;
  metrics: Metrics;
  sendBufferMaxBytes: number;
  /** Frames per second this connection may send, every kind (FRAME_RATE_LIMIT_PER_SECOND); 0 means unlimited. */
  framesPerSecond: number;
  upgradeSpan: SpanContext | undefined;
  /** Called once, after the socket is closed for any reason, so the hub can forget the connection. */
  onClosed: (connection: Connection) => void;
}

/** The log catalog events a refusal is logged as (docs/telemetry.md): refused signatures and rate limits have their own. */
export type RejectionLogEvent = Extract<LogEvent, 'message_rejected' | 'rate_limited' | 'auth_failed' | 'subscription_failed'>;

/** One refused client frame: what the client is told, and how it is counted and logged. */
export interface Rejection {
  /** The `reason` label of websocket_message_errors_total and of the log line. */
  reason: MessageErrorReason;
  /** The `pusher:error` message (and the log line's `msg`). */
  message: string;
  /** The `pusher:error` code; none by default. */
  code?: number | null;
  /** The catalog event it is logged as; by default `rate_limited` for a rate limit, else `message_rejected`. */
  logAs?: RejectionLogEvent;
  /** Set for a refused client event, so the client can tell which channel's event it was. */
  channel?: string;
  /** Bytes of a frame refused before any handler saw it: also counted as a received frame of kind `invalid`. */
  frameBytes?: number;
  /** The rate limit that refused it, counted in websocket_rate_limit_triggered_total. */
  rateLimit?: RateLimitScope;
  /**
   * The `pusher:error` frame already encoded, when the same answer goes to many frames (one past the frame budget): then
   * refusing a frame encodes and allocates nothing. It must say `message`, `code` and `channel`.
   */
  answer?: TextFrame;
}

/** 1008 (policy violation): what ws closes with when a message comes in more parts than it buffers. */
const WS_POLICY_VIOLATION = 1008;

/**
 * The close code ws sends for each of its frame-level errors, as its lib/receiver.js sends them (the rest are 1002,
 * protocol error): `connection_closed` must report the code on the wire.
 */
const WS_ERROR_CLOSE: Readonly<Record<string, { code: number; reason: MessageErrorReason }>> = {
  // Over the hard size limit (maxPayload).
  WS_ERR_UNSUPPORTED_MESSAGE_LENGTH: { code: Errors.CLOSE_MESSAGE_TOO_BIG.code, reason: 'too_large' },
  // A 64-bit payload length over 2^53 - 1 (one of its top 11 bits set): no JavaScript number holds it.
  WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH: { code: Errors.CLOSE_MESSAGE_TOO_BIG.code, reason: 'too_large' },
  // A message in more fragments (maxFragments) or buffered chunks (maxBufferedChunks) than ws holds for one message.
  WS_ERR_TOO_MANY_BUFFERED_PARTS: { code: WS_POLICY_VIOLATION, reason: 'too_large' },
  WS_ERR_INVALID_UTF8: { code: Errors.CLOSE_INVALID_UTF8.code, reason: 'invalid_utf8' },
};

const WS_OPEN = 1;
/** A Buffer sent as a text frame: fan-out encodes the UTF-8 bytes once instead of once per recipient. */
const TEXT_FRAME = { binary: false } as const;
/** How long a server-initiated close waits for the peer's close frame before the socket is cut. */
export const CLOSE_HANDSHAKE_MS = 2000;
/** Rejections logged per connection; later ones are only counted (websocket_message_errors_total). */
const LOGGED_REJECTIONS = 20;
/**
 * `subscribed` and `unsubscribed` lines per connection per minute; the rest of the minute's are counted (frames by kind,
 * subscriptions by result), not logged. A reconnect resubscribes at most MAX_SUBSCRIPTIONS_PER_CONNECTION (100) at once;
 * a client churning subscribe / unsubscribe within its frame budget wrote ~190 lines a second (a probe).
 */
export const LOGGED_SUBSCRIPTION_CHANGES_PER_MINUTE = 300;

/** One client connection; see the module comment. */
export class Connection extends ConnectionState implements WriteTurnState {
  readonly ws: WebSocket;
  readonly app: AppConfig;
  readonly socketId: string;
  readonly sessionId: string;
  private readonly logger: Logger;
  private readonly logBindings: Record<string, string>;
  readonly upgradeSpan: SpanContext | undefined;
  /**
   * Write coalescing (transport/write-turns.ts): the turn of the last raw write, and whether the socket is held corked.
   * Public because write-turns.ts keeps them (two fields here, no object per connection); nothing else writes them.
   */
  lastWriteTurn = 0;
  writeCorked = false;
  /**
   * The socket pre-built frames are written to, when ws could ever take them on this connection (transport/preframed.ts);
   * read once, the handshake settled it. Every other write goes through `ws.send()` with a whole Buffer or string, so
   * ws's Sender never turns busy here: what it reports buffered is all in this socket.
   */
  private readonly rawSocket: Socket | undefined;
  /** That socket's TCP handle, when its frames can be written to it directly (transport/direct-write.ts). */
  private readonly rawHandle: StreamHandle | undefined;
  private readonly metrics: Metrics;
  private readonly sendBufferMaxBytes: number;
  private readonly onClosed: (connection: Connection) => void;
  private finished = false;
  private rejections = 0;
  /** Its `subscribed` / `unsubscribed` lines since `subscriptionLinesSince` (plain numbers: nothing allocated a connection). */
  private subscriptionLines = 0;
  private subscriptionLinesSince = this.openedAt;
  /** True while reading from the socket is paused for the rest of the frame budget's window. */
  private inboundHeld = false;

  constructor(options: ConnectionOptions) {
    super(options.framesPerSecond, options.app.clientEventsPerSecond);
    this.ws = options.ws;
    this.app = options.app;
    this.socketId = options.socketId;
    this.sessionId = options.sessionId;
    this.logger = options.logger;
    this.logBindings = options.logBindings;
    this.rawSocket = rawFrameSocket(options.ws);
    this.rawHandle = this.rawSocket === undefined ? undefined : directWriteHandle(this.rawSocket);
    this.metrics = options.metrics;
    this.sendBufferMaxBytes = options.sendBufferMaxBytes;
    this.upgradeSpan = options.upgradeSpan;
    this.onClosed = options.onClosed;
  }

  /** Sends the server's `pusher:ping` at `now`; the pong (or any frame) must follow within PONG_TIMEOUT_MS. */
  ping(now: number): void {
    this.pingAt = now;
    this.send(PING_FRAME, 'protocol');
  }

  /** A `pusher:pong` arrived at `now`: records the round trip of the pending ping, if one is. */
  pongReceived(now: number): void {
    if (this.pingAt === 0) return;
    this.metrics.pingRtt((now - this.pingAt) / 1000);
    this.pingAt = 0;
  }

  /** True when info lines are written (checked before building a line's fields on the connection path). */
  get logsInfo(): boolean {
    return this.logger.isLevelEnabled('info');
  }

  get isOpen(): boolean {
    return this.closedFor === undefined && this.ws.readyState === WS_OPEN;
  }

  /**
   * Writes one already-encoded frame. Returns false when the frame was not written (closing, or the connection was just
   * closed as a slow consumer). Counts bytes here; the caller records message metrics (once per fan-out, not per recipient).
   */
  sendFrame(frame: Buffer, bytes: number): boolean {
    if (!this.admitsWrite()) return false;
    this.ws.send(frame, TEXT_FRAME);
    this.framesOut++;
    this.sentBytes += bytes;
    return true;
  }

  /** Answers a WebSocket ping with its pong, under the same send-buffer bound as every other write. */
  answerPing(data: Buffer): void {
    if (!this.admitsWrite()) return;
    this.ws.pong(data);
    this.framesOut++;
    this.sentBytes += data.length;
    this.metrics.messagesSent(this.app.id, 'protocol', data.length, 1);
  }

  /**
   * Writes one frame built once for many recipients (fan-out): one socket write of the prebuilt wire bytes when this
   * connection takes them and its socket is writable (transport/preframed.ts), `ws.send()` otherwise. Same contract as
   * `sendFrame`. Per recipient this reads only the connection's state and its socket's, never ws's Sender.
   */
  sendTextFrame(frame: TextFrame): boolean {
    if (!this.admitsWrite()) return false;
    const socket = this.rawSocket;
    if (socket === undefined || !socket.writable || !writeRawFrame(this.ws, socket, this.rawHandle, frame, this)) {
      this.ws.send(frame.payload, TEXT_FRAME);
    }
    this.framesOut++;
    this.sentBytes += frame.payload.length;
    return true;
  }

  /**
   * Bytes written and not yet taken by the kernel: ws's `bufferedAmount`, which is all in the socket when frames are
   * written raw (see `rawSocket`), and with direct writes what libuv holds of one (transport/direct-write.ts).
   */
  get queuedBytes(): number {
    return this.rawSocket === undefined ? this.ws.bufferedAmount : queuedBytes(this.rawSocket, this.rawHandle);
  }

  /** False when nothing may be written: closing, or just closed as a slow consumer (counted and logged here, once). */
  private admitsWrite(): boolean {
    if (!this.isOpen) return false;
    const buffered = this.queuedBytes;
    if (buffered > this.sendBufferMaxBytes) {
      // The client does not read as fast as we write: close it rather than let its buffer grow without bound.
      this.metrics.backpressure(this.app.id, 'disconnected');
      this.log(
        'warn',
        { event: 'slow_consumer', buffered_bytes: buffered, limit_bytes: this.sendBufferMaxBytes },
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
   * Writes one catalog event with this connection's ids first, as a pino child's bindings would put them, but without a
   * child: a child logger per connection (its bindings serialised, ~0.7 KiB, made again after a GC when held weakly) cost
   * 10.8 µs per connection's three lines against 8.5 µs for the ids copied into each line (bench/README.md). A level the
   * logger drops costs a comparison.
   */
  log(level: LogLevel, line: LogLine, msg: string): void {
    if (!this.logger.isLevelEnabled(level)) return;
    logEvent(this.logger, level, Object.assign({}, this.logBindings, line), msg);
  }

  /**
   * The connection was accepted: counted, and logged with `fields` (built only when the line is written: they can cost a
   * getpeername call and an object per connection).
   */
  opened(fields: () => Record<string, unknown>): void {
    this.metrics.connectionOpened(this.app.id);
    if (this.logsInfo) this.log('info', { event: 'connection_opened', ...fields() }, 'connection opened');
  }

  /** A frame of `kind` and `bytes` bytes was decoded and goes to its handler: counted, and logged at debug (message traffic). */
  frameDecoded(kind: ReceivedKind, bytes: number): void {
    this.metrics.messageReceived(this.app.id, kind, bytes);
    if (this.logger.isLevelEnabled('debug')) this.log('debug', { event: 'message_received', kind, bytes }, 'frame received');
  }

  /** Subscribed to `channel`: counted, logged, and a channel the backend signed authorizes the connection (4009's rule). */
  subscribed(channel: string, kind: ChannelKind): void {
    this.metrics.subscription(this.app.id, kind.type, 'ok');
    // A subscription the app's backend signed authorizes the connection, as Pusher counts it (APP_USER_AUTHENTICATION_REQUIRED).
    if (kind.requiresAuth) this.authorizedBySubscription = true;
    if (this.logsSubscriptionChange()) this.log('info', { event: 'subscribed', channel, channel_type: kind.type }, 'subscribed');
  }

  /**
   * Subscribed again to a channel it holds or is joining: answered again (as Pusher answers it), but nothing new is held,
   * so it is neither counted as a subscription nor logged — a client may repeat it as fast as its frame budget lets it,
   * and its frame is already counted and logged at debug as every frame is. As unsubscribing from a channel it does not
   * hold. Its signature was checked as the first's was, so it authorizes the connection just the same.
   */
  resubscribed(kind: ChannelKind): void {
    if (kind.requiresAuth) this.authorizedBySubscription = true;
  }

  /** Unsubscribed from `channel` at its own request (a close leaves its channels without a line each). */
  unsubscribed(channel: string, kind: ChannelKind): void {
    if (this.logsSubscriptionChange()) this.log('info', { event: 'unsubscribed', channel, channel_type: kind.type }, 'unsubscribed');
  }

  /**
   * Whether a `subscribed` / `unsubscribed` line is written: at most LOGGED_SUBSCRIPTION_CHANGES_PER_MINUTE in a minute
   * (the first minute from the open, the next from the first line past a full one); at the first one past them a
   * `subscriptions_unlogged` warning says the rest of that minute's are not. Below the bound no clock is read.
   */
  private logsSubscriptionChange(): boolean {
    if (!this.logsInfo) return false;
    if (++this.subscriptionLines <= LOGGED_SUBSCRIPTION_CHANGES_PER_MINUTE) return true;
    const now = performance.now();
    if (now - this.subscriptionLinesSince >= 60_000) {
      this.subscriptionLinesSince = now;
      this.subscriptionLines = 1;
      return true;
    }
    if (this.subscriptionLines === LOGGED_SUBSCRIPTION_CHANGES_PER_MINUTE + 1) {
      this.log(
        'warn',
        { event: 'subscriptions_unlogged', limit_per_minute: LOGGED_SUBSCRIPTION_CHANGES_PER_MINUTE },
        'more subscribes and unsubscribes this minute than are logged; the rest of the minute\'s are counted, not logged',
      );
    }
    return false;
  }

  /**
   * A handler threw while processing this client's frame: the server's fault, not the client's, so it is logged as
   * `handler_failed` at error level (inside the frame's span, so the line carries its trace id) and ends the span with
   * the error. Never counted as a rejected frame.
   */
  handlerFailed(err: unknown, span: Span): void {
    withSpan(span, () => this.log('error', { event: 'handler_failed', err }, 'handler failed'));
    endWithError(span, err);
  }

  /**
   * Rejects one client frame without closing: counts it with its reason (and as an invalid frame, and against its rate
   * limit, when the rejection says so), logs it within the connection's cap, notes it on the active span, and answers
   * `pusher:error`. Every rejected client frame goes through here.
   */
  reject(rejection: Rejection): void {
    const { reason, message, code = null, channel, frameBytes, rateLimit } = rejection;
    if (frameBytes !== undefined) this.metrics.messageReceived(this.app.id, 'invalid', frameBytes);
    if (rateLimit !== undefined) this.metrics.rateLimited(this.app.id, rateLimit);
    this.metrics.messageError(this.app.id, reason);
    const logAs = rejection.logAs ?? (rateLimit !== undefined || reason === 'rate_limited' ? 'rate_limited' : 'message_rejected');
    this.logRejection(logAs, { reason, code }, message);
    if (rejection.answer === undefined) {
      this.send(encodeError(message, code, channel), 'protocol');
    } else if (this.sendTextFrame(rejection.answer)) {
      this.metrics.messagesSent(this.app.id, 'protocol', rejection.answer.payload.length, 1);
    }
  }

  /**
   * Logs one refusal of this client's input, whatever its path (rejected frame, failed subscription, socket-level error):
   * a flooding client must not flood the logs, so the metric counts every refusal and the log tells the first ones. The
   * active span (a frame's `process` span) gets an event named after the log event, whatever the cap.
   */
  logRejection(event: RejectionLogEvent, fields: { reason: string } & Record<string, unknown>, message: string): void {
    addSpanEvent(event, fields.reason);
    this.rejections++;
    if (this.rejections <= LOGGED_REJECTIONS) {
      this.log('info', { event, ...fields }, message);
    } else if (this.rejections === LOGGED_REJECTIONS + 1) {
      // The first refusal not logged, by its own event and reason: a refused subscribe's reason ('invalid') read as a
      // frame's under `message_rejected` (a review).
      this.log(
        'warn',
        { event: 'message_rejected', first_unlogged: event, first_unlogged_reason: fields.reason },
        'further rejections on this connection are counted, not logged',
      );
    }
  }

  /**
   * The socket itself failed: a frame ws refused (invalid UTF-8: 1007, over the hard size limit: 1009, a message in too
   * many parts: 1008, other protocol violations: 1002), or the TCP connection broke. A client's fault, never a server
   * error: counted with its reason, logged within the rejection cap, and the close code ws sent is the one
   * `connection_closed` reports.
   */
  socketFailed(err: Error & { code?: string }): void {
    const code = err.code ?? 'socket_error';
    this.failedWith ??= code;
    if (!code.startsWith('WS_ERR')) {
      // A reset or a broken pipe: the peer went away. `connection_closed` tells it (reason `error`, `error` field).
      this.closedFor ??= 'error';
      return;
    }
    const known = WS_ERROR_CLOSE[code] ?? { code: Errors.CLOSE_INVALID_FRAME.code, reason: 'invalid_frame' as const };
    this.metrics.messageError(this.app.id, known.reason);
    this.logRejection('message_rejected', { reason: known.reason, code: known.code, error: code }, err.message);
    if (this.closedFor === undefined) {
      this.closedFor = 'protocol_error';
      this.closedWith = known.code;
    }
    // ws has sent its close frame and stopped reading; bound the wait for the peer as `close` does.
    setTimeout(() => this.ws.terminate(), CLOSE_HANDSHAKE_MS).unref();
  }

  /**
   * Whether the frame budget still pays for an answer charged to it (`answerCharged`); if not, the frame that asked is
   * refused as one past the budget is: 4301, counted `frame_rate_limited`, and the socket held until the window ends.
   */
  admitsChargedAnswer(now: number): boolean {
    if (this.withinFrameBudget(now)) return true;
    this.holdInbound(now);
    const error = Errors.FRAME_RATE_LIMITED;
    this.reject({ reason: 'frame_rate_limited', message: error.format(this.frames.limit), code: error.code, rateLimit: 'frames' });
    return false;
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
    if (this.closedFor !== undefined) return;
    if (this.ws.readyState !== WS_OPEN) {
      // Not open and no close of the server's: the client's close frame came in first (ws answered it), and the wire
      // carries its code. `finish` records it as the client's; the socket goes now instead of at ws's close timeout.
      this.ws.terminate();
      return;
    }
    this.closedFor = reason;
    this.closedWith = code;
    const frame = encodeError(message, code);
    this.ws.send(frame);
    this.metrics.messagesSent(this.app.id, 'protocol', Buffer.byteLength(frame), 1);
    this.ws.close(code, message.slice(0, 120));
    // The close frame queues behind whatever is buffered; a peer that does not read (a slow consumer) would hold the
    // socket open until ws's own 30 s timeout. Bound the handshake.
    setTimeout(() => this.ws.terminate(), CLOSE_HANDSHAKE_MS).unref();
  }

  /**
   * Called exactly once when the socket is gone (close event, error, or reset). Records the close and tells the hub.
   * `code` is what the peer or the server sent on the close frame (1006 for an abnormal close).
   */
  finish(code: number): void {
    if (this.finished) return;
    this.finished = true;
    this.closedFor ??= code === 1006 ? 'error' : 'client_close';
    // A close the server started keeps the code it sent; otherwise the code is the one on the wire (1006: none).
    if (this.closedWith === 0) this.closedWith = code;
    const durationMs = performance.now() - this.openedAt;
    this.metrics.connectionClosed(this.app.id, this.closedFor, durationMs / 1000);
    this.onClosed(this);
    if (!this.logsInfo) return;
    this.log(
      'info',
      {
        event: 'connection_closed',
        reason: this.closedFor,
        code: this.closedWith,
        duration_ms: durationMs,
        messages_in: this.messagesIn,
        messages_out: this.framesOut,
        bytes_in: this.bytesIn,
        bytes_out: this.sentBytes,
        ...(this.failedWith === undefined ? {} : { error: this.failedWith }),
      },
      'connection closed',
    );
  }
}
