/**
 * Where the realtime code reports webhook-worthy changes. Contract: `emit` never throws and never blocks (delivery is
 * asynchronous: batched, retried, possibly delayed or dropped as the sender's policy says); for an app without a webhook
 * URL it returns at once and costs nothing. The order of events for one app is kept within a request, not across requests:
 * receivers order by `time_ms`, as with Pusher.
 */
import type { AppConfig } from '../config.js';
import type { WebhookEvent } from './webhook-event.js';

export interface WebhookSink {
  emit(app: AppConfig, event: WebhookEvent): void;
}
