/**
 * Main-thread side of log shipping to Loki: starts the pino-loki worker (`loki-transport.ts`) and keeps the books.
 *
 * Failure behaviour: lines are handed to a worker thread, so a Loki that is down or slow never blocks the event loop; the
 * worker batches them (`batchIntervalMs`), keeps at most `maxBufferLines` waiting (the oldest are dropped beyond that) and
 * gives each push `timeoutMs`. Every line is counted when written; the worker reports what Loki accepted, so
 * `dropped = written − shipped` once the worker is closed, and failures are reported while running.
 */
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { FAILED, LOKI_PUSH_FAILED_EVENT, SHIPPED, type LokiWorkerOptions } from './loki-transport.js';

/** Loki connection and batching settings (from `LOKI_*` configuration). */
export interface LokiShippingOptions {
  /** Base URL of Loki, e.g. http://loki:3100; lines go to `/loki/api/v1/push`. */
  url: string;
  username?: string | undefined;
  password?: string | undefined;
  /** Sent as `X-Scope-OrgID` (multi-tenant Loki). */
  tenantId?: string | undefined;
  /** How often a batch is pushed; default 1000. */
  batchIntervalMs?: number | undefined;
  /** Lines waiting for a push beyond which the oldest are dropped; default 10000. */
  maxBufferLines?: number | undefined;
  /** Bound on one push, and on the final push at close; default 5000. */
  timeoutMs?: number | undefined;
}

/** Line counts of the Loki pipeline. */
export interface LokiShippingStats {
  written: number;
  shipped: number;
  failed: number;
  /** Lines that will never reach Loki: failed pushes and buffer overflow (exact once closed). */
  dropped: number;
}

/** A running Loki pipeline. */
export interface LokiShipping {
  /** The pino destination (a multistream entry); counts every line it forwards. */
  readonly destination: { write(chunk: string): void };
  stats(): LokiShippingStats;
  /** Called (at most once per `failureReportIntervalMs`) when a push failed, with the stats at that moment. */
  onFailure(listener: (stats: LokiShippingStats) => void): void;
  /**
   * Stops forwarding (later writes are ignored), waits until every written line was pushed or failed (at most
   * `batchIntervalMs` + `timeoutMs`), then stops the worker. Never rejects.
   */
  close(): Promise<LokiShippingStats>;
}

const DEFAULTS = { batchIntervalMs: 1000, maxBufferLines: 10_000, timeoutMs: 5000 } as const;
const FAILURE_REPORT_INTERVAL_MS = 60_000;
const DRAIN_POLL_MS = 25;

/** The worker module next to this one: compiled `.js`, or under tsx a shim that loads tsx in the worker first. */
function workerPath(): string {
  const self = import.meta.url;
  const file = self.endsWith('.ts') ? './loki-transport.dev.mjs' : './loki-transport.js';
  return fileURLToPath(new URL(file, self));
}

/** Starts the worker that ships lines labelled `service_name`/`env`/`level` to Loki. */
export function startLokiShipping(options: LokiShippingOptions, labels: { serviceName: string; env: string }): LokiShipping {
  const workerOptions: LokiWorkerOptions = {
    url: options.url,
    serviceName: labels.serviceName,
    env: labels.env,
    username: options.username,
    password: options.password,
    tenantId: options.tenantId,
    batchIntervalMs: options.batchIntervalMs ?? DEFAULTS.batchIntervalMs,
    maxBufferLines: options.maxBufferLines ?? DEFAULTS.maxBufferLines,
    timeoutMs: options.timeoutMs ?? DEFAULTS.timeoutMs,
    counters: new BigInt64Array(new SharedArrayBuffer(2 * BigInt64Array.BYTES_PER_ELEMENT)),
  };
  const counters = workerOptions.counters;
  const transport = pino.transport<LokiWorkerOptions>({ target: workerPath(), options: workerOptions });

  let written = 0;
  let open = true;
  let exited = false;
  // Set once close() has waited for the worker: whatever is not shipped by then never will be.
  let closed = false;
  let lastFailureReport = 0;
  const failureListeners: Array<(stats: LokiShippingStats) => void> = [];

  const stats = (): LokiShippingStats => {
    const shipped = Number(Atomics.load(counters, SHIPPED));
    const failed = Number(Atomics.load(counters, FAILED));
    return { written, shipped, failed, dropped: exited || closed ? written - shipped : failed };
  };

  transport.on(LOKI_PUSH_FAILED_EVENT, () => {
    const now = Date.now();
    if (now - lastFailureReport >= FAILURE_REPORT_INTERVAL_MS) {
      lastFailureReport = now;
      const snapshot = stats();
      for (const listener of failureListeners) listener(snapshot);
    }
  });
  // A worker that dies must not take the app with it: stop forwarding; what was not shipped counts as dropped.
  transport.on('error', () => {
    open = false;
  });
  transport.once('close', () => {
    exited = true;
    open = false;
  });

  const destination = {
    write(chunk: string): void {
      if (!open) return;
      written++;
      transport.write(chunk);
    },
  };

  /**
   * thread-stream's `end()` blocks the calling thread until the worker's stream has closed, and pino-loki's close pushes
   * whatever is still buffered — so ending with lines buffered would block the event loop for up to a push timeout. Wait
   * (asynchronously) until the worker's regular batches have attempted every written line first; `end()` then finds an
   * empty buffer and returns at once.
   */
  const drained = async (deadline: number): Promise<void> => {
    while (Date.now() < deadline && !exited) {
      const { shipped, failed } = stats();
      if (shipped + failed >= written) return;
      await new Promise((resolve) => setTimeout(resolve, DRAIN_POLL_MS));
    }
  };

  let closing: Promise<LokiShippingStats> | undefined;
  const close = async (): Promise<LokiShippingStats> => {
    open = false;
    if (!exited) {
      await drained(Date.now() + workerOptions.batchIntervalMs + workerOptions.timeoutMs);
      const closedEvent = once(transport, 'close');
      transport.end();
      let timer: NodeJS.Timeout | undefined;
      // Not unref'd: pino's worker is, so this timer is what keeps the process alive until the worker has closed.
      const bound = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, workerOptions.timeoutMs + 1000);
      });
      await Promise.race([closedEvent.then(() => undefined, () => undefined), bound]);
      clearTimeout(timer);
    }
    closed = true;
    return stats();
  };

  return {
    destination,
    stats,
    onFailure(listener) {
      failureListeners.push(listener);
    },
    close() {
      closing ??= close();
      return closing;
    },
  };
}
