/**
 * The single-node fan-out (bench/fanout/load.ts, http-publish scenario) on a topology of nodes: `subscribers` on the public
 * channel `bench`, spread round robin over the nodes; every message one `POST /apps/app-id/events` signed by the `pusher`
 * SDK, sent to the nodes round robin (as a load balancer would). Warm-up (closed loop), then the fixed-rate phase (server
 * CPU per delivery, latency), then a closed loop (deliveries/s). Around each measured phase it reads the CPU of every node
 * and redis-server and every node's adapter counters (measure.ts).
 *
 *   node --import tsx bench/cluster/fanout-load.ts '<ClusterFanoutOptions as JSON>'      (started by bench/cluster/run.ts)
 */
import { performance } from 'node:perf_hooks';
import { openAll, runLoadProcess } from '../fanout/child.js';
import { subscribe, type Closable } from '../fanout/clients.js';
import { FanoutPhases, type Phase, type PhaseDeliveries } from '../fanout/phases.js';
import { beaconPublisher, httpPublish } from '../fanout/scenario-http-publish.js';
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

/** A measured phase: its deliveries, and what it cost the nodes and Redis. */
export interface ClusterPhaseResult extends PhaseDeliveries {
  cost: PhaseCost;
}

export interface ClusterFanoutResult {
  connectMs: number;
  rate: ClusterPhaseResult;
  throughput: ClusterPhaseResult;
}

const CONNECT_CONCURRENCY = 50;

async function main(o: ClusterFanoutOptions): Promise<ClusterFanoutResult> {
  const run = new FanoutPhases({ warmup: o.warmupMessages, rate: o.rateMessages, throughput: o.messages }, o.subscribers);
  const { warmup, rate, throughput } = run.phase;
  // The single-node http-publish scenario's channel and publisher, over the nodes.
  const publisher = beaconPublisher(o.ports);
  let clients: Closable[] = [];
  try {
    const connectStart = performance.now();
    clients = await openAll(o.subscribers, CONNECT_CONCURRENCY, (i) =>
      subscribe('beacon', o.ports[i % o.ports.length]!, httpPublish.subscription, run.onPayload),
    );
    const connectMs = performance.now() - connectStart;

    const driver = run.drive((payload) => publisher.publish(payload), o);
    const measure = async (phase: Phase, work: () => Promise<void>): Promise<ClusterPhaseResult> => {
      const { deliveries, spent } = await driver.measure(phase, () => startCost(o.nodePids, o.redisPorts, o.metricsUrls), work);
      return { ...deliveries, cost: spent };
    };

    await driver.closedLoop(warmup);
    const rateResult = await measure(rate, driver.fixedRate(rate, o.ratePerSecond));
    const throughputResult = await measure(throughput, () => driver.closedLoop(throughput));
    return { connectMs, rate: rateResult, throughput: throughputResult };
  } finally {
    publisher.close();
    for (const c of clients) c.close();
  }
}

runLoadProcess(main);
