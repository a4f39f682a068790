/**
 * Sends each app's webhooks (reference "Webhooks"): events emitted within `batchMs` go in one signed POST of at most
 * `maxBatchEvents`; a non-2xx answer or a network error is retried with exponential back-off until `retryDeadlineMs`;
 * `channel_vacated` and `member_removed` wait `vacateDelayMs` and are dropped, with the `channel_occupied` /
 * `member_added` that cancels them, when the channel is re-occupied or the user comes back in time (as Pusher does).
 *
 * Memory is bounded: at most `maxPendingEvents` per app are held (waiting, delayed or being delivered); past that new
 * events are counted `failed` and the episode is logged once. Every event ends counted exactly once as `ok` or `failed`.
 *
 * Delivery runs in the root OpenTelemetry context: the timers would otherwise inherit whichever client frame's span was
 * active when they were armed, and a batch belongs to no single client.
 */
import { setMaxListeners } from 'node:events';
import { context, ROOT_CONTEXT, type Span } from '@opentelemetry/api';
import type { AppStore } from '../apps/app-store.js';
import type { AppConfig } from '../config.js';
import { webhookSignature } from '../protocol/signatures.js';
import type { Logger } from '../telemetry/logger.js';
import type { Metrics } from '../telemetry/metrics.js';
import { traceparentOf, withSpan } from '../telemetry/tracing.js';
import type { WebhookEvent } from './webhook-event.js';
import type { WebhookSink } from './webhook-sink.js';
import { endWebhookSpan, failWebhookSpan, startWebhookSpan, webhookSpanName, type WebhookTarget } from './webhook-span.js';

/** Timings and limits; every one has a default (the values Pusher documents where it documents one). */
export interface WebhookSenderLimits {
  /** How long the first event of a batch waits for others. */
  batchMs: number;
  maxBatchEvents: number;
  /** Per app: waiting + delayed + being delivered. */
  maxPendingEvents: number;
  /** How long `channel_vacated` / `member_removed` are held back; 0 sends them at once. */
  vacateDelayMs: number;
  /** First back-off; doubled on every retry up to `retryMaxMs`. */
  retryBaseMs: number;
  retryMaxMs: number;
  /** A batch not delivered this long after its first attempt is given up. */
  retryDeadlineMs: number;
  requestTimeoutMs: number;
  /** Requests in flight (or waiting to retry) per app; later batches wait their turn. */
  maxConcurrentRequests: number;
  /** How long `close()` waits for pending batches before abandoning them. */
  closeTimeoutMs: number;
}

export const DEFAULT_WEBHOOK_LIMITS: WebhookSenderLimits = {
  batchMs: 50,
  maxBatchEvents: 50,
  maxPendingEvents: 10_000,
  vacateDelayMs: 3000,
  retryBaseMs: 1000,
  retryMaxMs: 60_000,
  retryDeadlineMs: 5 * 60_000,
  requestTimeoutMs: 10_000,
  maxConcurrentRequests: 4,
  closeTimeoutMs: 2000,
};

export interface WebhookSenderDeps extends Partial<WebhookSenderLimits> {
  /** Only apps with a `webhookUrl` get a queue; the set is fixed for the life of the process (AppStore contract). */
  apps: AppStore;
  metrics: Pick<Metrics, 'webhook'>;
  logger: Logger;
  fetch?: typeof globalThis.fetch;
  /** Unix milliseconds, for `time_ms` and the retry deadline. */
  now?: () => number;
}

export interface WebhookSender extends WebhookSink {
  /** Sends what is pending (delayed events at once), waits at most `closeTimeoutMs`, then abandons the rest as failed. */
  close(): Promise<void>;
}

/** A `channel_vacated` / `member_removed` held back, and its timer. */
interface Delayed {
  event: WebhookEvent;
  timer: NodeJS.Timeout;
}

/** One app's queue. Fixed shape: every field set here. */
class AppQueue {
  /** Waiting for the next batch. */
  readonly ready: WebhookEvent[] = [];
  /** Keyed `v|channel` or `m|channel|user_id`. */
  readonly delayed = new Map<string, Delayed>();
  /** Events in requests that are in flight or waiting to retry. */
  deliveringEvents = 0;
  requests = 0;
  flushTimer: NodeJS.Timeout | undefined = undefined;
  /** True from the first event refused for lack of room until the queue is half empty again. */
  overflowing = false;
  readonly target: WebhookTarget;

  constructor(
    readonly app: AppConfig,
    readonly url: string,
  ) {
    const parsed = new URL(url);
    const port = parsed.port === '' ? (parsed.protocol === 'https:' ? 443 : 80) : Number(parsed.port);
    this.target = { appId: app.id, host: parsed.hostname, port };
  }

  pending(): number {
    return this.ready.length + this.delayed.size + this.deliveringEvents;
  }
}

/** How one attempt ended. */
interface Attempt {
  ok: boolean;
  /** HTTP status; 0 when no answer came. */
  status: number;
  error: string | undefined;
  span: Span;
}

/** The key a `channel_vacated` / `member_removed` shares with the `channel_occupied` / `member_added` that cancels it. */
function pairKey(event: WebhookEvent): string {
  return 'user_id' in event && event.user_id !== undefined ? `m|${event.channel}|${event.user_id}` : `v|${event.channel}`;
}

export function createWebhookSender(deps: WebhookSenderDeps): WebhookSender {
  const { apps, metrics, logger } = deps;
  const limits: WebhookSenderLimits = {
    batchMs: deps.batchMs ?? DEFAULT_WEBHOOK_LIMITS.batchMs,
    maxBatchEvents: deps.maxBatchEvents ?? DEFAULT_WEBHOOK_LIMITS.maxBatchEvents,
    maxPendingEvents: deps.maxPendingEvents ?? DEFAULT_WEBHOOK_LIMITS.maxPendingEvents,
    vacateDelayMs: deps.vacateDelayMs ?? DEFAULT_WEBHOOK_LIMITS.vacateDelayMs,
    retryBaseMs: deps.retryBaseMs ?? DEFAULT_WEBHOOK_LIMITS.retryBaseMs,
    retryMaxMs: deps.retryMaxMs ?? DEFAULT_WEBHOOK_LIMITS.retryMaxMs,
    retryDeadlineMs: deps.retryDeadlineMs ?? DEFAULT_WEBHOOK_LIMITS.retryDeadlineMs,
    requestTimeoutMs: deps.requestTimeoutMs ?? DEFAULT_WEBHOOK_LIMITS.requestTimeoutMs,
    maxConcurrentRequests: deps.maxConcurrentRequests ?? DEFAULT_WEBHOOK_LIMITS.maxConcurrentRequests,
    closeTimeoutMs: deps.closeTimeoutMs ?? DEFAULT_WEBHOOK_LIMITS.closeTimeoutMs,
  };
  const send = deps.fetch ?? globalThis.fetch;
  const now = deps.now ?? Date.now;

  const queues = new Map<string, AppQueue>();
  for (const app of apps.all()) if (app.webhookUrl !== undefined) queues.set(app.id, new AppQueue(app, app.webhookUrl));

  /** Aborted when `close()` gives up waiting: in-flight requests and back-off sleeps end at once. */
  const stop = new AbortController();
  // One listener per in-flight request or sleep; their number is bounded by apps × maxConcurrentRequests.
  setMaxListeners(0, stop.signal);
  let closing = false;
  const deliveries = new Set<Promise<void>>();

  function counted(events: readonly WebhookEvent[], result: 'ok' | 'retried' | 'failed'): void {
    for (const e of events) metrics.webhook(e.name, result);
  }

  function refuse(q: AppQueue, event: WebhookEvent): void {
    metrics.webhook(event.name, 'failed');
    if (q.overflowing) return;
    q.overflowing = true;
    logger.warn(
      { event: 'webhook_failed', app_id: q.app.id, reason: 'queue_full', max_pending_events: limits.maxPendingEvents },
      'webhook queue full; new events are dropped until it drains',
    );
  }

  function enqueue(q: AppQueue, event: WebhookEvent): void {
    q.ready.push(event);
    if (q.ready.length >= limits.maxBatchEvents || closing) pump(q);
    else if (q.flushTimer === undefined) q.flushTimer = setTimeout(flushTimerFired, limits.batchMs, q);
  }

  function flushTimerFired(q: AppQueue): void {
    q.flushTimer = undefined;
    pump(q);
  }

  /** Starts as many batches as the concurrency allows; after `stop`, whatever still waits is failed instead. */
  function pump(q: AppQueue): void {
    if (q.flushTimer !== undefined) {
      clearTimeout(q.flushTimer);
      q.flushTimer = undefined;
    }
    if (stop.signal.aborted) {
      if (q.ready.length > 0) abandon(q, q.ready.splice(0), 0, 0, 'shutting down', undefined);
      return;
    }
    while (q.ready.length > 0 && q.requests < limits.maxConcurrentRequests) {
      const batch = q.ready.splice(0, limits.maxBatchEvents);
      q.requests++;
      q.deliveringEvents += batch.length;
      const delivery = context.with(ROOT_CONTEXT, () => deliver(q, batch)).catch((err: unknown) => {
        // deliver() handles every failure it knows of; this is a bug, logged rather than left as an unhandled rejection.
        logger.error({ event: 'webhook_failed', app_id: q.app.id, error: String(err) }, 'webhook delivery crashed');
      });
      deliveries.add(delivery);
      void delivery.finally(() => {
        deliveries.delete(delivery);
        q.requests--;
        q.deliveringEvents -= batch.length;
        if (q.overflowing && q.pending() <= limits.maxPendingEvents / 2) q.overflowing = false;
        if (q.ready.length > 0) pump(q);
      });
    }
  }

  function release(q: AppQueue, key: string): void {
    const held = q.delayed.get(key);
    if (held === undefined) return;
    clearTimeout(held.timer);
    q.delayed.delete(key);
    enqueue(q, held.event);
  }

  /** One batch: encoded and signed once, posted until it succeeds, the deadline passes or the sender stops. */
  async function deliver(q: AppQueue, batch: WebhookEvent[]): Promise<void> {
    const body = JSON.stringify({ time_ms: now(), events: batch });
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'x-pusher-key': q.app.key,
      'x-pusher-signature': webhookSignature(q.app.secret, body),
    };
    const spanName = webhookSpanName(batch);
    const startedAt = now();
    let attempts = 0;
    for (;;) {
      attempts++;
      const attempt = await post(q, body, headers, spanName, batch.length, attempts);
      if (attempt.ok) {
        counted(batch, 'ok');
        return;
      }
      const wait = Math.min(limits.retryMaxMs, limits.retryBaseMs * 2 ** (attempts - 1));
      if (stop.signal.aborted || now() + wait - startedAt > limits.retryDeadlineMs) {
        abandon(q, batch, attempt.status, attempts, attempt.error, attempt.span);
        return;
      }
      counted(batch, 'retried');
      await sleep(wait);
      if (stop.signal.aborted) {
        abandon(q, batch, attempt.status, attempts, 'shutting down', attempt.span);
        return;
      }
    }
  }

  async function post(
    q: AppQueue,
    body: string,
    baseHeaders: Record<string, string>,
    spanName: string,
    events: number,
    attempt: number,
  ): Promise<Attempt> {
    const span = startWebhookSpan(spanName, q.target, events, attempt);
    const traceparent = traceparentOf(span);
    const headers = traceparent === undefined ? baseHeaders : { ...baseHeaders, traceparent };
    try {
      const response = await send(q.url, {
        method: 'POST',
        headers,
        body,
        signal: AbortSignal.any([stop.signal, AbortSignal.timeout(limits.requestTimeoutMs)]),
      });
      // The answer's body is never read; cancelling it frees the connection for the next request.
      await response.body?.cancel().catch(() => {});
      endWebhookSpan(span, response.status);
      return { ok: response.ok, status: response.status, error: response.ok ? undefined : `HTTP ${response.status}`, span };
    } catch (err) {
      failWebhookSpan(span, err);
      return { ok: false, status: 0, error: err instanceof Error ? err.message : String(err), span };
    }
  }

  /** Counts a batch failed and writes its one `webhook_failed` line (inside its last span, for the trace ids). */
  function abandon(
    q: AppQueue,
    batch: readonly WebhookEvent[],
    status: number,
    attempts: number,
    error: string | undefined,
    span: Span | undefined,
  ): void {
    counted(batch, 'failed');
    const line = () =>
      logger.warn(
        { event: 'webhook_failed', app_id: q.app.id, status, attempts, events: batch.length, error },
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

  return {
    emit(app, event) {
      const q = queues.get(app.id);
      if (q === undefined) return;
      if (stop.signal.aborted) {
        metrics.webhook(event.name, 'failed');
        return;
      }
      switch (event.name) {
        case 'channel_occupied':
        case 'member_added': {
          // The vacate/remove it would answer is still held back: the receiver hears neither.
          const key = pairKey(event);
          const held = q.delayed.get(key);
          if (held !== undefined) {
            clearTimeout(held.timer);
            q.delayed.delete(key);
            return;
          }
          break;
        }
        case 'channel_vacated':
        case 'member_removed': {
          if (limits.vacateDelayMs <= 0 || closing) break;
          if (q.pending() >= limits.maxPendingEvents) {
            refuse(q, event);
            return;
          }
          const key = pairKey(event);
          // Not reachable through the hub (a vacate always follows an occupy), but never lose the earlier one.
          release(q, key);
          q.delayed.set(key, { event, timer: setTimeout(release, limits.vacateDelayMs, q, key) });
          return;
        }
        default:
          break;
      }
      if (q.pending() >= limits.maxPendingEvents) refuse(q, event);
      else enqueue(q, event);
    },

    async close() {
      if (closing) return;
      closing = true;
      for (const q of queues.values()) {
        for (const key of [...q.delayed.keys()]) release(q, key);
        pump(q);
      }
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, limits.closeTimeoutMs);
      });
      const idle = (async () => {
        while (deliveries.size > 0) await Promise.all([...deliveries]);
      })();
      await Promise.race([idle, timeout]);
      clearTimeout(timer);
      stop.abort();
      for (const q of queues.values()) pump(q);
      while (deliveries.size > 0) await Promise.all([...deliveries]);
    },
  };
}
