/**
 * The server's sockets kept within the process's file descriptor limit. Every connection (WebSocket or HTTP API) holds a
 * descriptor; once none is left, `accept` fails with EMFILE and libuv closes what waits to be accepted without Node ever
 * seeing it: clients are reset, nothing counts or logs it, and `/metrics` and `/healthz` fail too (no descriptor to accept
 * their connections with) — a probe under `ulimit -n 256`: 4 064 of 5 920 connects reset, not one counted. So the server
 * takes at most the limit less what the process held at start and a headroom (Redis, webhooks, Loki, /metrics scrapes,
 * worker threads): Node's `server.maxConnections`, past which each new connection is closed as soon as it is accepted and
 * reported (`drop`). Those are counted (`websocket_connections_rejected_total{reason="descriptor_limit"}`) and logged
 * (`connections_dropped`, at most once per DROP_LOG_INTERVAL_MS), and the descriptors left keep /metrics answering.
 * A dropped connection gets no protocol answer (no request was read): below the cap, `MAX_CONNECTIONS` refuses with 4100.
 */
import type { Server } from 'node:net';
import { logEvent } from '../telemetry/log-events.js';
import type { Logger } from '../telemetry/logger.js';
import type { Metrics } from '../telemetry/metrics.js';

/** Descriptors kept for everything but the server's own connections: at least this many… */
const HEADROOM_MIN = 64;
/** …and at least this share of the limit. */
const HEADROOM_SHARE = 1 / 16;
/** One `connections_dropped` line per this interval at most, with the count since the last. */
export const DROP_LOG_INTERVAL_MS = 10_000;

/**
 * How many connections the server may hold with `maxFds` descriptors, `openAtStart` of them already in use; undefined
 * when either is unknown (no procfs) — then nothing is capped.
 */
export function socketCapacity(maxFds: number | undefined, openAtStart: number | undefined): number | undefined {
  if (maxFds === undefined || openAtStart === undefined) return undefined;
  const headroom = Math.max(HEADROOM_MIN, Math.ceil(maxFds * HEADROOM_SHARE));
  return Math.max(1, maxFds - openAtStart - headroom);
}

/** Caps `server`'s connections at `capacity` and counts and logs what is dropped past it (above). */
export function capConnections(
  server: Server,
  capacity: number,
  deps: { metrics: Metrics; logger: Logger; maxFds: number; now?: () => number },
): void {
  const now = deps.now ?? Date.now;
  server.maxConnections = capacity;
  let unlogged = 0;
  let loggedAt = Number.NEGATIVE_INFINITY;
  server.on('drop', () => {
    deps.metrics.connectionRejected('descriptor_limit');
    unlogged += 1;
    const at = now();
    if (at - loggedAt < DROP_LOG_INTERVAL_MS && at >= loggedAt) return;
    loggedAt = at;
    logEvent(
      deps.logger,
      'warn',
      { event: 'connections_dropped', reason: 'descriptor_limit', dropped: unlogged, limit: capacity, max_fds: deps.maxFds },
      `${unlogged} new connection(s) closed unanswered: ${capacity} connections held, what the file descriptor limit (${deps.maxFds}) leaves`,
    );
    unlogged = 0;
  });
}
