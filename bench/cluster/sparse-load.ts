/**
 * Sparse channels on a topology of nodes: `channels` connections, each the only subscriber of its own `private-user-<i>`
 * (authorised as an auth endpoint would), channel i on node i mod nodes; publishes of `batchSize` events to distinct
 * channels per `POST /apps/app-id/batch_events` (signed by the `pusher` SDK), sent to the nodes round robin, `inFlight`
 * requests at a time, `batches` of them measured after `warmupBatches`. Around the connections' opening (connects/s, and
 * what a subscription costs Redis) and around the measured phase it reads every node's
 * and redis-server's CPU and every node's `websocket_adapter_messages_total`: with interest routing a node receives only
 * the publications of the channels it serves (~1/nodes of them), not all.
 *
 *   node --import tsx bench/cluster/sparse-load.ts '<SparseOptions as JSON>'      (started by bench/cluster/run.ts)
 */
import { Agent } from 'node:http';
import { performance } from 'node:perf_hooks';
import Pusher from 'pusher';
import { openAll, runLoadProcess } from '../fanout/child.js';
import { subscribe, type Payload } from '../fanout/clients.js';
import { quantile } from '../fanout/stats.js';
import { BEACON_APP } from '../fanout/targets.js';
import { startCost, type PhaseCost } from './measure.js';

export interface SparseOptions {
  ports: number[];
  nodePids: number[];
  redisPorts: number[];
  metricsUrls: string[];
  channels: number;
  batches: number;
  warmupBatches: number;
  batchSize: number;
  inFlight: number;
  concurrency: number;
  payloadBytes: number;
  drainTimeoutMs: number;
}

export interface SparseResult {
  /** Subscribed connections opened, one per channel. */
  connections: number;
  connectMs: number;
  /** Connections opened and subscribed per second (handshake, connection_established, subscribe, subscription_succeeded). */
  connectsPerSecond: number;
  /** What opening and subscribing the `channels` connections cost the servers. */
  connectCost: PhaseCost;
  /** Events published in the measured phase (each to one channel, one subscriber). */
  published: number;
  publishErrors: number;
  delivered: number;
  elapsedMs: number;
  deliveriesPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  cost: PhaseCost;
}

const EVENT = 'bench';

async function main(o: SparseOptions): Promise<SparseResult> {
  const warmupEvents = o.warmupBatches * o.batchSize;
  const measuredEvents = o.batches * o.batchSize;
  const latencies = new Float64Array(measuredEvents);
  let delivered = 0;
  let warmDelivered = 0;
  let lastDeliveryAt = 0;
  const onPayload = (p: Payload): void => {
    if (p.i < warmupEvents) {
      warmDelivered++;
      return;
    }
    const now = performance.now();
    if (delivered < latencies.length) latencies[delivered] = now - p.t;
    delivered++;
    lastDeliveryAt = now;
  };
  const connectReadings = await startCost(o.nodePids, o.redisPorts, o.metricsUrls);
  const connectStart = performance.now();
  const clients = await openAll(o.channels, o.concurrency, (i) =>
    subscribe('beacon', o.ports[i % o.ports.length]!, { beaconChannel: `private-user-${i}`, beaconEvent: EVENT, event: EVENT }, onPayload),
  );
  const connectMs = performance.now() - connectStart;
  const connectCost = await connectReadings.end();
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const sdks = o.ports.map(
    (port) => new Pusher({ appId: BEACON_APP.id, key: BEACON_APP.key, secret: BEACON_APP.secret, host: '127.0.0.1', port: String(port), useTLS: false, agent }),
  );
  const pad = 'x'.repeat(Math.max(0, o.payloadBytes - 40));
  let publishErrors = 0;
  // Events go round the channels with a stride coprime to their count, so a batch never repeats a channel and every node
  // serves its share of every batch.
  const stride = 7919 % o.channels === 0 ? 1 : 7919;
  const runBatches = async (first: number, count: number): Promise<void> => {
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < count) {
        const b = first + next++;
        const events = [];
        for (let k = 0; k < o.batchSize; k++) {
          const i = b * o.batchSize + k;
          events.push({ channel: `private-user-${(i * stride) % o.channels}`, name: EVENT, data: { i, t: performance.now(), pad } });
        }
        await sdks[b % sdks.length]!.triggerBatch(events).catch(() => publishErrors++);
      }
    };
    await Promise.all(Array.from({ length: o.inFlight }, worker));
  };
  /** Bounded: returns once `done()`, or after `drainTimeoutMs` without progress. */
  const waitFor = async (done: () => boolean, progress: () => number): Promise<void> => {
    let last = -1;
    let lastAt = performance.now();
    while (!done()) {
      if (progress() !== last) {
        last = progress();
        lastAt = performance.now();
      } else if (performance.now() - lastAt > o.drainTimeoutMs) return;
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  try {
    await runBatches(0, o.warmupBatches);
    await waitFor(() => warmDelivered >= warmupEvents, () => warmDelivered);
    const cost = await startCost(o.nodePids, o.redisPorts, o.metricsUrls);
    const started = performance.now();
    await runBatches(o.warmupBatches, o.batches);
    await waitFor(() => delivered >= measuredEvents, () => delivered);
    const end = lastDeliveryAt > 0 ? lastDeliveryAt : performance.now();
    const spent = await cost.end();
    const elapsedMs = end - started;
    return {
      connections: o.channels,
      connectMs,
      connectsPerSecond: (o.channels * 1000) / connectMs,
      connectCost,
      published: measuredEvents,
      publishErrors,
      delivered,
      elapsedMs,
      deliveriesPerSecond: (delivered * 1000) / elapsedMs,
      p50Ms: quantile(latencies, Math.min(delivered, latencies.length), 0.5),
      p99Ms: quantile(latencies, Math.min(delivered, latencies.length), 0.99),
      cost: spent,
    };
  } finally {
    agent.destroy();
    for (const c of clients) c.close();
  }
}

runLoadProcess(main);
