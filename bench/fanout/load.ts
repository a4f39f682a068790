/**
 * The load process for one (scenario, target) run: connects `subscribers` clients to the one channel/room, then
 *   0. a warm-up, not measured: `warmupMessages` through the closed loop below (JIT, HTTP keep-alive sockets, lazy modules);
 *   1. the rate phase: `rateMessages` messages published at a fixed `ratePerSecond` (server CPU per delivery; at the default
 *      50/s × 1000 subscribers the servers and this process queue, so its latency is mostly queueing);
 *   2. the latency phase: `latencyMessages` published at a low fixed `latencyPerSecond` that every target and this process
 *      keep up with (their CPU shares are in the result): publish → receive p50/p99 of a server that is not saturated;
 *   3. the throughput phase: `messages` published as fast as they are delivered, at most `window` messages not yet received
 *      by every subscriber (a closed loop, so nothing queues without bound);
 * and prints one `RESULT {json}` line. Latency is receive time minus the publish time carried in the payload (same process,
 * same clock); server CPU is the /proc/<pid>/stat delta over each phase. Every wait is bounded; 127.0.0.1 only.
 *
 *   node --import tsx bench/fanout/load.ts '<LoadOptions as JSON>'      (started by bench/run.ts)
 */
import { performance } from 'node:perf_hooks';
import type { Closable, Payload } from './clients.js';
import { subscribe } from './clients.js';
import { cpuMs } from './proc-cpu.js';
import { scenarioById } from './scenarios.js';
import { quantile } from './stats.js';
import type { TargetId } from './targets.js';

export interface LoadOptions {
  scenario: string;
  target: TargetId;
  port: number;
  serverPid: number;
  subscribers: number;
  rateMessages: number;
  ratePerSecond: number;
  /** Publishes of the latency phase, at `latencyPerSecond`: a rate every target and the load process keep up with. */
  latencyMessages: number;
  latencyPerSecond: number;
  messages: number;
  warmupMessages: number;
  window: number;
  payloadBytes: number;
  /** Longest a phase may wait for its last delivery after its last publish. */
  drainTimeoutMs: number;
}

export interface PhaseResult {
  published: number;
  publishErrors: number;
  expected: number;
  delivered: number;
  /** First publish → last delivery. */
  elapsedMs: number;
  deliveriesPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  serverCpuMs: number;
  serverCpuUsPerDelivery: number;
  /** CPU the load process itself used, as a share of one core over the phase (near 1: the client side was the limit). */
  loadCpuShare: number;
}

export interface LoadResult {
  connectMs: number;
  rate: PhaseResult;
  /** The low fixed rate: publish → receive latency that is not the queueing of a saturated server or load process. */
  latency: PhaseResult;
  throughput: PhaseResult;
}

const CONNECT_CONCURRENCY = 50;

class Phase {
  readonly latencies: Float64Array;
  count = 0;
  complete = 0;
  published = 0;
  publishErrors = 0;
  firstPublishAt = 0;
  lastDeliveryAt = 0;
  onComplete: () => void = () => undefined;

  constructor(
    readonly first: number,
    readonly messages: number,
    readonly subscribers: number,
  ) {
    this.latencies = new Float64Array(messages * subscribers);
  }
}

async function main(options: LoadOptions): Promise<LoadResult> {
  const scenario = scenarioById(options.scenario);
  const { subscribers: n } = options;
  const total = options.warmupMessages + options.rateMessages + options.latencyMessages + options.messages;
  const received = new Uint32Array(total);
  const warmup = new Phase(0, options.warmupMessages, n);
  const rate = new Phase(warmup.first + warmup.messages, options.rateMessages, n);
  const latency = new Phase(rate.first + rate.messages, options.latencyMessages, n);
  const throughput = new Phase(latency.first + latency.messages, options.messages, n);
  const pad = 'x'.repeat(Math.max(0, options.payloadBytes - 40));

  const onPayload = (p: Payload): void => {
    const now = performance.now();
    const phase = p.i >= throughput.first ? throughput : p.i >= latency.first ? latency : p.i >= rate.first ? rate : warmup;
    if (phase.count < phase.latencies.length) phase.latencies[phase.count++] = now - p.t;
    phase.lastDeliveryAt = now;
    if (++received[p.i]! === n) {
      phase.complete++;
      phase.onComplete();
    }
  };

  const clients: Closable[] = [];
  try {
    const connectStart = performance.now();
    for (let i = 0; i < n; i += CONNECT_CONCURRENCY) {
      const batch = Array.from({ length: Math.min(CONNECT_CONCURRENCY, n - i) }, () =>
        subscribe(options.target, options.port, scenario.subscription, onPayload),
      );
      clients.push(...(await Promise.all(batch)));
    }
    const publisher = await scenario.connectPublisher(options.target, options.port);
    clients.push(publisher);
    const connectMs = performance.now() - connectStart;

    const publish = (phase: Phase, i: number): void => {
      phase.published++;
      try {
        const pending = publisher.publish({ i, t: performance.now(), pad });
        if (pending !== undefined) pending.catch(() => phase.publishErrors++);
      } catch {
        phase.publishErrors++;
      }
    };

    /** Resolves when every message of the phase reached every subscriber, or after `drainTimeoutMs` without progress. */
    const drained = (phase: Phase, pump: () => void): Promise<void> =>
      new Promise((resolve) => {
        const check = (): void => {
          if (phase.complete >= phase.messages) {
            clearInterval(timer);
            resolve();
          }
        };
        const started = performance.now();
        let lastProgress = started;
        let lastComplete = -1;
        // Bounded: gives up after drainTimeoutMs without progress.
        const timer = setInterval(() => {
          if (phase.complete !== lastComplete) {
            lastComplete = phase.complete;
            lastProgress = performance.now();
          } else if (performance.now() - lastProgress > options.drainTimeoutMs) {
            clearInterval(timer);
            resolve();
          }
        }, 50);
        phase.onComplete = () => {
          pump();
          check();
        };
        pump();
        check();
      });

    const measure = async (phase: Phase, run: () => Promise<void>): Promise<PhaseResult> => {
      const cpu0 = cpuMs(options.serverPid);
      const load0 = process.cpuUsage();
      phase.firstPublishAt = performance.now();
      await run();
      const cpu1 = cpuMs(options.serverPid);
      const load = process.cpuUsage(load0);
      const end = phase.lastDeliveryAt > 0 ? phase.lastDeliveryAt : performance.now();
      const elapsedMs = end - phase.firstPublishAt;
      const delivered = phase.count;
      return {
        published: phase.published,
        publishErrors: phase.publishErrors,
        expected: phase.messages * n,
        delivered,
        elapsedMs,
        deliveriesPerSecond: (delivered * 1000) / elapsedMs,
        p50Ms: quantile(phase.latencies, delivered, 0.5),
        p99Ms: quantile(phase.latencies, delivered, 0.99),
        serverCpuMs: cpu1 - cpu0,
        serverCpuUsPerDelivery: ((cpu1 - cpu0) * 1000) / Math.max(1, delivered),
        loadCpuShare: (load.user + load.system) / 1000 / Math.max(1, performance.now() - phase.firstPublishAt),
      };
    };

    /** A closed loop: at most `window` messages in flight (published, not yet received by every subscriber). */
    const closedLoop = (phase: Phase): Promise<void> => {
      let next = 0;
      return drained(phase, () => {
        while (next < phase.messages && next - phase.complete < options.window) publish(phase, phase.first + next++);
      });
    };

    await closedLoop(warmup);

    /** Publishes the phase's messages on an absolute schedule (a late tick does not slow the rate down), then drains. */
    const fixedRate = (phase: Phase, perSecond: number) => async (): Promise<void> => {
      const intervalMs = 1000 / perSecond;
      for (let k = 0; k < phase.messages; k++) {
        const wait = phase.firstPublishAt + k * intervalMs - performance.now();
        if (wait > 1) await new Promise((r) => setTimeout(r, wait));
        publish(phase, phase.first + k);
      }
      await drained(phase, () => undefined);
    };

    // Phase 1: fixed rate (CPU per delivery); at this rate the servers and the load process queue, so latency means little.
    const rateResult = await measure(rate, fixedRate(rate, options.ratePerSecond));
    // Phase 2: a low fixed rate, for the latency of a server that keeps up.
    const latencyResult = await measure(latency, fixedRate(latency, options.latencyPerSecond));
    // Phase 3: as fast as the closed loop goes.
    const throughputResult = await measure(throughput, () => closedLoop(throughput));
    return { connectMs, rate: rateResult, latency: latencyResult, throughput: throughputResult };
  } finally {
    for (const client of clients) client.close();
  }
}

const options = JSON.parse(process.argv[2] ?? '{}') as LoadOptions;
main(options).then(
  (result) => {
    process.stdout.write(`RESULT ${JSON.stringify(result)}\n`, () => process.exit(0));
  },
  (err: unknown) => {
    process.stderr.write(`load: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`, () => process.exit(1));
  },
);
