/**
 * The server's sockets kept within the process's file descriptor limit. Every connection (WebSocket or HTTP API) holds a
 * descriptor; once none is left, `accept` fails with EMFILE and libuv closes what waits to be accepted without Node ever
 * seeing it: clients are reset, nothing counts or logs it, and `/metrics` and `/healthz` fail too (no descriptor to accept
 * their connections with) — a probe under `ulimit -n 256`: 4 064 of 5 920 connects reset, not one counted. So the server
 * takes at most the limit less what the process held at start and a headroom (Redis, webhooks, Loki, /metrics scrapes,
 * worker threads): Node's `server.maxConnections`, past which each new connection is closed as soon as it is accepted and
 * reported (`drop`). Those are counted (`websocket_connections_rejected_total{reason="descriptor_limit"}`) and logged
 * (`connections_dropped`, at most once per DROP_LOG_INTERVAL_MS), and the descriptors left keep /metrics answering.
 * A dropped connection gets no protocol answer (no request was read), so WebSockets are held below that, with the
 * protocol's refusal past it (4100, as past `MAX_CONNECTIONS`): a share stays for the HTTP API and the health probes.
 */
import type { Server } from 'node:net';
import { logEvent } from '../telemetry/log-events.js';
import type { Logger } from '../telemetry/logger.js';
import type { Metrics } from '../telemetry/metrics.js';

/** Descriptors kept for everything but the server's own connections: at least this many… */
const HEADROOM_MIN = 64;
/** …and at least this share of the limit. */
const HEADROOM_SHARE = 1 / 16;
/** Of the server's connections, kept from WebSockets for the HTTP API, health probes and refused upgrades: at least… */
const HTTP_SHARE_MIN = 32;
/** …and at least this share. */
const HTTP_SHARE = 1 / 16;
/** One `connections_dropped` line per this interval at most, with the count since the last. */
export const DROP_LOG_INTERVAL_MS = 10_000;

/** What the file descriptor limit leaves the server (descriptorBudget). */
export interface DescriptorBudget {
  /** Its connections of every kind (`server.maxConnections`): past it a new one is closed as soon as accepted. */
  sockets: number;
  /**
   * WebSocket connections: past it an upgrade is refused with 4100 (`over_capacity`), as past `MAX_CONNECTIONS`. The
   * rest of `sockets` stays for the HTTP API, the health probes (a liveness probe dropped at a full node restarts it,
   * and every client with it) and refused upgrades waiting for the client's close frame.
   */
  webSockets: number;
  /** Refused upgrades left waiting for the client's close frame at once (`MAX_REFUSED_SOCKETS` at most): half that rest. */
  refusedSockets: number;
}

/**
 * What `maxFds` descriptors leave the server, `openAtStart` of them already in use; undefined when either is unknown (no
 * procfs) — then nothing is capped.
 */
export function descriptorBudget(maxFds: number | undefined, openAtStart: number | undefined): DescriptorBudget | undefined {
  if (maxFds === undefined || openAtStart === undefined) return undefined;
  const headroom = Math.max(HEADROOM_MIN, Math.ceil(maxFds * HEADROOM_SHARE));
  const sockets = Math.max(1, maxFds - openAtStart - headroom);
  const http = Math.max(HTTP_SHARE_MIN, Math.ceil(sockets * HTTP_SHARE));
  return { sockets, webSockets: Math.max(1, sockets - http), refusedSockets: Math.floor(http / 2) };
}

/**
 * Caps `server`'s connections at `capacity` and counts and logs what is dropped past it (above): a line when a drop comes
 * DROP_LOG_INTERVAL_MS or more after the last line, and at the end of an interval with drops not yet told.
 */
export function capConnections(
  server: Server,
  capacity: number,
  deps: { metrics: Metrics; logger: Logger; maxFds: number; now?: () => number },
): void {
  const now = deps.now ?? ((): number => performance.now());
  server.maxConnections = capacity;
  let untold = 0;
  let loggedAt = Number.NEGATIVE_INFINITY;
  let timer: NodeJS.Timeout | undefined;
  const tell = (): void => {
    loggedAt = now();
    logEvent(
      deps.logger,
      'warn',
      { event: 'connections_dropped', reason: 'descriptor_limit', dropped: untold, limit: capacity, max_fds: deps.maxFds },
      `${untold} new connection(s) closed unanswered: ${capacity} connections held, what the file descriptor limit (${deps.maxFds}) leaves`,
    );
    untold = 0;
  };
  server.on('drop', () => {
    deps.metrics.connectionRejected('descriptor_limit');
    untold += 1;
    const since = now() - loggedAt;
    // A clock set back tells at once rather than never.
    if (since >= DROP_LOG_INTERVAL_MS || since < 0) {
      tell();
      return;
    }
    // The rest of the interval's drops are told at its end (a burst's last ones were never told).
    timer ??= setTimeout(() => {
      timer = undefined;
      if (untold > 0) tell();
    }, DROP_LOG_INTERVAL_MS - since).unref();
  });
  server.once('close', () => clearTimeout(timer));
}
