/**
 * Sends each app's webhooks (reference "Webhooks"), to every webhook of the app that takes the event (its event types and
 * channel-name filter, webhook-route.ts). Per webhook: events within `batchMs` go in one signed POST of at most
 * `maxBatchEvents` (in a cluster, up to the events of its first occupancy or presence change's millisecond: `pump`); a non-2xx answer or a network error is retried with exponential back-off and jitter (limits/backoff.ts) until `retryDeadlineMs`.
 * Per app, before any routing: `channel_vacated` and `member_removed` wait `vacateDelayMs` and are dropped, with the
 * `channel_occupied` / `member_added` that cancels them, when the channel is re-occupied or the user comes back in time
 * (as Pusher does) — one decision for the app, so no webhook sees a flap another does not. In a cluster the occupy is sent
 * after all when another node's vacate went out while this one held its own (`vacateSentElsewhere`).
 *
 * Memory is bounded: at most `maxPendingEvents` per webhook (waiting or being delivered), client events only while they
 * all weigh at most `maxPendingBytes` (`eventBytes`: a client event's data is most of it), and as many held back per app;
 * past that new events are counted `failed` and the episode is logged once. Every event a webhook takes ends counted
 * exactly once for that webhook as `ok` or `failed`. What waits meanwhile is read from the queues at scrape time
 * (`backlog()`, `held()`: `websocket_webhook_pending_events`, `websocket_webhook_held_events`), never counted per event.
 *
 * Delivery runs in the root OpenTelemetry context: the timers would otherwise inherit whichever client frame's span was
 * active when they were armed, and a batch belongs to no single client.
 */
import { setMaxListeners } from 'node:events';
import { context, ROOT_CONTEXT, type Span } from '@opentelemetry/api';
import type { AppStore } from '../apps/app-store.js';
import type { Config } from '../config.js';
import { abortAfter } from '../lifecycle/abort-after.js';
import { backoffCeilingMs, jitteredBackoffMs } from '../limits/backoff.js';
import { isUserChannel } from '../protocol/channel-name.js';
import { webhookSignature } from '../protocol/signatures.js';
import type { Logger } from '../telemetry/logger.js';
import { logEvent } from '../telemetry/log-events.js';
import type { Metrics, WebhookBacklog } from '../telemetry/metrics.js';
import { traceparentOf, withSpan } from '../telemetry/tracing.js';
import type { WebhookEvent } from './webhook-event.js';
import { webhookAccepts, webhookTakes } from './webhook-route.js';
import type { WebhookSink } from './webhook-sink.js';
import { AppWebhooks, eventBytes, pairKey, type WebhookQueue } from './webhook-queue.js';
import { postWebhook, type WebhookPost } from './webhook-post.js';
import { endWebhookSpan, failWebhookSpan, startWebhookSpan, webhookSpanName } from './webhook-span.js';

/** Timings and limits; the configurable ones come from the configuration (config.ts holds their defaults). */
export interface WebhookSenderLimits {
  /** How long the first event of a batch waits for others. */
  batchMs: number;
  maxBatchEvents: number;
  /** Per webhook: waiting + being delivered; and per app: held back (vacate delay). */
  maxPendingEvents: number;
  /** Per webhook: the size (`eventBytes`) of the events waiting and being delivered. */
  maxPendingBytes: number;
  /** How long `channel_vacated` / `member_removed` are held back; 0 sends them at once. */
  vacateDelayMs: number;
  /** First back-off; doubled on every retry up to `retryMaxMs`. */
  retryBaseMs: number;
  retryMaxMs: number;
  /** A batch not delivered this long after its first attempt is given up. */
  retryDeadlineMs: number;
  requestTimeoutMs: number;
  /** Requests in flight (or waiting to retry) per webhook; later batches wait their turn. */
  maxConcurrentRequests: number;
  /** How long `close()` waits for pending batches before abandoning them. */
  closeTimeoutMs: number;
}

/** Requests in flight per webhook: enough to hide one slow answer, few enough not to flood a receiver. */
const MAX_CONCURRENT_REQUESTS = 4;

/** The sender's limits as configured (`WEBHOOK_*`); the close timeout is the shutdown's to give. */
export function webhookLimits(
  config: Pick<
    Config,
    | 'webhookBatchMs'
    | 'webhookBatchMaxEvents'
    | 'webhookMaxPendingEvents'
    | 'webhookMaxPendingBytes'
    | 'webhookVacateDelayMs'
    | 'webhookRetryBaseMs'
    | 'webhookRetryMaxMs'
    | 'webhookRetryDeadlineMs'
    | 'webhookRequestTimeoutMs'
  >,
): Omit<WebhookSenderLimits, 'closeTimeoutMs'> {
  return {
    batchMs: config.webhookBatchMs,
    maxBatchEvents: config.webhookBatchMaxEvents,
    maxPendingEvents: config.webhookMaxPendingEvents,
    maxPendingBytes: config.webhookMaxPendingBytes,
    vacateDelayMs: config.webhookVacateDelayMs,
    retryBaseMs: config.webhookRetryBaseMs,
    retryMaxMs: config.webhookRetryMaxMs,
    retryDeadlineMs: config.webhookRetryDeadlineMs,
    requestTimeoutMs: config.webhookRequestTimeoutMs,
    maxConcurrentRequests: MAX_CONCURRENT_REQUESTS,
  };
}

/**
 * How long a channel's `cache_miss` webhook stands for the misses after it: Pusher de-duplicates the webhook "when multiple
 * clients are subscribed to an empty channel", so a backend that fills the cache on a miss is asked once, not once per
 * subscriber of a burst. Each subscriber still gets `pusher:cache_miss`; a backend that did not fill the cache is asked
 * again by the first miss after the interval. Per node: each node of a cluster asks at most once per interval.
 */
export const CACHE_MISS_WEBHOOK_INTERVAL_MS = 10_000;
/** Channels an app remembers a recent `cache_miss` of; past it the oldest is forgotten (its next miss is sent again). */
const CACHE_MISSES_REMEMBERED = 1000;

/** The events whose order across the nodes of a cluster the receiver's view of occupancy and presence rests on. */
const ORDERED_EVENTS: ReadonlySet<string> = new Set(['channel_occupied', 'channel_vacated', 'member_added', 'member_removed']);

export interface WebhookSenderDeps extends WebhookSenderLimits {
  /** Each webhook of each app gets a queue; the set is fixed for the life of the process (AppStore contract). */
  apps: AppStore;
  metrics: Pick<Metrics, 'webhook' | 'webhookConfigured'>;
  logger: Logger;
  /** How a request is sent (tests inject one); node:http / node:https by default (webhook-post.ts says why not fetch). */
  post?: WebhookPost;
  /** Unix milliseconds, for `time_ms` and the cache-miss interval. */
  now?: () => number;
  /**
   * Milliseconds on a clock that only goes forward (`performance.now()`), for the retry deadline: on the wall clock a step
   * forward (a VM resumed) gave a failing batch up at once, its events lost (a probe).
   */
  elapsed?: () => number;
  /** The jitter's source of [0, 1) numbers (limits/backoff.ts); injectable so tests can pin the delays. */
  random?: () => number;
  /**
   * Asked when a held `channel_vacated` / `member_removed` has waited its delay: whether it still holds (the channel is
   * still empty, the user still gone). False drops it: the channel was occupied again, or the user came back, on another
   * node of a cluster, whose `channel_occupied` / `member_added` nothing here could cancel and went out already. A
   * rejection (the engine cannot say) sends it. Without it every held event is sent when its delay ends.
   */
  stillTrue?: (appId: string, event: WebhookEvent) => Promise<boolean>;
  /**
   * Asked when a `channel_occupied` / `member_added` cancels this node's own held `channel_vacated` / `member_removed`:
   * whether another node of a cluster sent that vacate (or removal) meanwhile — its own held one, which the cluster said
   * still true when its delay ended. True sends the occupy after all (the receiver's last word was that vacate); false
   * drops both, as a flap on one node is. A rejection sends it (twice is the lesser wrong). Without it both are dropped.
   */
  vacateSentElsewhere?: (appId: string, event: WebhookEvent) => Promise<boolean>;
  /** Told of each `channel_occupied` / `member_added` routed (`vacateSentElsewhere`: it is the receiver's last word now). */
  occupySent?: (appId: string, event: WebhookEvent) => void;
}

export interface WebhookSender extends WebhookSink {
  /**
   * Sends what is pending (delayed events at once), waits at most `closeTimeoutMs` — or `waitMs` if that is less: what the
   * shutdown has left to give —, then abandons the rest as failed, counted and logged.
   */
  close(waitMs?: number): Promise<void>;
  /** Every configured webhook's events queued and in flight, zeros included (read at scrape time). */
  backlog(): WebhookBacklog[];
  /** Per app with a webhook, the events held back for the vacate delay, zeros included (read at scrape time). */
  held(): [appId: string, count: number][];
}

/** How one attempt ended. */
interface Attempt {
  ok: boolean;
  /** HTTP status; 0 when no answer came. */
  status: number;
  /** The receiver's `Retry-After` (429, 503), in ms. */
  retryAfterMs: number | undefined;
  error: string | undefined;
  span: Span;
}

export function createWebhookSender(deps: WebhookSenderDeps): WebhookSender {
  const { apps, metrics, logger } = deps;
  const limits: WebhookSenderLimits = deps;
  const send = deps.post ?? postWebhook;
  const now = deps.now ?? Date.now;
  const elapsed = deps.elapsed ?? ((): number => performance.now());
  const random = deps.random ?? Math.random;

  const byApp = new Map<string, AppWebhooks>();
  for (const app of apps.all()) if (app.webhooks.length > 0) byApp.set(app.id, new AppWebhooks(app));
  for (const app of apps.all()) app.webhooks.forEach((w, index) => metrics.webhookConfigured(app.id, index, w.eventTypes));
  const allQueues = [...byApp.values()].flatMap((a) => a.queues);

  /** Aborted when `close()` gives up waiting: in-flight requests and back-off sleeps end at once. */
  const stop = new AbortController();
  // One listener per in-flight request or sleep; their number is bounded by webhooks × maxConcurrentRequests.
  setMaxListeners(0, stop.signal);
  let closing = false;
  const deliveries = new Set<Promise<void>>();

  function counted(q: WebhookQueue, events: readonly WebhookEvent[], result: 'ok' | 'retried' | 'failed'): void {
    for (const e of events) metrics.webhook(e.name, result, q.app.id, q.index);
  }

  function refuse(q: WebhookQueue, event: WebhookEvent): void {
    metrics.webhook(event.name, 'failed', q.app.id, q.index);
    if (q.overflowing) return;
    q.overflowing = true;
    logEvent(
      logger,
      'warn',
      {
        event: 'webhook_failed',
        app_id: q.app.id,
        webhook: q.index,
        reason: 'queue_full',
        max_pending_events: limits.maxPendingEvents,
        max_pending_bytes: limits.maxPendingBytes,
      },
      'webhook queue full; new events are dropped until it drains',
    );
  }

  /**
   * No room to hold back one more vacate or removal: it is sent without its delay (routed, into the queue's own bound).
   * Dropped, the receiver kept the channel occupied (or the member present) for good, and a client subscribing and
   * unsubscribing distinct channels could fill the hold and have every later vacate of the app lost (a review).
   */
  function heldFull(a: AppWebhooks): void {
    if (a.overflowing) return;
    a.overflowing = true;
    logEvent(
      logger,
      'warn',
      { event: 'webhook_held_full', app_id: a.app.id, max_pending_events: limits.maxPendingEvents },
      'too many webhook events held back for the vacate delay; new vacates and removals are sent without it until they drain',
    );
  }

  /** Other nodes send this app's webhooks too (a cluster engine: `vacateSentElsewhere` is given). */
  const clustered = deps.vacateSentElsewhere !== undefined;

  /**
   * Whether a `cache_miss` of `channel` is the first of its interval (`CACHE_MISS_WEBHOOK_INTERVAL_MS`), and so sent;
   * remembered only where a webhook takes it. What is remembered is bounded: misses older than the interval are
   * forgotten as new ones come, and at most `CACHE_MISSES_REMEMBERED` per app.
   */
  function firstMissOfInterval(a: AppWebhooks, event: WebhookEvent): boolean {
    if (!a.queues.some((q) => webhookAccepts(q.webhook, event))) return true;
    const misses = a.cacheMisses;
    const at = now();
    const last = misses.get(event.channel);
    // A clock set back leaves times ahead of `at`: those stand for nothing (the miss is sent), rather than for an hour.
    if (last !== undefined && at >= last && at - last < CACHE_MISS_WEBHOOK_INTERVAL_MS) return false;
    // Kept oldest first: a channel sent again moves to the end.
    misses.delete(event.channel);
    misses.set(event.channel, at);
    for (const [channel, sentAt] of misses) {
      if (at >= sentAt && at - sentAt < CACHE_MISS_WEBHOOK_INTERVAL_MS && misses.size <= CACHE_MISSES_REMEMBERED) break;
      misses.delete(channel);
    }
    return true;
  }

  /** Hands an event that survived the vacate delay to every webhook that takes it. */
  function route(a: AppWebhooks, event: WebhookEvent): void {
    for (const q of a.queues) {
      if (!webhookAccepts(q.webhook, event)) continue;
      if (stop.signal.aborted) {
        metrics.webhook(event.name, 'failed', a.app.id, q.index);
        continue;
      }
      // The size bound is for client events, whose data makes them large: the others are bounded by their number (10 000
      // of ~150 bytes), and refused for room that big client events took, the receiver's view of occupancy and presence
      // went wrong (a review: 439 of 600 occupied/vacated refused behind 750 client events of 90 kB).
      const bytes = eventBytes(event);
      const full =
        q.pending() >= limits.maxPendingEvents || (event.name === 'client_event' && q.pendingBytes() + bytes > limits.maxPendingBytes);
      if (full) refuse(q, event);
      else enqueue(q, event, bytes);
    }
  }

  /**
   * Routes a `channel_occupied` / `member_added`, and tells the cluster (`occupySent`): a vacate sent before it is no
   * longer the receiver's last word, so a node whose own held vacate this occupy's channel cancels later drops its occupy
   * as a flap on one node (`vacateSentElsewhere` answers false).
   */
  function routeOccupy(a: AppWebhooks, event: WebhookEvent): void {
    route(a, event);
    if (deps.occupySent === undefined) return;
    const vacate: WebhookEvent =
      event.name === 'member_added' ? { name: 'member_removed', channel: event.channel, user_id: event.user_id } : { name: 'channel_vacated', channel: event.channel };
    // Only where a vacate would be held, as the mark is only set there.
    if (holdMatters(a, vacate)) deps.occupySent(a.app.id, event);
  }

  /** Whether some webhook of the app takes `event` or the event that would cancel it: else holding it back is pointless. */
  function holdMatters(a: AppWebhooks, event: WebhookEvent): boolean {
    const pair = event.name === 'channel_vacated' ? 'channel_occupied' : 'member_added';
    return a.queues.some((q) => webhookAccepts(q.webhook, event) || webhookTakes(q.webhook, pair, event.channel));
  }

  function enqueue(q: WebhookQueue, event: WebhookEvent, bytes: number): void {
    q.ready.push(event);
    q.readyAt.push(now());
    q.readyBytes += bytes;
    if (q.ready.length >= limits.maxBatchEvents || closing) pump(q);
    else if (q.flushTimer === undefined) q.flushTimer = setTimeout(flushTimerFired, limits.batchMs, q);
  }

  function flushTimerFired(q: WebhookQueue): void {
    q.flushTimer = undefined;
    pump(q);
  }

  /** Starts as many batches as the concurrency allows; after `stop`, whatever still waits is failed instead. */
  function pump(q: WebhookQueue): void {
    if (q.flushTimer !== undefined) {
      clearTimeout(q.flushTimer);
      q.flushTimer = undefined;
    }
    if (stop.signal.aborted) {
      if (q.ready.length > 0) {
        q.readyBytes = 0;
        q.readyAt.length = 0;
        abandon(q, q.ready.splice(0), 0, 0, 'shutting down', undefined);
      }
      return;
    }
    while (q.ready.length > 0 && q.requests < limits.maxConcurrentRequests) {
      // In a cluster a batch ends with the events routed in the same millisecond as its first occupancy or presence
      // change: its `time_ms` is that change's own routing time, so the receiver orders it among other nodes' by when it
      // happened (deliver() says why). Stamped by a later event of the batch instead, a node's vacate came after another
      // node's occupy that followed it (a probe: the receiver kept the channel vacated while a subscription_count stream
      // on the first node kept its batch open). A burst's changes of one millisecond share a request: one each would push
      // `time_ms`, a millisecond per request, ahead of when they happened. One node alone needs no such cut: its requests
      // are in the order of its events.
      let take = Math.min(q.ready.length, limits.maxBatchEvents);
      if (clustered) {
        let first = 0;
        while (first < take && !ORDERED_EVENTS.has(q.ready[first]!.name)) first++;
        if (first < take) {
          let end = first + 1;
          while (end < take && q.readyAt[end] === q.readyAt[first]) end++;
          take = end;
        }
      }
      const batch = q.ready.splice(0, take);
      const createdMs = q.readyAt.splice(0, batch.length).at(-1)!;
      let bytes = 0;
      for (const event of batch) bytes += eventBytes(event);
      q.requests++;
      q.deliveringEvents += batch.length;
      q.readyBytes -= bytes;
      q.deliveringBytes += bytes;
      const delivery = context.with(ROOT_CONTEXT, () => deliver(q, batch, createdMs)).catch((err: unknown) => {
        // deliver() handles every failure it knows of; this is a bug, logged rather than left as an unhandled rejection.
        const line = { event: 'webhook_failed', app_id: q.app.id, webhook: q.index, error: String(err) } as const;
        logEvent(logger, 'error', line, 'webhook delivery crashed');
      });
      deliveries.add(delivery);
      void delivery.finally(() => {
        deliveries.delete(delivery);
        q.requests--;
        q.deliveringEvents -= batch.length;
        q.deliveringBytes -= bytes;
        if (q.overflowing && q.pending() <= limits.maxPendingEvents / 2 && q.pendingBytes() <= limits.maxPendingBytes / 2) {
          q.overflowing = false;
        }
        if (q.ready.length > 0) pump(q);
      });
    }
  }

  /**
   * A held event's delay is over, or the sender closes: sent, unless `stillTrue` says it no longer holds (a member back on
   * another node; sent when the engine cannot say). It stays held while that is asked, so a `channel_occupied` /
   * `member_added` emitted meanwhile still cancels it. Its timer is stopped (at close it has not fired).
   */
  function settleHeld(a: AppWebhooks, key: string): Promise<void> {
    const held = a.delayed.get(key);
    if (held === undefined) return Promise.resolve();
    clearTimeout(held.timer);
    if (deps.stillTrue === undefined) {
      release(a, key);
      return Promise.resolve();
    }
    const current = (): boolean => a.delayed.get(key) === held;
    return deps.stillTrue(a.app.id, held.event).then(
      (still) => {
        if (!current()) return;
        if (still) release(a, key);
        else forget(a, key);
      },
      () => {
        if (current()) release(a, key);
      },
    );
  }

  function expire(a: AppWebhooks, key: string): void {
    void settleHeld(a, key);
  }

  /** Drops a held event (cancelled, or no longer true). */
  function forget(a: AppWebhooks, key: string): void {
    const held = a.delayed.get(key);
    if (held === undefined) return;
    clearTimeout(held.timer);
    a.delayed.delete(key);
    if (a.overflowing && a.delayed.size <= limits.maxPendingEvents / 2) a.overflowing = false;
  }

  /** Sends a held event now. */
  function release(a: AppWebhooks, key: string): void {
    const held = a.delayed.get(key);
    if (held === undefined) return;
    forget(a, key);
    route(a, held.event);
  }

  /**
   * One batch: encoded and signed once, posted until it succeeds, the deadline passes or the sender stops. `createdMs`:
   * when its last event was routed.
   */
  async function deliver(q: WebhookQueue, batch: WebhookEvent[], createdMs: number): Promise<void> {
    // Receivers order overlapping requests by `time_ms` (as with Pusher): so it strictly increases across a webhook's
    // batches, in the order they were taken. Stamped with the clock alone, batches taken in the same millisecond (up to
    // maxConcurrentRequests start together when a backlog drains) tied, and a tie sorted a `channel_vacated` before its
    // `channel_occupied` as often as not. It is when the batch's last event was routed, not when the batch was taken:
    // across the nodes of a cluster, each batching on its own timer, a node's occupy routed after another node's vacate
    // was stamped before it when its batch was taken first (a probe: the receiver kept the channel vacated).
    const timeMs = Math.max(createdMs, q.lastTimeMs + 1);
    q.lastTimeMs = timeMs;
    const body = JSON.stringify({ time_ms: timeMs, events: batch });
    const headers: Record<string, string> = {
      // The webhook's own headers first: the signed ones below are Beacon's (config refuses them in `headers` anyway).
      ...q.webhook.headers,
      'content-type': 'application/json',
      'x-pusher-key': q.app.key,
      'x-pusher-signature': webhookSignature(q.app.secret, body),
    };
    const spanName = webhookSpanName(batch);
    const startedAt = elapsed();
    let attempts = 0;
    for (;;) {
      attempts++;
      const attempt = await post(q, body, headers, spanName, batch.length, attempts);
      if (attempt.ok) {
        counted(q, batch, 'ok');
        return;
      }
      // Jittered: the webhooks of many apps (and nodes) that failed together do not retry against the receiver in step. A
      // receiver that said when to come back (429, 503 with Retry-After) is not asked before, up to the longest back-off.
      // A back-off that would pass the deadline is cut to it, so the last attempt is made at the deadline (the batch was
      // given up as soon as the next back-off passed it: up to WEBHOOK_RETRY_MAX_MS early) — unless less than half the
      // nominal back-off is left (no retry sooner than that: limits/backoff.ts); one the receiver asked for is not cut.
      const left = limits.retryDeadlineMs - (elapsed() - startedAt);
      const retryAfter = Math.min(attempt.retryAfterMs ?? 0, limits.retryMaxMs);
      const wait = Math.max(jitteredBackoffMs(attempts, limits.retryBaseMs, limits.retryMaxMs, random), retryAfter);
      const minimum = Math.max(retryAfter, backoffCeilingMs(attempts, limits.retryBaseMs, limits.retryMaxMs) / 2);
      if (stop.signal.aborted || (wait > left && minimum > left)) {
        abandon(q, batch, attempt.status, attempts, attempt.error, attempt.span);
        return;
      }
      await sleep(Math.min(wait, left));
      if (stop.signal.aborted) {
        abandon(q, batch, attempt.status, attempts, 'shutting down', attempt.span);
        return;
      }
      // Counted as the retry is made: one cut off by the shutdown during its back-off was never made.
      counted(q, batch, 'retried');
    }
  }

  async function post(
    q: WebhookQueue,
    body: string,
    baseHeaders: Record<string, string>,
    spanName: string,
    events: number,
    attempt: number,
  ): Promise<Attempt> {
    const span = startWebhookSpan(spanName, q.target, events, attempt);
    const traceparent = traceparentOf(span);
    const headers = traceparent === undefined ? baseHeaders : { ...baseHeaders, traceparent };
    // Bounded by the request timeout and cut short by close(); not AbortSignal.any (abort-after.ts says why).
    const bound = abortAfter(limits.requestTimeoutMs, stop.signal);
    try {
      const response = await send(q.webhook.url, {
        method: 'POST',
        headers,
        body,
        signal: bound.signal,
        answerBodyMs: limits.requestTimeoutMs,
      });
      endWebhookSpan(span, response.status);
      const error = response.ok ? undefined : `HTTP ${response.status}`;
      return { ok: response.ok, status: response.status, retryAfterMs: response.retryAfterMs, error, span };
    } catch (err) {
      failWebhookSpan(span, err);
      return { ok: false, status: 0, retryAfterMs: undefined, error: err instanceof Error ? err.message : String(err), span };
    } finally {
      bound.clear();
    }
  }

  /** Counts a batch failed and writes its one `webhook_failed` line (inside its last span, for the trace ids). */
  function abandon(
    q: WebhookQueue,
    batch: readonly WebhookEvent[],
    status: number,
    attempts: number,
    error: string | undefined,
    span: Span | undefined,
  ): void {
    counted(q, batch, 'failed');
    const line = () =>
      logEvent(
        logger,
        'warn',
        { event: 'webhook_failed', app_id: q.app.id, webhook: q.index, status, attempts, events: batch.length, error },
        'webhook delivery given up',
      );
    if (span === undefined) line();
    else withSpan(span, line);
  }

  function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        stop.signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      stop.signal.addEventListener('abort', done);
    });
  }

  /** An event of an app with webhooks, in the order the node emitted it: held (a vacate), cancelled, or routed. */
  function accept(a: AppWebhooks, event: WebhookEvent): void {
    if (stop.signal.aborted) {
      route(a, event);
      return;
    }
    switch (event.name) {
      case 'channel_occupied':
      case 'member_added': {
        // The vacate/remove it would answer is still held back: no webhook hears either — unless another node sent its own
        // meanwhile (a probe: A's vacate went out while B held its own, B's new occupy was dropped with it, and the
        // receiver kept the channel vacated while B's subscriber stayed).
        const key = pairKey(event);
        if (!a.delayed.has(key)) {
          routeOccupy(a, event);
          return;
        }
        forget(a, key);
        if (deps.vacateSentElsewhere !== undefined) askElsewhere(a, event, deps.vacateSentElsewhere);
        return;
      }
      case 'channel_vacated':
      case 'member_removed': {
        if (limits.vacateDelayMs <= 0 || closing || !holdMatters(a, event)) break;
        const key = pairKey(event);
        if (a.delayed.size >= limits.maxPendingEvents && !a.delayed.has(key)) {
          heldFull(a);
          break;
        }
        // One held already: in a cluster the channel was occupied again meanwhile on another node (whose occupy this
        // node did not see) and is empty again. The earlier vacate is stale — the receiver's last word may be that
        // occupy — and this one says all it would: it replaces it, its delay begun again (a probe: sent at once, the
        // earlier vacate came after another node's occupy, and the channel stayed vacated for the receiver).
        forget(a, key);
        a.delayed.set(key, { event, timer: setTimeout(expire, limits.vacateDelayMs, a, key) });
        return;
      }
      default:
        break;
    }
    route(a, event);
  }

  /**
   * An occupy that cancelled this node's held vacate: sent if another node's vacate went out meanwhile (`vacateSentElsewhere`;
   * sent too if that cannot be told). The channel's later events wait behind the answer (`gated`), so this node's events
   * of a channel still go in the order it emitted them (a review: a member_added right after overtook the occupy).
   */
  function askElsewhere(a: AppWebhooks, event: WebhookEvent, elsewhere: NonNullable<WebhookSenderDeps['vacateSentElsewhere']>): void {
    const waiting: WebhookEvent[] = [];
    a.gated.set(event.channel, waiting);
    const answered = (send: boolean): void => {
      a.gated.delete(event.channel);
      if (send) routeOccupy(a, event);
      for (const [i, later] of waiting.entries()) {
        // One of them cancelled a vacate again and asks in turn: the rest wait behind that answer.
        const gate = a.gated.get(event.channel);
        if (gate !== undefined) {
          gate.push(...waiting.slice(i));
          return;
        }
        accept(a, later);
      }
    };
    elsewhere(a.app.id, event).then(answered, () => answered(true));
  }

  return {
    emit(app, event) {
      const a = byApp.get(app.id);
      // A user's own channel is no channel of the app's (a probe: signing in sent channel_occupied, subscription_count
      // and channel_vacated webhooks for #server-to-user-{id}).
      if (a === undefined || isUserChannel(event.channel)) return;
      if (event.name === 'cache_miss' && !firstMissOfInterval(a, event)) return;
      const gate = a.gated.get(event.channel);
      if (gate !== undefined) gate.push(event);
      else accept(a, event);
    },

    backlog() {
      return allQueues.map((q) => ({
        appId: q.app.id,
        webhook: q.index,
        queued: q.ready.length,
        inFlight: q.deliveringEvents,
        bytes: q.pendingBytes(),
      }));
    },

    held() {
      return [...byApp.values()].map((a) => [a.app.id, a.delayed.size] as [string, number]);
    },

    async close(waitMs = Number.POSITIVE_INFINITY) {
      if (closing) return;
      closing = true;
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, Math.max(0, Math.min(limits.closeTimeoutMs, waitMs)));
      });
      // Each held event is asked about as its delay's end would ask (within the wait), and what the cluster cannot answer
      // in time is sent: sent unasked, a member who had come back on another node was removed for the receiver for good.
      const asked: Promise<void>[] = [];
      for (const a of byApp.values()) for (const key of [...a.delayed.keys()]) asked.push(settleHeld(a, key));
      await Promise.race([Promise.all(asked), timeout]);
      for (const a of byApp.values()) for (const key of [...a.delayed.keys()]) release(a, key);
      for (const q of allQueues) pump(q);
      const idle = (async () => {
        while (deliveries.size > 0) await Promise.all([...deliveries]);
      })();
      await Promise.race([idle, timeout]);
      clearTimeout(timer);
      // The reason a request cut off in flight rejects with (webhook-post.ts), so its `webhook_failed` line reads this,
      // where a request that timed out reads "The operation was aborted due to timeout" (docs/webhooks.md, *Metric*).
      stop.abort(new DOMException('The operation was aborted', 'AbortError'));
      for (const q of allQueues) pump(q);
      while (deliveries.size > 0) await Promise.all([...deliveries]);
    },
  };
}
