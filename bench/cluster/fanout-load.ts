/**
 * The single-node fan-out (bench/fanout/load.ts, http-publish scenario) on a topology of nodes: `subscribers` on the public
 * channel `bench`, spread round robin over the nodes; every message one `POST /apps/app-id/events` signed by the `pusher`
 * SDK, sent to the nodes round robin (as a load balancer would). Warm-up (closed loop), then the fixed-rate phase (server
 * CPU per delivery, latency), then a closed loop (deliveries/s). Around each measured phase it reads the CPU of every node
 * and redis-server and every node's adapter counters (measure.ts).
 *
 *   node --import tsx bench/cluster/fanout-load.ts '<ClusterFanoutOptions as JSON>'      (started by bench/cluster/run.ts)
 */
import { Agent } from 'node:http';
import { performance } from 'node:perf_hooks';
import Pusher from 'pusher';
import { openAll, runLoadProcess } from '../fanout/child.js';
import { subscribe, type Closable, type Payload } from '../fanout/clients.js';
import { quantile } from '../fanout/stats.js';
import { BEACON_APP } from '../fanout/targets.js';
import { startCost, type PhaseCost } from './measure.js';

export interface ClusterFanoutOptions {
  ports: number[];
  nodePids: number[];
  redisPorts: number[];
  metricsUrls: string[];
  subscribers: number;
  ratePerSecond: number;
  rateMessages: number;
  messages: number;
  warmupMessages: number;
  window: number;
  payloadBytes: number;
  drainTimeoutMs: number;
}

export interface ClusterPhaseResult {
  published: number;
  publishErrors: number;
  expected: number;
  delivered: number;
  elapsedMs: number;
  deliveriesPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  cost: PhaseCost;
}

export interface ClusterFanoutResult {
  connectMs: number;
  rate: ClusterPhaseResult;
  throughput: ClusterPhaseResult;
}

const CHANNEL = 'bench';
const EVENT = 'bench';
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
    subscribers: number,
  ) {
    this.latencies = new Float64Array(messages * subscribers);
  }
}

async function main(o: ClusterFanoutOptions): Promise<ClusterFanoutResult> {
  const n = o.subscribers;
  const total = o.warmupMessages + o.rateMessages + o.messages;
  const received = new Uint32Array(total);
  const warmup = new Phase(0, o.warmupMessages, n);
  const rate = new Phase(warmup.first + warmup.messages, o.rateMessages, n);
  const throughput = new Phase(rate.first + rate.messages, o.messages, n);
  const pad = 'x'.repeat(Math.max(0, o.payloadBytes - 40));

  const onPayload = (p: Payload): void => {
    const now = performance.now();
    const phase = p.i >= throughput.first ? throughput : p.i >= rate.first ? rate : warmup;
    if (phase.count < phase.latencies.length) phase.latencies[phase.count++] = now - p.t;
    phase.lastDeliveryAt = now;
    if (++received[p.i]! === n) {
      phase.complete++;
      phase.onComplete();
    }
  };

  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const sdks = o.ports.map(
    (port) => new Pusher({ appId: BEACON_APP.id, key: BEACON_APP.key, secret: BEACON_APP.secret, host: '127.0.0.1', port: String(port), useTLS: false, agent }),
  );
  let clients: Closable[] = [];
  try {
    const connectStart = performance.now();
    clients = await openAll(n, CONNECT_CONCURRENCY, (i) =>
      subscribe('beacon', o.ports[i % o.ports.length]!, { beaconChannel: CHANNEL, beaconEvent: EVENT, event: EVENT }, onPayload),
    );
    const connectMs = performance.now() - connectStart;

    let nextNode = 0;
    const publish = (phase: Phase, i: number): void => {
      phase.published++;
      const sdk = sdks[nextNode++ % sdks.length]!;
      sdk.trigger(CHANNEL, EVENT, { i, t: performance.now(), pad }).catch(() => phase.publishErrors++);
    };

    /** Resolves when every message of the phase reached every subscriber, or after `drainTimeoutMs` without progress. */
    const drained = (phase: Phase, pump: () => void): Promise<void> =>
      new Promise((resolve) => {
        let lastProgress = performance.now();
        let lastComplete = -1;
        const timer = setInterval(() => {
          if (phase.complete !== lastComplete) {
            lastComplete = phase.complete;
            lastProgress = performance.now();
          } else if (performance.now() - lastProgress > o.drainTimeoutMs) {
            clearInterval(timer);
            resolve();
          }
        }, 50);
        const check = (): void => {
          if (phase.complete >= phase.messages) {
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

    const measure = async (phase: Phase, run: () => Promise<void>): Promise<ClusterPhaseResult> => {
      const cost = await startCost(o.nodePids, o.redisPorts, o.metricsUrls);
      phase.firstPublishAt = performance.now();
      await run();
      const end = phase.lastDeliveryAt > 0 ? phase.lastDeliveryAt : performance.now();
      const spent = await cost.end();
      const elapsedMs = end - phase.firstPublishAt;
      return {
        published: phase.published,
        publishErrors: phase.publishErrors,
        expected: phase.messages * n,
        delivered: phase.count,
        elapsedMs,
        deliveriesPerSecond: (phase.count * 1000) / elapsedMs,
        p50Ms: quantile(phase.latencies, phase.count, 0.5),
        p99Ms: quantile(phase.latencies, phase.count, 0.99),
        cost: spent,
      };
    };

    /** A closed loop: at most `window` messages in flight (published, not yet received by every subscriber). */
    const closedLoop = (phase: Phase): Promise<void> => {
      let next = 0;
      return drained(phase, () => {
        while (next < phase.messages && next - phase.complete < o.window) publish(phase, phase.first + next++);
      });
    };

    await closedLoop(warmup);
    // Fixed rate, on an absolute schedule so a late tick does not slow the rate down.
    const rateResult = await measure(rate, async () => {
      const intervalMs = 1000 / o.ratePerSecond;
      for (let k = 0; k < rate.messages; k++) {
        const wait = rate.firstPublishAt + k * intervalMs - performance.now();
        if (wait > 1) await new Promise((r) => setTimeout(r, wait));
        publish(rate, rate.first + k);
      }
      await drained(rate, () => undefined);
    });
    const throughputResult = await measure(throughput, () => closedLoop(throughput));
    return { connectMs, rate: rateResult, throughput: throughputResult };
  } finally {
    agent.destroy();
    for (const c of clients) c.close();
  }
}

runLoadProcess(main);
