/**
 * The pino transport that ships log lines to Loki. It runs inside pino's worker thread (never on the app's event loop):
 * lines arrive as written (JSON text), go into the retrying shipper (loki-shipper.ts: a byte-bounded spool, one push in
 * flight, exponential back-off with jitter, order kept), and every outcome is counted in counters shared with the main
 * thread. Labels are exactly `service_name`, `env`, `node_id`, `level` — whatever a line contains, nothing else can become a label.
 * The worker receives `LokiWorkerOptions` by structured clone; the main-thread side is `loki.ts`.
 */
import { parentPort } from 'node:worker_threads';
import build from 'pino-abstract-transport';
import { createShipper } from './loki-shipper.js';
import type { LokiTarget } from './loki-push.js';

/** What the main thread passes to the worker (plain data: it crosses threads by structured clone). */
export interface LokiWorkerOptions extends LokiTarget {
  batchIntervalMs: number;
  /** Bound on one push. */
  timeoutMs: number;
  /** Bound on the bytes of lines waiting (LOKI_SPOOL_MAX_BYTES); past it the oldest are dropped. */
  spoolMaxBytes: number;
  /** Shared counters, indexed by `Counter` of loki-shipper.ts: exact the moment the worker exits. */
  counters: BigInt64Array;
}

/** Name of the thread-stream event (thread-stream re-emits `{ code: 'EVENT' }` messages) sent when a push failed. */
export const LOKI_PUSH_FAILED_EVENT = 'loki_push_failed';

/** What a `loki_push_failed` event carries: the HTTP status or error code, and whether the batch was dropped (4xx). */
export interface LokiPushFailure {
  status: string;
  dropped: boolean;
}

/** The transport entry pino's worker calls with the options given to `pino.transport`. */
export default function lokiTransport(options: LokiWorkerOptions): ReturnType<typeof build> {
  const shipper = createShipper({
    ...options,
    onFailure: (status, dropped) => {
      const failure: LokiPushFailure = { status, dropped };
      parentPort?.postMessage({ code: 'EVENT', name: LOKI_PUSH_FAILED_EVENT, args: [failure] });
    },
  });
  return build(
    async (source: AsyncIterable<string>) => {
      for await (const line of source) shipper.add(line);
    },
    // The lines are shipped as written: no parse per line in the worker.
    { parse: 'lines', parseLine: (line: string) => line, metadata: false, close: () => shipper.close() },
  );
}
