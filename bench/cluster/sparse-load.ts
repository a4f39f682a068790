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
import { ChannelBatches, type BatchDeliveries, type ChannelBatchOptions } from '../fanout/channel-batches.js';
import { openAll, runLoadProcess } from '../fanout/child.js';
import { subscribe } from '../fanout/clients.js';
import { beaconSdk } from '../fanout/targets.js';
import { startCost, type PhaseCost } from './measure.js';

export interface SparseOptions extends ChannelBatchOptions {
  ports: number[];
  nodePids: number[];
  redisPorts: number[];
  metricsUrls: string[];
}

export interface SparseResult extends BatchDeliveries {
  /** Subscribed connections opened, one per channel. */
  connections: number;
  connectMs: number;
  /** Connections opened and subscribed per second (handshake, connection_established, subscribe, subscription_succeeded). */
  connectsPerSecond: number;
  /** What opening and subscribing the `channels` connections cost the servers. */
  connectCost: PhaseCost;
  /** What the measured phase cost the servers. */
  cost: PhaseCost;
}

const EVENT = 'bench';

async function main(o: SparseOptions): Promise<SparseResult> {
  const load = new ChannelBatches(o);
  const connectReadings = await startCost(o.nodePids, o.redisPorts, o.metricsUrls);
  const connectStart = performance.now();
  const clients = await openAll(o.channels, o.concurrency, (i) =>
    subscribe('beacon', o.ports[i % o.ports.length]!, { beaconChannel: `private-user-${i}`, beaconEvent: EVENT, event: EVENT }, load.onPayload),
  );
  const connectMs = performance.now() - connectStart;
  const connectCost = await connectReadings.end();
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const sdks = o.ports.map((port) => beaconSdk(port, agent));
  try {
    // Request b goes to node b mod nodes (round robin, as a load balancer would).
    const { deliveries, spent } = await load.run(
      (channel, data) => ({ channel: `private-user-${channel}`, name: EVENT, data }),
      (b, events) => sdks[b % sdks.length]!.triggerBatch(events),
      () => startCost(o.nodePids, o.redisPorts, o.metricsUrls),
    );
    return {
      connections: o.channels,
      connectMs,
      connectsPerSecond: (o.channels * 1000) / connectMs,
      connectCost,
      ...deliveries,
      cost: spent,
    };
  } finally {
    agent.destroy();
    for (const c of clients) c.close();
  }
}

runLoadProcess(main);
