/**
 * The sender's state: one queue per webhook (what waits for a batch, what is being delivered) and, per app, the
 * `channel_vacated` / `member_removed` events held back before routing. Fixed shapes: every field set in the constructors.
 */
import type { AppConfig, WebhookConfig } from '../config.js';
import type { WebhookEvent } from './webhook-event.js';
import type { WebhookTarget } from './webhook-span.js';

/** A `channel_vacated` / `member_removed` held back, and its timer. */
export interface Delayed {
  event: WebhookEvent;
  timer: NodeJS.Timeout;
}

/** One webhook's queue. Fixed shape: every field set here. */
export class WebhookQueue {
  /** Waiting for the next batch. */
  readonly ready: WebhookEvent[] = [];
  /** When each event of `ready` was routed here (Unix ms): a batch's `time_ms` is its last event's (webhook-sender.ts). */
  readonly readyAt: number[] = [];
  /** Events in requests that are in flight or waiting to retry. */
  deliveringEvents = 0;
  /** The size (`eventBytes`) of the events in `ready`, and of those being delivered. */
  readyBytes = 0;
  deliveringBytes = 0;
  requests = 0;
  flushTimer: NodeJS.Timeout | undefined = undefined;
  /** The `time_ms` of the last batch taken: each later one's is at least a millisecond after it (webhook-sender.ts). */
  lastTimeMs = 0;
  /** True from the first event refused for lack of room until the queue is half empty again. */
  overflowing = false;
  readonly target: WebhookTarget;

  constructor(
    readonly app: AppConfig,
    readonly webhook: WebhookConfig,
    /** Its position in the app's list: the `webhook` metric label and log field (never the URL, which may hold a secret). */
    readonly index: number,
  ) {
    const parsed = new URL(webhook.url);
    const port = parsed.port === '' ? (parsed.protocol === 'https:' ? 443 : 80) : Number(parsed.port);
    this.target = { appId: app.id, host: parsed.hostname, port };
  }

  pending(): number {
    return this.ready.length + this.deliveringEvents;
  }

  pendingBytes(): number {
    return this.readyBytes + this.deliveringBytes;
  }
}

/**
 * What an event is counted as against `WEBHOOK_MAX_PENDING_BYTES`: the characters of its strings (a client event's `data`
 * is most of it, up to `MAX_PAYLOAD_BYTES`) plus 128 for the rest of its JSON. Read once per webhook that takes it.
 */
export function eventBytes(event: WebhookEvent): number {
  const strings = event.name === 'client_event' ? event.data.length + event.event.length + event.socket_id.length : 0;
  return event.channel.length + strings + 128;
}

/** One app's webhooks and the events it holds back before routing them. */
export class AppWebhooks {
  /** Keyed `v|channel` or `m|channel|user_id`. */
  readonly delayed = new Map<string, Delayed>();
  /** Per channel, the events waiting behind an occupy whose fate the cluster is being asked (webhook-sender.ts). */
  readonly gated = new Map<string, WebhookEvent[]>();
  readonly queues: WebhookQueue[];
  /** True from the first held-back event refused for lack of room until half of them are gone. */
  overflowing = false;
  /**
   * When each channel's last `cache_miss` was sent (Unix ms), oldest first, only those of the last interval
   * (webhook-sender.ts `firstMissOfInterval`).
   */
  readonly cacheMisses = new Map<string, number>();

  constructor(readonly app: AppConfig) {
    this.queues = app.webhooks.map((webhook, index) => new WebhookQueue(app, webhook, index));
  }
}

/** The key a `channel_vacated` / `member_removed` shares with the `channel_occupied` / `member_added` that cancels it. */
export function pairKey(event: WebhookEvent): string {
  return 'user_id' in event && event.user_id !== undefined ? `m|${event.channel}|${event.user_id}` : `v|${event.channel}`;
}
