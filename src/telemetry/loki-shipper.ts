/**
 * The retrying sender of the Loki worker: lines go into a `LokiSpool`; one push is in flight at a time, taken from the
 * spool's head, so lines arrive in the order they were written. A push that fails with something a retry can fix puts its
 * batch back and waits an exponential back-off with jitter (`RETRY_BASE_MS` doubling up to `RETRY_MAX_MS`); a 4xx that no
 * retry can fix drops the batch, counted. Outcomes are counted in the shared `counters` (read by the main thread at scrape
 * time and at exit) and each failure is reported through `onFailure`.
 *
 * Shutdown: once the main thread writes a flush deadline into `counters[FLUSH_DEADLINE]`, pushes go out without waiting
 * for the batch interval and back-offs end at the deadline; `close()` pushes what is left until then and counts the rest
 * as dropped for `shutdown`.
 */
import { LokiSpool, type SpoolBatch } from './loki-spool.js';
import { pushHeaders, pushLines, type LokiTarget, type PushOutcome } from './loki-push.js';
import { jitteredBackoffMs } from '../limits/backoff.js';

/** Indexes into the shared counters (a BigInt64Array over a SharedArrayBuffer). */
export const Counter = {
  /** Lines Loki accepted. */
  Shipped: 0,
  /** Lines dropped because the spool was over its bound (oldest first). */
  DroppedSpoolFull: 1,
  /** Lines in batches Loki refused with a 4xx no retry can fix. */
  DroppedRejected: 2,
  /** Lines still waiting when the shutdown budget ran out. */
  DroppedShutdown: 3,
  /** Bytes waiting in the spool now. */
  SpoolBytes: 4,
  /** `shippingClock()` ms by which the shutdown flush must end; 0 while running. Written by the main thread. */
  FlushDeadline: 5,
} as const;

/** Number of slots in the shared counters. */
export const COUNTER_SLOTS = 6;

/**
 * Milliseconds on the system's monotonic clock, the same in every thread (the main thread sets the flush deadline the
 * worker reads; `performance.now()` counts from each thread's own start). Not the wall clock: a step back of it stopped
 * the pushes for as long as the step, the spool filling (a probe: none for an hour of a clock set back an hour).
 */
export function shippingClock(): number {
  return Number(process.hrtime.bigint() / 1_000_000n);
}

/** A push larger than this is split (Loki's default gRPC message limit is 4 MiB; this leaves room for the JSON). */
const BATCH_MAX_BYTES = 1024 * 1024;
const BATCH_MAX_LINES = 10_000;
/** Pushes shipped in a row after which a push size lowered by a 413 is doubled again. */
const GROW_AFTER_PUSHES = 8;
/** First retry after this, doubled per failure in a row up to `RETRY_MAX_MS`; each delay is jittered to [d/2, d]. */
export const RETRY_BASE_MS = 250;
export const RETRY_MAX_MS = 4000;
/** Longest sleep of the push timer, so that a flush requested by the main thread is noticed within it. */
const TICK_MS = 100;

/** Settings of a shipper. */
export interface ShipperOptions extends LokiTarget {
  batchIntervalMs: number;
  timeoutMs: number;
  spoolMaxBytes: number;
  counters: BigInt64Array;
  /** Called after each failed push with its status (HTTP status or error code) and whether its lines were dropped. */
  onFailure: (status: string, dropped: boolean) => void;
}

/** A running shipper. */
export interface Shipper {
  add(line: string): void;
  /** Pushes what is left until the flush deadline (or `timeoutMs` from now), counts the rest dropped; never rejects. */
  close(): Promise<void>;
}

/** Back-off before retry number `failures` (≥ 1), with jitter so that many nodes do not retry in step. */
export function backoffMs(failures: number, random: () => number = Math.random): number {
  return jitteredBackoffMs(failures, RETRY_BASE_MS, RETRY_MAX_MS, random);
}

/** Starts the sender; see the module comment. */
export function createShipper(options: ShipperOptions): Shipper {
  const { counters } = options;
  const spool = new LokiSpool(options.spoolMaxBytes);
  const headers = pushHeaders(options);
  let timer: NodeJS.Timeout | undefined;
  let inFlight: Promise<void> | undefined;
  let failures = 0;
  let closed = false;
  /** Aborts whatever push is in flight when the shutdown deadline passes. */
  const stop = new AbortController();

  const count = (slot: number, n: number): void => {
    if (n > 0) Atomics.add(counters, slot, BigInt(n));
  };
  const syncBytes = (): void => {
    Atomics.store(counters, Counter.SpoolBytes, BigInt(spool.bytes));
  };
  const flushDeadline = (): number => Number(Atomics.load(counters, Counter.FlushDeadline));

  /**
   * Characters of lines a push may carry: BATCH_MAX_BYTES, halved after each 413 of a batch of several lines, and doubled
   * again (up to BATCH_MAX_BYTES) after GROW_AFTER_PUSHES pushes shipped in a row: a 413 that was a passing
   * misconfiguration does not leave every later push small. A proxy in front of Loki with a smaller body limit (the JSON
   * body is larger than its lines: ~1.3 times for Beacon's lines) refused every full push, and each refusal dropped its
   * whole batch; now only a line that alone is too large is, and a lasting limit costs one refused push per
   * GROW_AFTER_PUSHES.
   */
  let pushMaxChars = BATCH_MAX_BYTES;
  let shippedInARow = 0;

  const settle = (batch: SpoolBatch, outcome: PushOutcome): void => {
    if (outcome.result === 'rejected' && outcome.status === '413' && batch.lines.length > 1) {
      pushMaxChars = Math.max(1, Math.floor(batch.bytes / 2));
      shippedInARow = 0;
      count(Counter.DroppedSpoolFull, spool.putBack(batch));
      syncBytes();
      // Said as a push that failed and is tried again (`loki_push_failed`, batch_dropped false): the operator learns
      // that something in front of Loki limits the pushes, though nothing is lost.
      options.onFailure(outcome.status, false);
      return;
    }
    if (outcome.result === 'shipped') {
      failures = 0;
      if (pushMaxChars < BATCH_MAX_BYTES && ++shippedInARow >= GROW_AFTER_PUSHES) {
        pushMaxChars = Math.min(BATCH_MAX_BYTES, pushMaxChars * 2);
        shippedInARow = 0;
      }
      count(Counter.Shipped, batch.lines.length);
    } else if (outcome.result === 'rejected') {
      failures = 0;
      count(Counter.DroppedRejected, batch.lines.length);
      options.onFailure(outcome.status, true);
    } else {
      failures++;
      count(Counter.DroppedSpoolFull, spool.putBack(batch));
      options.onFailure(outcome.status, false);
    }
    syncBytes();
  };

  /** One push, bounded by the push timeout and, once a flush deadline is set, by what is left of it. */
  const pushNext = async (): Promise<void> => {
    const deadline = flushDeadline();
    const timeoutMs = deadline > 0 ? Math.min(options.timeoutMs, deadline - shippingClock()) : options.timeoutMs;
    if (timeoutMs <= 0) return;
    const batch = spool.take(pushMaxChars, BATCH_MAX_LINES);
    syncBytes();
    if (batch.lines.length === 0) return;
    settle(batch, await pushLines(options, headers, batch.lines, timeoutMs, stop.signal));
  };

  /** When the next push is due (`shippingClock()` ms); the timer re-checks at least every `TICK_MS` so a flush request is seen at once. */
  let dueAt = 0;
  const schedule = (): void => {
    if (closed || inFlight !== undefined || timer !== undefined || spool.size === 0) return;
    if (failures > 0) dueAt = shippingClock() + backoffMs(failures);
    else dueAt = shippingClock() + (spool.bytes >= pushMaxChars ? 0 : options.batchIntervalMs);
    arm();
  };
  const arm = (): void => {
    timer = setTimeout(tick, Math.max(0, Math.min(TICK_MS, dueAt - shippingClock())));
  };
  const tick = (): void => {
    timer = undefined;
    const flushing = flushDeadline() > 0;
    // Flushing: no waiting for the batch interval; a back-off still runs (Loki is failing), but never past the deadline.
    if (flushing && shippingClock() >= flushDeadline()) return; // out of time: close() counts what is left
    const due = shippingClock() >= dueAt || (flushing && failures === 0);
    if (!due) {
      arm();
      return;
    }
    inFlight = pushNext().finally(() => {
      inFlight = undefined;
      schedule();
    });
  };

  return {
    add(line) {
      if (closed) return;
      count(Counter.DroppedSpoolFull, spool.add(line));
      syncBytes();
      schedule();
    },
    async close() {
      closed = true;
      clearTimeout(timer);
      timer = undefined;
      if (flushDeadline() === 0) Atomics.store(counters, Counter.FlushDeadline, BigInt(shippingClock() + options.timeoutMs));
      const deadline = flushDeadline();
      // A push started before the flush may carry the whole push timeout: never wait for it past the deadline.
      const cut = setTimeout(() => stop.abort(), Math.max(0, deadline - shippingClock()));
      await inFlight;
      while (spool.size > 0 && shippingClock() < deadline && !stop.signal.aborted) {
        await pushNext();
        if (failures > 0 && spool.size > 0) {
          await new Promise((resolve) => setTimeout(resolve, Math.min(backoffMs(failures), Math.max(0, deadline - shippingClock()))));
        }
      }
      clearTimeout(cut);
      count(Counter.DroppedShutdown, spool.clear());
      syncBytes();
    },
  };
}
