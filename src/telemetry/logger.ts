/**
 * The one pino logger of the process (fastify uses the same instance). JSON lines with `service`, `env`, `node_id` on every
 * line, `trace_id`/`span_id` on every line written inside an active span of a sampled trace, and secrets redacted.
 *
 * With `loki` set, every line also goes to Loki through a worker thread (see loki.ts), stdout staying on; call
 * `flushLogger` before exit so the spool is pushed and the count of dropped lines is logged.
 */
import { isSpanContextValid, trace, TraceFlags } from '@opentelemetry/api';
import { fstatSync } from 'node:fs';
import * as onExit from 'on-exit-leak-free';
import { pino, type Logger } from 'pino';
import { isoTime } from './log-time.js';
import { startLokiShipping, type LokiShipping, type LokiShippingOptions } from './loki.js';
import { logEvent, type LogLine } from './log-events.js';
import { fdWriter, FULL_PIPE_RETRY_MS, sayStalledOnStderr, type StdoutDropReason } from './stdout-writer.js';
import type { LogShippingCounts } from './metrics.js';

export type { Logger };

export type { LogEvent } from './log-events.js';

export interface LoggerOptions {
  serviceName: string;
  env: string;
  nodeId: string;
  level: string;
  /** Where lines go; stdout by default. Tests pass a stream to capture lines. */
  destination?: pino.DestinationStream;
  /** Also ship every line to Loki (from `LOKI_URL`, `LOKI_USERNAME`, `LOKI_PASSWORD`, `LOKI_TENANT_ID`); off when undefined. */
  loki?: LokiShippingOptions | undefined;
}

export type { LokiShippingOptions };

/** Per root logger: its Loki pipeline, its primary destination and stdout's drop counts, for `flushLogger` and the metrics. */
const outputs = new WeakMap<
  Logger,
  { shipping: LokiShipping | undefined; primary: pino.DestinationStream; stdoutDropped: StdoutDropCounts | undefined }
>();

/** stdout lines dropped since start, by reason (stdout-writer.ts). */
export type StdoutDropCounts = Record<StdoutDropReason, number>;

/**
 * stdout is written in batches: a line waits until 12 Ki characters are buffered or 100 ms have passed, so a burst of
 * lines (a connect storm writes three per connection) costs one write instead of one per line. The batches are written
 * synchronously, as pino's default destination writes: an asynchronous write (libuv's thread pool) still in flight when
 * the process exits is lost with every line in it, and `process.exit` cannot wait for it (CI lost a whole batch on Node 24).
 * A synchronous 12 KiB write also costs less CPU (13-20 µs against 45-60 µs, measured on a pipe).
 *
 * A pipe its reader has not emptied yet (a log collector a few milliseconds behind, a reader that shares the CPU) takes
 * what fits (whole lines: stdout-writer.ts) and the rest of the batches wait in memory, tried again every millisecond from a timer, in order, while the
 * server goes on serving: up to 1 MiB of them. Past that the server waits for the reader instead of piling lines up in
 * memory (the thread held, a millisecond at a time). Before, every full pipe held the thread: in a connect storm whose
 * log reader shared the 2 cores, ~400 waits of 1 ms in 22 000 connects (bench/README.md). What is buffered is written
 * out on any exit that runs the process's exit handlers (a graceful stop, `process.exit`, an uncaught exception); an end
 * that runs none (SIGKILL, an out-of-memory abort, a signal without a handler) can lose it (at most 100 ms of lines, and
 * what a full pipe held back).
 *
 * A reader that stops reading altogether must not stop the server: one that takes nothing for STDOUT_STALL_MS while the
 * server waits for it has stalled. From then on the server waits for it no more — the held batches stay, tried again
 * every STALLED_RETRY_MS, every batch past STDOUT_HELD_MAX_BYTES is dropped and counted (`stalled`), and an exit's flush
 * drops what is held instead of waiting — until the reader takes something again. A FIFO or socket as descriptor 1 is
 * made non-blocking at start for this (through `process.stdout`, as the worker threads' output makes it anyway): a
 * blocking one held the thread in the kernel's `write`, with no bound at all.
 */
const STDOUT_BATCH_CHARS = 12 * 1024;
const STDOUT_FLUSH_MS = 100;
/** Bytes a full stdout may hold back before the server waits for its reader. */
export const STDOUT_HELD_MAX_BYTES = 1024 * 1024;
/**
 * How long the server waits for a full stdout's reader to take something before it counts the reader as stalled and
 * stops waiting for it (the same bound on the writes of an exit).
 */
export const STDOUT_STALL_MS = 1000;
/** How often a stalled reader's pipe is tried again (a reader that takes bytes only every 1 ms is merely slow). */
const STALLED_RETRY_MS = 100;

/**
 * stdout, batched (above). The lines of a batch are kept as the strings pino made and joined once, when the batch is
 * written (stdout-writer.ts: synchronous; complete, or what a full pipe did not take). Handing SonicBoom each line
 * instead cost either a copy of the whole batch per line (its string mode appends to the batch string and measures that
 * string's UTF-8 length on every write: ~20 KB of garbage per connection's three lines) or a Buffer per line (its buffer
 * mode: 1.5 µs of the 12 µs a connection's opened, subscribed and closed lines cost, measured writing to a drained pipe);
 * and SonicBoom slept 100 ms on a full pipe.
 *
 * Descriptor 1 is written by number, never through `process.stdout`'s stream; but a pipe or socket there is made
 * non-blocking at start (`makeNonBlockingIfPipe`: creating `process.stdout` does it, as the span-export and Loki worker
 * threads' output did before in their configurations only), so a full pipe fails a write at once. A file or a terminal
 * takes every write whole.
 */
function batchedStdout(): { stream: pino.DestinationStream; dropped: StdoutDropCounts } {
  makeNonBlockingIfPipe(1);
  const write = fdWriter(1, STDOUT_STALL_MS);
  const dropped: StdoutDropCounts = { closed: 0, write_error: 0, stalled: 0 };
  let lines: string[] = [];
  let chars = 0;
  let timer: NodeJS.Timeout | undefined;
  /** Batches a full pipe has not taken yet, oldest first, with their lines (for the count of a failure). */
  const held: { bytes: Buffer; lines: number }[] = [];
  let heldBytes = 0;
  let retry: NodeJS.Timeout | undefined;
  /** The reader took nothing for STDOUT_STALL_MS while the server waited; cleared when it takes something again. */
  let stalled = false;
  /** Said on stderr once per process, as a failure is once per error code (stdout-writer.ts). */
  let saidStalled = false;
  /** Drops held batches, newest first, until at most `keepBytes` are held (a batch that failed part-way counted whole). */
  const dropHeld = (keepBytes: number): void => {
    while (held.length > 0 && heldBytes > keepBytes) {
      const batch = held.pop()!;
      dropped.stalled += batch.lines;
      heldBytes -= batch.bytes.length;
    }
  };
  /**
   * Writes the held batches in order; `wait`: all of them before it returns, unless the reader stalls. Each failed one is
   * counted whole.
   */
  const writeHeld = (wait: boolean): void => {
    while (held.length > 0) {
      const head = held[0]!;
      const waits = !stalled && (wait || heldBytes > STDOUT_HELD_MAX_BYTES);
      const before = head.bytes.length;
      const result = write(head.bytes, waits ? STDOUT_STALL_MS : 0);
      if (typeof result === 'string') {
        // A batch that failed part-way is counted whole: its last line was cut, and which lines got through is not known.
        dropped[result] += head.lines;
        heldBytes -= head.bytes.length;
        held.shift();
        continue;
      }
      heldBytes -= before - result.length;
      if (result.length < before) {
        stalled = false;
        // Taken in part, at a line's end (stdout-writer.ts): the lines left are what a drop counts.
        if (result.length > 0) head.lines -= linesIn(head.bytes.subarray(0, before - result.length));
      }
      if (result.length === 0) {
        held.shift();
        continue;
      }
      head.bytes = result;
      // Taken in part while not waiting (a stalled reader reading again): now it is waited for, as the caller asked.
      if (wait && !waits && result.length < before) continue;
      if (waits) {
        stalled = true;
        if (!saidStalled) sayStalledOnStderr(STDOUT_STALL_MS);
        saidStalled = true;
      }
      // An exit cannot wait for a stalled reader; the server keeps at most the bound held back for it.
      if (wait) dropHeld(0);
      else if (stalled) dropHeld(STDOUT_HELD_MAX_BYTES);
      // Unref'd: an exit runs the hook below, which writes the rest.
      if (held.length > 0) {
        retry ??= setTimeout(
          () => {
            retry = undefined;
            writeHeld(false);
          },
          stalled ? STALLED_RETRY_MS : FULL_PIPE_RETRY_MS,
        ).unref();
      }
      return;
    }
  };
  const writeOut = (wait: boolean): void => {
    if (timer !== undefined) {
      clearTimeout(timer);
      timer = undefined;
    }
    if (lines.length > 0) {
      const bytes = Buffer.from(lines.length === 1 ? lines[0]! : lines.join(''));
      held.push({ bytes, lines: lines.length });
      heldBytes += bytes.length;
      lines = [];
      chars = 0;
    }
    // A full pipe is tried again by its timer, not by every batch meanwhile (each try of a full pipe throws EAGAIN).
    if (wait || retry === undefined || heldBytes > STDOUT_HELD_MAX_BYTES) writeHeld(wait);
  };
  // What pino calls on its stream: `write`, and `flush` / `flushSync` for `logger.flush()` (without Loki; pino's
  // multistream has no `flush`, so with Loki `logger.flush()` does not reach this batch) and the exit hook, and what
  // `flushLogger` calls. Once `writeOut(true)` returns, every line is written.
  const batched: pino.DestinationStream & { flush(cb?: (err?: Error | null) => void): void; flushSync(): void } = {
    write(line: string): void {
      lines.push(line);
      chars += line.length;
      if (chars >= STDOUT_BATCH_CHARS) writeOut(false);
      else if (timer === undefined) timer = setTimeout(() => writeOut(false), STDOUT_FLUSH_MS).unref();
    },
    flush(cb) {
      writeOut(true);
      cb?.();
    },
    flushSync() {
      writeOut(true);
    },
  };
  // pino registers an exit hook for asynchronous destinations only; a batched one needs it too. Held weakly by the hook.
  // The writer does not throw: a stdout that is gone or failing is counted and said on stderr (stdout-writer.ts).
  onExit.register(batched, (stream) => stream.flushSync());
  return { stream: batched, dropped };
}

/** The lines in `bytes` (each ends in a newline). */
function linesIn(bytes: Buffer): number {
  let n = 0;
  for (let at = bytes.indexOf(0x0a); at !== -1; at = bytes.indexOf(0x0a, at + 1)) n++;
  return n;
}

/**
 * Makes descriptor `fd` non-blocking when it is a pipe or a socket (batchedStdout): creating `process.stdout` on one does
 * it, as Node's own stdio streams open pipes. A file or a terminal is left as it is (a write to either does not wait on a
 * reader).
 */
function makeNonBlockingIfPipe(fd: 1): void {
  try {
    const stat = fstatSync(fd);
    if (stat.isFIFO() || stat.isSocket()) void process.stdout;
  } catch {
    // No descriptor 1: the writer counts its lines as `closed`.
  }
}

/** Field names whose values never reach a log line. */
const SECRET_FIELDS = ['auth', 'secret', 'signature', 'auth_signature', 'shared_secret', 'password', 'authorization'] as const;
/** Objects a line may nest those fields in (a frame's `data`, a request's `query` / `headers` / `body`, fastify's `req`). */
const SECRET_CONTAINERS = ['data', 'frame', 'query', 'headers', 'body', 'params', 'channel_data', 'app', 'config', 'req', 'request'];

/**
 * Paths whose values never reach a log line: each secret field at the top level and inside each container, plus the
 * request headers and query fastify's `req` serializer writes. Explicit paths, not wildcards: pino's redaction of a
 * `*.auth` path walks every line's keys and cost ~4 µs per line (5.1 vs 1.3 µs a connection line, measured); explicit
 * paths cost nothing on lines without those objects.
 */
export const REDACT_PATHS = [
  ...SECRET_FIELDS,
  ...SECRET_CONTAINERS.flatMap((container) => SECRET_FIELDS.map((field) => `${container}.${field}`)),
  'req.headers.authorization',
  'req.query.auth_signature',
];

/** The mixin's answer for a line written outside a span (or in one with no valid context): nothing to add or copy. */
const NO_IDS = Object.freeze({});

/** Creates the process logger; see the module comment for what each line carries. */
export function createLogger(options: LoggerOptions): Logger {
  const stdout = options.destination === undefined ? batchedStdout() : undefined;
  const primary = stdout?.stream ?? options.destination!;
  const shipping =
    options.loki === undefined
      ? undefined
      : startLokiShipping(options.loki, { serviceName: options.serviceName, env: options.env, nodeId: options.nodeId });
  // Both entries take every level: the logger's own level already filtered the line.
  const destination =
    shipping === undefined
      ? primary
      : pino.multistream([
          { level: 'trace', stream: primary },
          { level: 'trace', stream: shipping.destination },
        ]);
  const logger = pino(
    {
      level: options.level,
      base: { service: options.serviceName, env: options.env, node_id: options.nodeId },
      messageKey: 'msg',
      // `time` as pino.stdTimeFunctions.isoTime writes it, formatted once a second (log-time.ts).
      timestamp: isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      // Correlation with traces: every line written while a span is active carries its ids.
      mixin() {
        const span = trace.getActiveSpan();
        if (span === undefined) return NO_IDS;
        const ctx = span.spanContext();
        // Without a tracer provider spans are non-recording with an all-zero context: no ids rather than zeros. A trace
        // that is not sampled has no span in the backend: its ids would lead nowhere (the HTTP API's lines, which carry
        // their request span's ids explicitly, follow the same rule: `logIds` in tracing.ts).
        if (!isSpanContextValid(ctx) || (ctx.traceFlags & TraceFlags.SAMPLED) === 0) return NO_IDS;
        return { trace_id: ctx.traceId, span_id: ctx.spanId };
      },
      // pino's default merge copies every field of the line into the mixin's object, ids or not.
      mixinMergeStrategy: (line: object, ids: object) => (ids === NO_IDS ? line : Object.assign(ids, line)),
    },
    destination,
  );
  outputs.set(logger, { shipping, primary, stdoutDropped: stdout?.dropped });
  shipping?.onWorkerFailed((error, stats) => {
    logEvent(
      logger,
      'error',
      {
        event: 'loki_shipping_failed',
        error: error.message,
        lines_shipped: stats.shipped,
        lines_dropped: stats.dropped,
      },
      'the Loki shipping worker stopped: no more log lines reach Loki (stdout stays on); what it held and every later line are counted dropped',
    );
  });
  shipping?.onFailure((failure, stats) => {
    logEvent(
      logger,
      'warn',
      {
        event: 'loki_push_failed',
        status: failure.status,
        batch_dropped: failure.dropped,
        lines_queued: stats.queued,
        spool_bytes: stats.spoolBytes,
        lines_shipped: stats.shipped,
        lines_dropped: stats.dropped,
      },
      failure.dropped
        ? 'Loki refused a batch of log lines for good; it is dropped (reported at most once a minute)'
        : 'pushing log lines to Loki failed; retrying with back-off (reported at most once a minute)',
    );
  });
  return logger;
}

/** The Loki shipping counts of a logger made by `createLogger` (undefined without Loki), for the metrics. */
export function logShippingCounts(logger: Logger): LogShippingCounts | undefined {
  const stats = outputs.get(logger)?.shipping?.stats();
  return stats === undefined ? undefined : { shipped: stats.shipped, dropped: stats.droppedBy };
}

/** The stdout lines a logger made by `createLogger` dropped (undefined when it writes elsewhere), for the metrics. */
export function stdoutDropCounts(logger: Logger): StdoutDropCounts | undefined {
  return outputs.get(logger)?.stdoutDropped;
}

/** Default bound on `flushLogger` when the caller has no deadline of its own. */
const DEFAULT_FLUSH_TIMEOUT_MS = 5000;

/**
 * Flushes a logger made by `createLogger` before exit: pushes what the Loki spool holds (retrying while Loki fails) and
 * stops its worker within `timeoutMs` — the shutdown passes what is left of its deadline — logs `loki_shipping_stopped` with
 * how many lines were shipped and dropped, then flushes stdout. Never rejects. Pass the root logger, not a child.
 */
export async function flushLogger(logger: Logger, timeoutMs: number = DEFAULT_FLUSH_TIMEOUT_MS): Promise<void> {
  const output = outputs.get(logger);
  if (output === undefined) {
    await new Promise<void>((resolve) => logger.flush(() => resolve()));
    return;
  }
  if (output.shipping !== undefined) {
    // stdout gets the summary after the worker stopped: keep a little of the budget for that last write.
    const stats = await output.shipping.close(Math.max(0, timeoutMs - STDOUT_FLUSH_RESERVE_MS));
    const line: LogLine = {
      event: 'loki_shipping_stopped',
      lines_written: stats.written,
      lines_shipped: stats.shipped,
      lines_dropped: stats.dropped,
      dropped_by_reason: stats.droppedBy,
    };
    if (stats.dropped > 0) logEvent(logger, 'warn', line, 'Loki shipping stopped; some lines never reached Loki');
    else logEvent(logger, 'info', line, 'Loki shipping stopped');
  }
  flushDestination(output.primary);
}

/** Part of a flush budget kept for writing the last lines to stdout. */
const STDOUT_FLUSH_RESERVE_MS = 100;

/**
 * Writes out what the destination still buffers before the process exits: the batched stdout's pending batch, written
 * synchronously (a test's Writable has nothing to flush).
 */
function flushDestination(stream: pino.DestinationStream): void {
  const d = stream as pino.DestinationStream & { flushSync?: () => void };
  // The batched stdout never throws here: its writer counts and reports a failing stdout (stdout-writer.ts).
  d.flushSync?.();
}
