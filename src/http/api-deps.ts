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

/**
 * An API error thrown by a route: a registry error (`ApiError.of`) with its status and message. The constructor is private
 * so that no route answers a status or text of its own.
 */
export class ApiError extends Error {
  private constructor(
    readonly statusCode: number,
    message: string,
  ) {
    super(message);
  }

  /** The registry's `error`, its message filled with `args`. */
  static of(error: HttpError, ...args: ReadonlyArray<string | number>): ApiError {
    return new ApiError(error.status, error.format(...args));
  }

  /** A failed schema check of a body (publish-request.ts): the registry error's status and message, as the check filled them. */
  static fromCheck(statusCode: number, message: string): ApiError {
    return new ApiError(statusCode, message);
  }
}
