/**
 * The fan-out load process of one (scenario, target) in a run: connects `subscribers` clients to the one channel/room, then
 *   0. a warm-up, not measured: first `warmupRequests` publishes to a channel nobody subscribes to (the scenario's warm-up
 *      publisher, 4 at a time), so the publish path runs at its steady state — V8 optimises a function only
 *      after thousands of calls, and Beacon's signed HTTP path still ran mostly unoptimised after the 100 publishes that
 *      were the whole warm-up until then; then `warmupMessages` through the closed loop below (the fan-out itself, HTTP
 *      keep-alive sockets, lazy modules);
 *   1. the rate phase: `rateMessages` messages published at a fixed `ratePerSecond` (server CPU per delivery; at the default
 *      50/s × 1000 subscribers the servers and this process queue, so its latency is mostly queueing);
 *   2. the latency phase: `latencyMessages` published at a low fixed `latencyPerSecond` that every target and this process
 *      keep up with (their CPU shares are in the result): publish → receive p50/p99 of a server that is not saturated;
 *   3. the throughput phase: `messages` published as fast as they are delivered, at most `window` messages not yet received
 *      by every subscriber (a closed loop, so nothing queues without bound);
 * Phases 1–3 run in slices the runner asks for (`serveSteps` of child.ts): a slice is a few dozen publishes, and the
 * runner lets every target's load process take one in turn, so a slow stretch of the shared machine weighs on every
 * target alike; `finish` returns the phases' results. Latency is receive time minus the publish time carried in the
 * payload (same process, same clock); server CPU is the /proc/<pid>/stat delta over each slice, summed. Every wait is
 * bounded; 127.0.0.1 only.
 *
 *   started by bench/run.ts (startStepped of child.ts) with '<LoadOptions as JSON>' and an IPC channel
 */
import { performance } from 'node:perf_hooks';
import { serveSteps, type Stepped } from './child.js';
import type { Closable } from './clients.js';
import { subscribe } from './clients.js';
import { FanoutPhases, type Phase, type PhaseDeliveries } from './phases.js';
import { cpuMs } from './proc-cpu.js';
import type { Publisher } from './scenario.js';
import { scenarioById } from './scenarios.js';
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
  /** Publishes to a channel without subscribers before `warmupMessages` (0: none); scenarios without a warm-up publisher skip it. */
  warmupRequests: number;
  window: number;
  payloadBytes: number;
  /** Longest a phase may wait for its last delivery after its last publish. */
  drainTimeoutMs: number;
}

export interface PhaseResult extends PhaseDeliveries {
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
/** Requests in flight during the request-path warm-up. */
const WARMUP_IN_FLIGHT = 4;

/** `count` publishes through `publisher`, `WARMUP_IN_FLIGHT` at a time; a failed one fails the run. */
async function warmRequestPath(publisher: Publisher, count: number, payloadBytes: number): Promise<void> {
  const pad = 'x'.repeat(Math.max(0, payloadBytes - 40));
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      await publisher.publish({ i, t: performance.now(), pad });
    }
  };
  await Promise.all(Array.from({ length: WARMUP_IN_FLIGHT }, lane));
}

/** The measured phases, each run in slices the runner asks for (bench/run.ts). */
export type LoadStep = 'rate' | 'latency' | 'throughput';

async function setup(options: LoadOptions): Promise<Stepped<LoadStep, LoadResult>> {
  const scenario = scenarioById(options.scenario);
  const { subscribers: n } = options;
  const run = new FanoutPhases(
    { warmup: options.warmupMessages, rate: options.rateMessages, latency: options.latencyMessages, throughput: options.messages },
    n,
  );
  const { warmup } = run.phase;

  const clients: Closable[] = [];
  const close = (): void => {
    for (const client of clients) client.close();
  };
  try {
    const connectStart = performance.now();
    for (let i = 0; i < n; i += CONNECT_CONCURRENCY) {
      const batch = Array.from({ length: Math.min(CONNECT_CONCURRENCY, n - i) }, () =>
        subscribe(options.target, options.port, scenario.subscription, run.onPayload),
      );
      clients.push(...(await Promise.all(batch)));
    }
    const publisher = await scenario.connectPublisher(options.target, options.port);
    clients.push(publisher);
    const connectMs = performance.now() - connectStart;
    if (options.warmupRequests > 0 && scenario.connectWarmupPublisher !== undefined) {
      const warm = await scenario.connectWarmupPublisher(options.target, options.port);
      try {
        await warmRequestPath(warm, options.warmupRequests, options.payloadBytes);
      } finally {
        warm.close();
      }
    }
    const driver = run.drive((payload) => publisher.publish(payload), options);
    await driver.closedLoop(warmup);

    /** The server's CPU and this process's own over each phase, summed over its slices. */
    const spent: Record<LoadStep, { serverMs: number; loadMs: number }> = {
      rate: { serverMs: 0, loadMs: 0 },
      latency: { serverMs: 0, loadMs: 0 },
      throughput: { serverMs: 0, loadMs: 0 },
    };
    const cpu = () => {
      const cpu0 = cpuMs(options.serverPid);
      const load0 = process.cpuUsage();
      return {
        end: () => {
          const load = process.cpuUsage(load0);
          return { serverMs: cpuMs(options.serverPid) - cpu0, loadMs: (load.user + load.system) / 1000 };
        },
      };
    };
    /** Phase 1 at a fixed rate (CPU per delivery; the servers and this process queue, so latency means little), phase 2 at a low one (latency), phase 3 in a closed loop. */
    const perSecond: Record<LoadStep, number | undefined> = {
      rate: options.ratePerSecond,
      latency: options.latencyPerSecond,
      throughput: undefined,
    };
    const result = (step: LoadStep): PhaseResult => {
      const deliveries = driver.deliveries(run.phase[step]);
      return {
        ...deliveries,
        serverCpuMs: spent[step].serverMs,
        serverCpuUsPerDelivery: (spent[step].serverMs * 1000) / Math.max(1, deliveries.delivered),
        loadCpuShare: spent[step].loadMs / Math.max(1, deliveries.elapsedMs),
      };
    };
    return {
      step: async (step, count) => {
        const phase: Phase = run.phase[step];
        const used = await driver.measureSlice(phase, cpu, driver.slice(phase, count, perSecond[step]));
        spent[step].serverMs += used.serverMs;
        spent[step].loadMs += used.loadMs;
      },
      finish: async () => {
        close();
        return { connectMs, rate: result('rate'), latency: result('latency'), throughput: result('throughput') };
      },
    };
  } catch (err) {
    close();
    throw err;
  }
}

serveSteps(setup);
