/** What the HTTP API routes are given. */
import type { Adapter } from '../adapters/adapter.js';
import type { AppStore } from '../apps/app-store.js';
import type { Config } from '../config.js';
import type { Publisher } from '../realtime/publisher.js';
import type { Logger } from '../telemetry/logger.js';
import type { Metrics } from '../telemetry/metrics.js';

export interface ApiDeps {
  apps: AppStore;
  adapter: Adapter;
  publisher: Publisher;
  metrics: Metrics;
  logger: Logger;
  /** False once the drain stopped the API (lifecycle/drain.ts): every request, and every publish, then gets 503. */
  isAccepting: () => boolean;
  config: Pick<
    Config,
    | 'maxPayloadBytes'
    | 'maxChannelsPerPublish'
    | 'maxBatchSize'
    | 'maxChannelNameLength'
    | 'maxPresenceUserIdLength'
    | 'maxEventNameLength'
    | 'apiTimestampToleranceSeconds'
    | 'apiRequestsPerSecond'
    | 'apiBodyLimitBytes'
  >;
}
