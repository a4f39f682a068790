/** What the realtime handlers are given; `app.ts` builds it once. */
import type { Adapter } from '../adapters/adapter.js';
import type { Config } from '../config.js';
import type { Metrics } from '../telemetry/metrics.js';
import type { WebhookSink } from '../webhooks/webhook-sink.js';
import type { Hub } from './hub.js';
import type { Publisher } from './publisher.js';

/** The limits the realtime handlers enforce (all from configuration). */
export type Limits = Pick<
  Config,
  | 'maxChannelNameLength'
  | 'maxEventNameLength'
  | 'maxPayloadBytes'
  | 'maxPresenceMembers'
  | 'maxPresenceMemberBytes'
  | 'maxPresenceUserIdLength'
  | 'maxWatchlistSize'
  | 'maxJsonDepth'
  | 'maxSubscriptionsPerConnection'
  | 'subscribeRetryMs'
>;

export interface RealtimeDeps {
  hub: Hub;
  adapter: Adapter;
  publisher: Publisher;
  metrics: Metrics;
  limits: Limits;
  webhooks: WebhookSink;
}
