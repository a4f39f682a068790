/**
 * The fan-out phase driver of the single-node (load.ts) and the cluster (cluster/fanout-load.ts) load processes: messages to
 * one channel numbered across consecutive phases, every delivery timed in its phase, a message complete once every
 * subscriber got it; phases driven in a closed loop or at a fixed rate, and measured between a meter's two readings. Every
 * wait is bounded by `drainTimeoutMs` without progress.
 */
import { performance } from 'node:perf_hooks';
import type { Payload } from './clients.js';
import { quantile } from './stats.js';

/** One phase: the messages `first` … `first + messages - 1`, and what their deliveries measured so far. */
export class Phase {
  readonly latencies: Float64Array;
  count = 0;
  complete = 0;
  published = 0;
  publishErrors = 0;
  /** Why the first failed publish failed. */
  firstPublishError: string | undefined;
  firstPublishAt = 0;
  lastDeliveryAt = 0;
  /** Measured in slices: the wall time of the slices so far (first publish → last delivery of each). */
  slicedMs = 0;
  onComplete: () => void = () => undefined;

  constructor(
    readonly first: number,
    readonly messages: number,
    subscribers: number,
  ) {
    this.latencies = new Float64Array(messages * subscribers);
  }
}

/** What every measured phase reports, in this order (each load process appends its servers' costs). */
export interface PhaseDeliveries {
  published: number;
  publishErrors: number;
  /** Why the first failed publish of the phase failed (absent when none did). */
  firstPublishError?: string;
  expected: number;
  delivered: number;
  /** First publish → last delivery. */
  elapsedMs: number;
  deliveriesPerSecond: number;
  p50Ms: number;
  p99Ms: number;
}

/** Sends one message to the server; a throw, or a returned promise that rejects, counts as a publish error. */
export type Send = (payload: Payload) => Promise<unknown> | void;

/** Read at the start of a measured phase; `end()` reads again and returns what the phase cost. */
export type Meter<T> = () => Promise<{ end(): Promise<T> | T }> | { end(): Promise<T> | T };

/** How the phases are driven. */
export interface DriveOptions {
  /** Closed loop: messages published and not yet received by every subscriber, at most. */
  window: number;
  /** JSON payload size (the index and publish time, padded). */
  payloadBytes: number;
  /** Longest a phase waits for its last delivery without progress. */
  drainTimeoutMs: number;
}

/** The receiving side: the phases, named in publishing order, and the subscribers' `onPayload`. */
export class FanoutPhases<K extends string> {
  /** Each phase by name. */
  readonly phase: Record<K, Phase>;
  /** The phases, the last first: a message belongs to the first whose range starts at or before it. */
  private readonly lastFirst: Phase[];
  private readonly received: Uint32Array;

  constructor(
    counts: Record<K, number>,
    private readonly subscribers: number,
  ) {
    const phase = {} as Record<K, Phase>;
    let first = 0;
    for (const name of Object.keys(counts) as K[]) {
      phase[name] = new Phase(first, counts[name], subscribers);
      first += counts[name];
    }
    this.phase = phase;
    this.lastFirst = (Object.values(phase) as Phase[]).reverse();
    this.received = new Uint32Array(first);
  }

  /** Times one delivery in its phase; the subscribers call it for every benchmark message. */
  readonly onPayload = (p: Payload): void => {
    const now = performance.now();
    let k = 0;
    while (k < this.lastFirst.length - 1 && p.i < this.lastFirst[k]!.first) k++;
    const phase = this.lastFirst[k]!;
    if (phase.count < phase.latencies.length) phase.latencies[phase.count++] = now - p.t;
    phase.lastDeliveryAt = now;
    if (++this.received[p.i]! === this.subscribers) {
      phase.complete++;
      phase.onComplete();
    }
  };

  /** The publishing side, once the publisher is connected: every message goes through `send`. */
  drive(send: Send, options: DriveOptions): PhaseDriver {
    return new PhaseDriver(this.subscribers, send, options);
  }
}

/** Counts a failed publish of `phase`, keeping why the first one failed. */
function failed(phase: Phase, err: unknown): void {
  phase.publishErrors++;
  phase.firstPublishError ??= err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

/** Publishes the messages of a phase, waits for their deliveries, measures. */
export class PhaseDriver {
  private readonly pad: string;

  constructor(
    private readonly subscribers: number,
    private readonly send: Send,
    private readonly o: DriveOptions,
  ) {
    this.pad = 'x'.repeat(Math.max(0, o.payloadBytes - 40));
  }

  /** Publishes message `i` of `phase`, carrying the publish time. */
  private publish(phase: Phase, i: number): void {
    phase.published++;
    try {
      const pending = this.send({ i, t: performance.now(), pad: this.pad });
      if (pending !== undefined) pending.catch((err: unknown) => failed(phase, err));
    } catch (err) {
      failed(phase, err);
    }
  }

  /**
   * Resolves when `until` messages of the phase reached every subscriber, or after `drainTimeoutMs` without progress.
   */
  private drained(phase: Phase, pump: () => void, until: number): Promise<void> {
    return new Promise((resolve) => {
      let lastProgress = performance.now();
      let lastComplete = -1;
      const timer = setInterval(() => {
        if (phase.complete !== lastComplete) {
          lastComplete = phase.complete;
          lastProgress = performance.now();
        } else if (performance.now() - lastProgress > this.o.drainTimeoutMs) {
          clearInterval(timer);
          resolve();
        }
      }, 50);
      const check = (): void => {
        if (phase.complete >= until) {
          clearInterval(timer);
          resolve();
        }
      };
      phase.onComplete = () => {
        pump();
        check();
      };
      pump();
      check();
    });
  }

  /** A closed loop: at most `window` messages in flight (published, not yet received by every subscriber). */
  closedLoop(phase: Phase): Promise<void> {
    return this.slice(phase, phase.messages)();
  }

  /** Publishes the phase's messages on an absolute schedule (a late tick does not slow the rate down), then drains. */
  fixedRate(phase: Phase, perSecond: number): () => Promise<void> {
    return this.slice(phase, phase.messages, perSecond);
  }

  /**
   * Publishes the next `count` messages of `phase` (after those of its earlier slices) as one slice, at `perSecond` on an
   * absolute schedule from now or, without a rate, in a closed loop; resolves once they are delivered (bounded as a
   * phase). Measured with `measureSlice`.
   */
  slice(phase: Phase, count: number, perSecond?: number): () => Promise<void> {
    return async () => {
      const from = phase.published;
      const n = Math.min(count, phase.messages - from);
      const until = phase.complete + n;
      if (perSecond === undefined) {
        let k = 0;
        await this.drained(
          phase,
          () => {
            // In flight: published and not yet received by every subscriber.
            while (k < n && from + k - phase.complete < this.o.window) this.publish(phase, phase.first + from + k++);
          },
          until,
        );
        return;
      }
      const start = performance.now();
      for (let k = 0; k < n; k++) {
        const wait = start + (k * 1000) / perSecond - performance.now();
        if (wait > 1) await new Promise((r) => setTimeout(r, wait));
        this.publish(phase, phase.first + from + k);
      }
      await this.drained(phase, () => undefined, until);
    };
  }

  /**
   * Runs one slice of `phase` (`slice(...)`), `meter` read right before its first publish and after its last delivery;
   * its wall time is added to the phase's. `deliveries(phase)` gives the phase's figures once its slices are done.
   */
  async measureSlice<T>(phase: Phase, meter: Meter<T>, run: () => Promise<void>): Promise<T> {
    const reading = await meter();
    const start = performance.now();
    if (phase.firstPublishAt === 0) phase.firstPublishAt = start;
    await run();
    const end = Math.max(start, phase.lastDeliveryAt);
    const spent = await reading.end();
    phase.slicedMs += end - start;
    return spent;
  }

  /** The figures of a phase measured in slices: its deliveries over the slices' summed wall time. */
  deliveries(phase: Phase): PhaseDeliveries {
    const delivered = phase.count;
    return {
      published: phase.published,
      publishErrors: phase.publishErrors,
      ...(phase.firstPublishError === undefined ? {} : { firstPublishError: phase.firstPublishError }),
      expected: phase.messages * this.subscribers,
      delivered,
      elapsedMs: phase.slicedMs,
      deliveriesPerSecond: (delivered * 1000) / phase.slicedMs,
      p50Ms: quantile(phase.latencies, delivered, 0.5),
      p99Ms: quantile(phase.latencies, delivered, 0.99),
    };
  }

  /** Runs `run` as the measured window of `phase`, `meter` read right before its first publish and after its last delivery. */
  async measure<T>(phase: Phase, meter: Meter<T>, run: () => Promise<void>): Promise<{ deliveries: PhaseDeliveries; spent: T }> {
    const reading = await meter();
    phase.firstPublishAt = performance.now();
    await run();
    const end = phase.lastDeliveryAt > 0 ? phase.lastDeliveryAt : performance.now();
    const spent = await reading.end();
    const elapsedMs = end - phase.firstPublishAt;
    const delivered = phase.count;
    const deliveries: PhaseDeliveries = {
      published: phase.published,
      publishErrors: phase.publishErrors,
      ...(phase.firstPublishError === undefined ? {} : { firstPublishError: phase.firstPublishError }),
      expected: phase.messages * this.subscribers,
      delivered,
      elapsedMs,
      deliveriesPerSecond: (delivered * 1000) / elapsedMs,
      p50Ms: quantile(phase.latencies, delivered, 0.5),
      p99Ms: quantile(phase.latencies, delivered, 0.99),
    };
    return { deliveries, spent };
  }
}
