/**
 * The batch publisher of the many-small-channels loads (small-channels.ts on one server, cluster/sparse-load.ts on a
 * topology): events numbered from 0, `batchSize` to distinct channels per request, `inFlight` requests at a time; the
 * warm-up batches drained unmeasured, then the measured ones between a meter's two readings. Every channel has one
 * subscriber, so every event is one delivery. Every wait is bounded by `drainTimeoutMs` without progress.
 */
import { performance } from 'node:perf_hooks';
import type { Payload } from './clients.js';
import type { Meter } from './phases.js';
import { quantile } from './stats.js';

/** The requests of a batch-publishing load (bursts, many small channels). */
export interface BatchOptions {
  /** Requests measured, after `warmupBatches`. */
  batches: number;
  warmupBatches: number;
  /** Events per request. */
  batchSize: number;
  /** Requests in flight. */
  inFlight: number;
  payloadBytes: number;
  /** Longest a phase waits for its last delivery without progress. */
  drainTimeoutMs: number;
}

/** A many-small-channels load: event `i` goes to channel `(i × stride) mod channels`, so a request's events to distinct ones. */
export interface ChannelBatchOptions extends BatchOptions {
  /** Channels, one subscriber each. */
  channels: number;
  /** Subscriber handshakes in flight while connecting. */
  concurrency: number;
}

/** What the measured batches delivered, in this order (each load process adds its servers' costs). */
export interface BatchDeliveries {
  /** Events published in the measured phase (each to one channel, one subscriber). */
  published: number;
  publishErrors: number;
  delivered: number;
  /** First request → last delivery. */
  elapsedMs: number;
  deliveriesPerSecond: number;
  p50Ms: number;
  p99Ms: number;
}

/** Bounded: returns once `done()`, or after `drainTimeoutMs` without `progress()` changing (polled every 20 ms). */
export async function waitUntil(done: () => boolean, progress: () => number, drainTimeoutMs: number): Promise<void> {
  let last = -1;
  let lastAt = performance.now();
  while (!done()) {
    if (progress() !== last) {
      last = progress();
      lastAt = performance.now();
    } else if (performance.now() - lastAt > drainTimeoutMs) return;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Deliveries to one-subscriber channels, warm-up ones counted, measured ones timed; and the batches that cause them. */
export class ChannelBatches {
  private readonly warmupEvents: number;
  private readonly measuredEvents: number;
  private readonly latencies: Float64Array;
  private delivered = 0;
  private warmDelivered = 0;
  private lastDeliveryAt = 0;

  constructor(private readonly o: ChannelBatchOptions) {
    this.pad = 'x'.repeat(Math.max(0, o.payloadBytes - 40));
    this.stride = 7919 % o.channels === 0 ? 1 : 7919;
    this.warmupEvents = o.warmupBatches * o.batchSize;
    this.measuredEvents = o.batches * o.batchSize;
    this.latencies = new Float64Array(this.measuredEvents);
  }

  /** Counts (warm-up) or times (measured) one delivery; the subscribers call it for every benchmark message. */
  readonly onPayload = (p: Payload): void => {
    if (p.i < this.warmupEvents) {
      this.warmDelivered++;
      return;
    }
    const now = performance.now();
    if (this.delivered < this.latencies.length) this.latencies[this.delivered] = now - p.t;
    this.delivered++;
    this.lastDeliveryAt = now;
  };

  private sent = 0;
  private publishErrors = 0;
  private elapsedMs = 0;
  private readonly pad: string;
  /** Events go round the channels with a stride coprime to their count, so a batch never repeats a channel (and on a topology every node serves its share of every batch). */
  private readonly stride: number;

  /** Sends requests `first` … `first + count - 1`, `inFlight` at a time; a failed one is counted. */
  private async send<E>(first: number, count: number, event: (channel: number, payload: Payload) => E, send: (b: number, events: E[]) => Promise<unknown>): Promise<void> {
    const o = this.o;
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < count) {
        const b = first + next++;
        const events: E[] = [];
        for (let k = 0; k < o.batchSize; k++) {
          const i = b * o.batchSize + k;
          events.push(event((i * this.stride) % o.channels, { i, t: performance.now(), pad: this.pad }));
        }
        await send(b, events).catch(() => this.publishErrors++);
      }
    };
    await Promise.all(Array.from({ length: o.inFlight }, worker));
  }

  /** The warm-up batches, sent and drained (not measured). `event` makes one event of a request for a channel; `send` sends request number `b` (from 0). */
  async warmUp<E>(event: (channel: number, payload: Payload) => E, send: (b: number, events: E[]) => Promise<unknown>): Promise<void> {
    await this.send(0, this.o.warmupBatches, event, send);
    await waitUntil(() => this.warmDelivered >= this.warmupEvents, () => this.warmDelivered, this.o.drainTimeoutMs);
  }

  /**
   * The next `count` measured batches (after those of earlier slices) between `meter`'s readings, drained; their time is
   * added to the measured phase's. Returns the meter's reading.
   */
  async slice<E, T>(count: number, event: (channel: number, payload: Payload) => E, send: (b: number, events: E[]) => Promise<unknown>, meter: Meter<T>): Promise<T> {
    const n = Math.min(count, this.o.batches - this.sent);
    const first = this.o.warmupBatches + this.sent;
    this.sent += n;
    const reading = await meter();
    const started = performance.now();
    await this.send(first, n, event, send);
    await waitUntil(() => this.delivered >= this.sent * this.o.batchSize, () => this.delivered, this.o.drainTimeoutMs);
    const end = Math.max(started, this.lastDeliveryAt);
    const spent = await reading.end();
    this.elapsedMs += end - started;
    return spent;
  }

  /** What the measured batches so far delivered. */
  deliveries(): BatchDeliveries {
    const timed = Math.min(this.delivered, this.latencies.length);
    return {
      published: this.measuredEvents,
      publishErrors: this.publishErrors,
      delivered: this.delivered,
      elapsedMs: this.elapsedMs,
      deliveriesPerSecond: (this.delivered * 1000) / this.elapsedMs,
      p50Ms: quantile(this.latencies, timed, 0.5),
      p99Ms: quantile(this.latencies, timed, 0.99),
    };
  }

  /** The warm-up, then every measured batch as one slice: what they delivered, and the meter's reading. */
  async run<E, T>(
    event: (channel: number, payload: Payload) => E,
    send: (b: number, events: E[]) => Promise<unknown>,
    meter: Meter<T>,
  ): Promise<{ deliveries: BatchDeliveries; spent: T }> {
    await this.warmUp(event, send);
    const spent = await this.slice(this.o.batches, event, send, meter);
    return { deliveries: this.deliveries(), spent };
  }
}
