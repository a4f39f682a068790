/**
 * Everything the load clients saw, in one place: frames sent and received by the kinds Beacon's metrics use
 * (docs/telemetry.md), connection outcomes and close codes, load-message deliveries, error reasons, and two HDR
 * histograms (end-to-end latency and connect time, both in microseconds). The audit compares this with the server.
 */
import { build, type Histogram } from 'hdr-histogram-js';

/** Kinds of client → server frames (`websocket_messages_received_total{kind}`). */
export type ClientFrameKind = 'subscribe' | 'unsubscribe' | 'ping' | 'pong' | 'client_event' | 'signin' | 'invalid';
/** Kinds of server → client frames (`websocket_messages_sent_total{kind}`). */
export type ServerFrameKind = 'channel_event' | 'client_event' | 'presence' | 'protocol';

/** The server's kind of a frame it sent, as docs/telemetry.md defines the kinds. */
export function serverFrameKind(event: string, channel: string | undefined): ServerFrameKind {
  if (event === 'pusher_internal:member_added' || event === 'pusher_internal:member_removed') return 'presence';
  if (event === 'pusher_internal:subscription_succeeded' && channel?.startsWith('presence-') === true) return 'presence';
  if (event.startsWith('pusher:') || event.startsWith('pusher_internal:')) return 'protocol';
  if (event.startsWith('client-')) return 'client_event';
  return 'channel_event';
}

/** An HDR histogram of microseconds from 1 µs to 10 minutes, 3 significant digits. */
function microsecondHistogram(): Histogram {
  return build({ lowestDiscernibleValue: 1, highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: 3 });
}

/** Adds `n` to `map[key]`. */
export function bump<K>(map: Map<K, number>, key: K, n = 1): void {
  map.set(key, (map.get(key) ?? 0) + n);
}

/** The counts of one run, shared by every socket and the HTTP publisher. */
export class Tally {
  /** Connections attempted (WebSocket opened or tried). */
  attempted = 0;
  /** `pusher:connection_established` received. */
  established = 0;
  /** Subscribed (subscription_succeeded received). */
  subscribed = 0;
  /** Never established, or established but never subscribed. */
  failed = 0;
  /** Established connections whose socket has closed since. */
  closedAfterEstablished = 0;
  /** Connections refused or lost before `connection_established`. */
  closedBeforeEstablished = 0;
  /**
   * Of those, the ones the server refused with an answer: a `pusher:error` frame or a 4xxx close before
   * `connection_established`, or an HTTP status instead of the upgrade (`websocket_connections_rejected_total`).
   */
  refused = 0;
  /**
   * Frames read on sockets before `connection_established` (the refusal's `pusher:error`): kept out of `framesReceived`,
   * because the server counts a refusal in `websocket_connections_rejected_total`, not as a frame of a connection.
   */
  framesOnRefusedSockets = 0;
  /** Subscribed connections that closed during the run without the tool closing them, by close code (1006: lost). */
  readonly closedDuringRun = new Map<number, number>();
  /** Close codes seen by the clients (1006: no close frame). */
  readonly closeCodes = new Map<number, number>();
  readonly framesSent = new Map<ClientFrameKind, number>();
  readonly framesReceived = new Map<ServerFrameKind, number>();
  /** Client events the server answered with `pusher:error` (rate limit, not enabled, …): not published. */
  clientEventsRejected = 0;
  /**
   * Of those, the refusals past the connection's frame budget (Beacon's `FRAME_RATE_LIMIT_PER_SECOND`, "Frame rate limit
   * …"). The server refuses any frame so, before reading it (counted received as `kind="invalid"`), and the answer does
   * not say which: taken as a client event's, one may have been a pong's (tools/load/audit.ts reads them as a range).
   */
  framesOverBudget = 0;
  /** The deliveries no longer expected for those refusals (each taken as a client event's): owed after all for a pong's. */
  deliveriesUnexpectedOverBudget = 0;
  /** HTTP publishes answered 200. */
  httpPublished = 0;
  /** HTTP publishes attempted. */
  httpAttempted = 0;
  /** HTTP publishes answered with anything but 2xx (refused: never published). */
  httpRefused = 0;
  /** Those refusals by HTTP status. */
  readonly httpRefusedStatuses = new Map<number, number>();
  /** HTTP publishes that got no answer at all (refused connection, reset, timeout), by cause. */
  readonly httpNoAnswer = new Map<string, number>();
  /** The server's websocket_events_published_total for the app before the run (with --metrics), for the drain. */
  publishedBefore = 0;
  /**
   * HTTP publishes that got no answer (timeout, reset) by sequence number, with their recipients then: the outcome is
   * unknown until one of their deliveries arrives, which proves the server accepted them.
   */
  readonly unanswered = new Map<number, number>();
  /** Unanswered HTTP publishes whose deliveries arrived: accepted after all. */
  httpAcceptedUnanswered = 0;
  /** Sequence numbers of load messages delivered at least once (a delivery may beat its own HTTP answer). */
  private readonly seen = new Set<number>();
  /** Load messages sent (client events or HTTP publishes). */
  messagesSent = 0;
  /** Deliveries the clients should see: for each accepted message, the sockets subscribed to its channel then. */
  expectedDeliveries = 0;
  /** Load messages received. */
  deliveries = 0;
  /**
   * Events received on the run's channels that are not this run's load messages (another run's, or anyone's publish):
   * not deliveries, but a sign that the run is not the server's only load.
   */
  foreignMessages = 0;
  /** Sends skipped because the generator could not keep up (HTTP requests in flight at the limit). */
  skipped = 0;
  /** Client events due on a socket that was no longer open (closed during the run): not sent. */
  skippedSocketClosed = 0;
  /**
   * `pusher:error` frames answering this run's load (client events refused: not enabled, rate limited, …), by code; the
   * probe's answer and the errors that come with a close (4000–4299, counted with the close) are not in it.
   */
  readonly pusherErrors = new Map<string, number>();
  /** Error reasons and their counts: close codes, pusher:error messages, HTTP statuses, network errors. */
  readonly errors = new Map<string, number>();
  readonly latency: Histogram = microsecondHistogram();
  readonly connectTime: Histogram = microsecondHistogram();

  sent(kind: ClientFrameKind): void {
    bump(this.framesSent, kind);
  }

  received(kind: ServerFrameKind): void {
    bump(this.framesReceived, kind);
  }

  error(reason: string): void {
    bump(this.errors, reason);
  }

  /** Records one delivery of load message `seq`, `micros` after it was sent. */
  delivered(seq: number, micros: number): void {
    this.deliveries++;
    this.seen.add(seq);
    const recipients = this.unanswered.get(seq);
    if (recipients !== undefined) {
      this.unanswered.delete(seq);
      this.httpAcceptedUnanswered++;
      this.expectedDeliveries += recipients;
    }
    this.latency.recordValue(Math.max(1, Math.round(micros)));
  }

  /** An HTTP publish of `seq` got no answer: accepted if one of its deliveries arrived already, else pending. */
  unansweredPublish(seq: number, recipients: number): void {
    if (this.seen.has(seq)) {
      this.httpAcceptedUnanswered++;
      this.expectedDeliveries += recipients;
    } else if (recipients > 0) {
      this.unanswered.set(seq, recipients);
    }
  }

  /** HTTP publishes that got no answer and none of whose deliveries arrived: their outcome is unknown. */
  httpUnanswered(): number {
    let n = 0;
    for (const v of this.httpNoAnswer.values()) n += v;
    return n - this.httpAcceptedUnanswered;
  }

  /** Sum of every error reason's count. */
  errorCount(): number {
    let n = 0;
    for (const v of this.errors.values()) n += v;
    return n;
  }
}
