/** What the HTTP API routes are given. */
import type { Adapter } from '../adapters/adapter.js';
import type { AppStore } from '../apps/app-store.js';
import type { Config } from '../config.js';
import type { HttpError } from '../protocol/errors.js';
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
    | 'maxEventNameLength'
    | 'apiTimestampToleranceSeconds'
    | 'apiRequestsPerSecond'
  >;
}

/** An API error thrown by a route: a registry error (its status) with its message filled with `args`. */
export class ApiError extends Error {
  readonly statusCode: number;
  constructor(
    readonly error: HttpError,
    ...args: ReadonlyArray<string | number>
  ) {
    super(error.format(...args));
    this.statusCode = error.status;
  }
}
