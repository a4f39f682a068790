/**
 * Main-thread side of log shipping to Loki: starts the worker (`loki-transport.ts`) and keeps the books.
 *
 * Failure behaviour: lines are handed to a worker thread, so a Loki that is down or slow never blocks the event loop. The
 * worker keeps lines in a spool bounded in bytes (`spoolMaxBytes`, LOKI_SPOOL_MAX_BYTES) and retries failed pushes with
 * exponential back-off and jitter, in order; it drops lines only past the bound (oldest first), for a 4xx Loki will never
 * accept, when the shutdown budget runs out, or with the worker if it stops before the shutdown (then it says so once) —
 * each counted by reason (`loki_lines_dropped_total`). Every line is counted
 * when written; the worker counts what Loki accepted in memory shared with this thread, so the counts are exact at exit.
 */
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import type { LogDropReason } from './metrics.js';
import { COUNTER_SLOTS, Counter, shippingClock } from './loki-shipper.js';
import { LOKI_PUSH_FAILED_EVENT, type LokiPushFailure, type LokiWorkerOptions } from './loki-transport.js';

/** Loki connection, batching and spool settings (from `LOKI_*` configuration). */
export interface LokiShippingOptions {
  /** Base URL of Loki, e.g. http://loki:3100; lines go to `/loki/api/v1/push`. */
  url: string;
  username?: string | undefined;
  password?: string | undefined;
  /** Sent as `X-Scope-OrgID` (multi-tenant Loki). */
  tenantId?: string | undefined;
  /** How often a batch is pushed while all is well; default 1000. */
  batchIntervalMs?: number | undefined;
  /** Bytes of lines held while Loki fails; past it the oldest are dropped. Default 32 MiB. */
  spoolMaxBytes?: number | undefined;
  /** Bound on one push; default 5000. */
  timeoutMs?: number | undefined;
  /** The module the worker runs: loki-transport's by default (tests give one that fails). */
  workerPath?: string | undefined;
}

/** Line counts of the Loki pipeline. */
export interface LokiShippingStats {
  written: number;
  shipped: number;
  /** Lines that will never reach Loki, all reasons. */
  dropped: number;
  droppedBy: Record<LogDropReason, number>;
  /** Lines written and not yet shipped or dropped (in the spool, in flight, or on their way to the worker). */
  queued: number;
  /** Bytes in the worker's spool now. */
  spoolBytes: number;
}

/** A running Loki pipeline. */
export interface LokiShipping {
  /** The pino destination (a multistream entry); counts every line it forwards. */
  readonly destination: { write(chunk: string): void };
  stats(): LokiShippingStats;
  /** Called (at most once per `failureReportIntervalMs`) when a push failed, with the failure and the stats at that moment. */
  onFailure(listener: (failure: LokiPushFailure, stats: LokiShippingStats) => void): void;
  /**
   * Called once if the worker stops before `close()` (it threw, or exited): nothing more reaches Loki; what it held and
   * every later line are counted dropped (`worker_failed`).
   */
  onWorkerFailed(listener: (error: Error, stats: LokiShippingStats) => void): void;
  /**
   * Stops forwarding (later writes are ignored), lets the worker push what it holds — retrying while Loki fails — for at
   * most `timeoutMs`, then stops the worker; what was not shipped by then is counted dropped (`shutdown`). Never rejects.
   */
  close(timeoutMs: number): Promise<LokiShippingStats>;
}

const DEFAULTS = { batchIntervalMs: 1000, spoolMaxBytes: 32 * 1024 * 1024, timeoutMs: 5000 } as const;
const FAILURE_REPORT_INTERVAL_MS = 60_000;
const DRAIN_POLL_MS = 25;
/** Time kept after the worker's flush deadline for it to stop and hand its last counts over. */
const STOP_MARGIN_MS = 100;

/** The worker module next to this one: compiled `.js`, or under tsx a shim that loads tsx in the worker first. */
function workerPath(): string {
  const self = import.meta.url;
  const file = self.endsWith('.ts') ? './loki-transport.dev.mjs' : './loki-transport.js';
  return fileURLToPath(new URL(file, self));
}

/** Starts the worker that ships lines labelled `service_name`/`env`/`node_id`/`level` to Loki. */
export function startLokiShipping(options: LokiShippingOptions, labels: { serviceName: string; env: string; nodeId: string }): LokiShipping {
  const workerOptions: LokiWorkerOptions = {
    url: options.url,
    serviceName: labels.serviceName,
    env: labels.env,
    nodeId: labels.nodeId,
    username: options.username,
    password: options.password,
    tenantId: options.tenantId,
    batchIntervalMs: options.batchIntervalMs ?? DEFAULTS.batchIntervalMs,
    spoolMaxBytes: options.spoolMaxBytes ?? DEFAULTS.spoolMaxBytes,
    timeoutMs: options.timeoutMs ?? DEFAULTS.timeoutMs,
    counters: new BigInt64Array(new SharedArrayBuffer(COUNTER_SLOTS * BigInt64Array.BYTES_PER_ELEMENT)),
  };
  const counters = workerOptions.counters;
  const transport = pino.transport<LokiWorkerOptions>({ target: options.workerPath ?? workerPath(), options: workerOptions });

  let written = 0;
  /** Lines written after the close began (a failure reported during the flush): lost to the shutdown, and counted so. */
  let late = 0;
  /** Lines written after the worker stopped on its own: lost with it, and counted so. */
  let lost = 0;
  let open = true;
  let closeBegun = false;
  let failed = false;
  let exited = false;
  let lastFailureReport = Number.NEGATIVE_INFINITY;
  const failureListeners: Array<(failure: LokiPushFailure, stats: LokiShippingStats) => void> = [];
  const workerFailureListeners: Array<(error: Error, stats: LokiShippingStats) => void> = [];

  const read = (slot: number): number => Number(Atomics.load(counters, slot));
  const stats = (): LokiShippingStats => {
    const shipped = read(Counter.Shipped);
    const droppedBy: Record<LogDropReason, number> = {
      spool_full: read(Counter.DroppedSpoolFull),
      rejected: read(Counter.DroppedRejected),
      shutdown: read(Counter.DroppedShutdown),
      worker_failed: 0,
    };
    // Once the worker is gone, lines it never settled (it stopped, or never received them) are lost: to the shutdown, or
    // with the worker when it stopped on its own.
    if (exited) {
      const unsettled = Math.max(0, written - shipped - droppedBy.spool_full - droppedBy.rejected - droppedBy.shutdown);
      droppedBy[failed ? 'worker_failed' : 'shutdown'] += unsettled;
    }
    droppedBy.shutdown += late;
    droppedBy.worker_failed += lost;
    const dropped = droppedBy.spool_full + droppedBy.rejected + droppedBy.shutdown + droppedBy.worker_failed;
    return {
      written: written + late + lost,
      shipped,
      dropped,
      droppedBy,
      queued: Math.max(0, written + late + lost - shipped - dropped),
      spoolBytes: read(Counter.SpoolBytes),
    };
  };

  transport.on(LOKI_PUSH_FAILED_EVENT, (failure: LokiPushFailure) => {
    const now = performance.now();
    if (now - lastFailureReport >= FAILURE_REPORT_INTERVAL_MS) {
      lastFailureReport = now;
      const snapshot = stats();
      for (const listener of failureListeners) listener(failure, snapshot);
    }
  });
  // A worker that dies must not take the app with it: stop forwarding; what was not shipped counts as dropped
  // (`worker_failed`), and the listeners hear it once, when it has exited (so the lines it held are in their counts).
  // Before, nothing said so and later lines were in no count. A worker that fails while the close runs is the close's.
  let failure: Error | undefined;
  transport.on('error', (err: unknown) => {
    open = false;
    if (closeBegun) return;
    failed = true;
    failure ??= err instanceof Error ? err : new Error(String(err));
  });
  transport.once('close', () => {
    exited = true;
    open = false;
    if (closeBegun && !failed) return;
    failed = true;
    const snapshot = stats();
    for (const listener of workerFailureListeners) listener(failure ?? new Error('the worker thread exited'), snapshot);
  });

  const destination = {
    write(chunk: string): void {
      // Lines after the worker stopped (its `loki_shipping_failed` among them), or after the close began (a
      // `loki_push_failed` of the last flush): never shipped, each counted under its reason.
      if (!open) {
        if (failed) lost++;
        else late++;
        return;
      }
      written++;
      transport.write(chunk);
    },
  };

  /** Waits (asynchronously) until the worker settled every written line, or until `until` (`shippingClock()` ms). */
  const settled = async (until: number): Promise<void> => {
    while (shippingClock() < until && !exited && stats().queued > 0) {
      await new Promise((resolve) => setTimeout(resolve, DRAIN_POLL_MS));
    }
  };

  let closing: Promise<LokiShippingStats> | undefined;
  const close = async (timeoutMs: number): Promise<LokiShippingStats> => {
    open = false;
    closeBegun = true;
    if (!exited) {
      const stopBy = shippingClock() + Math.max(0, Math.floor(timeoutMs));
      const flushBy = Math.max(shippingClock(), stopBy - STOP_MARGIN_MS);
      // Listened for before the flush: a worker that stops during it has closed by the end of it, and a listener added
      // then would wait out the whole budget (the review: 3 s of a 3 s close).
      const closedEvent = once(transport, 'close').then(
        () => undefined,
        () => undefined,
      );
      // From now on the worker pushes without waiting for its batch interval, and retries end by `flushBy`.
      Atomics.store(counters, Counter.FlushDeadline, BigInt(flushBy));
      await settled(flushBy);
      // thread-stream's `end()` blocks this thread until the worker's stream has closed; the worker's close pushes only
      // until `flushBy`, which has (nearly) passed by now, so the block is short.
      transport.end();
      let timer: NodeJS.Timeout | undefined;
      // Not unref'd: pino's worker is, so this timer is what keeps the process alive until the worker has closed.
      const bound = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, Math.max(STOP_MARGIN_MS, stopBy - shippingClock()));
      });
      await Promise.race([closedEvent, bound]);
      clearTimeout(timer);
      exited = true;
    }
    return stats();
  };

  return {
    destination,
    stats,
    onFailure(listener) {
      failureListeners.push(listener);
    },
    onWorkerFailed(listener) {
      workerFailureListeners.push(listener);
    },
    close(timeoutMs) {
      closing ??= close(timeoutMs);
      return closing;
    },
  };
}
