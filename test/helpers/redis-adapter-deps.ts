/** What the Redis engine's tests give `createRedisAdapter` when they look at neither its metrics nor its log lines. */

/** Metrics that count nothing. */
export const noAdapterMetrics = {
  adapterMessage: () => undefined,
  adapterRequest: () => undefined,
  adapterDropped: () => undefined,
  cacheEvicted: () => undefined,
};

/** A logger that writes nothing. */
export const quietLogger = { info: () => undefined, warn: () => undefined };
