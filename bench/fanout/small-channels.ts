/**
 * Many small channels: `channels` connections, each the only subscriber of its own channel (Beacon `private-user-<i>`,
 * authorised as an auth endpoint would; the baselines a room `user-<i>`), and publishes of `batchSize` events to distinct
 * channels per HTTP request (Beacon `POST /apps/app-id/batch_events` signed by the `pusher` SDK; the baselines an unsigned
 * `POST /publish` with a `batch`), `inFlight` requests at a time, `batches` of them after `warmupBatches`. Every event has
 * one recipient, so the per-publish costs (lookup, encode, telemetry, span) weigh fully on each delivery.
 *
 *   node --import tsx bench/fanout/small-channels.ts '<SmallChannelsOptions as JSON>'      (started by bench/run.ts)
 */
import { Agent } from 'node:http';
import { performance } from 'node:perf_hooks';
import Pusher from 'pusher';
import { openAll, runLoadProcess } from './child.js';
import { subscribe, type Payload } from './clients.js';
import { cpuMs } from './proc-cpu.js';
import { quantile } from './stats.js';
import { BEACON_APP, protocolOf, type TargetId } from './targets.js';

export interface SmallChannelsOptions {
  target: TargetId;
  port: number;
  serverPid: number;
  channels: number;
  batches: number;
  warmupBatches: number;
  batchSize: number;
  inFlight: number;
  concurrency: number;
  payloadBytes: number;
  drainTimeoutMs: number;
}

export interface SmallChannelsResult {
  connectMs: number;
  expected: number;
  delivered: number;
  deliveriesPerSecond: number;
  serverCpuUsPerDelivery: number;
  p50Ms: number;
  p99Ms: number;
  publishErrors: number;
}

const EVENT = 'bench';
interface BatchEvent {
  channel: number;
  payload: Payload;
}

function publisher(target: TargetId, port: number): { send: (events: BatchEvent[]) => Promise<unknown>; close: () => void } {
  if (protocolOf(target) === 'beacon') {
    const agent = new Agent({ keepAlive: true, maxSockets: 64 });
    const pusher = new Pusher({ appId: BEACON_APP.id, key: BEACON_APP.key, secret: BEACON_APP.secret, host: '127.0.0.1', port: String(port), useTLS: false, agent });
    return {
      send: (events) => pusher.triggerBatch(events.map((e) => ({ channel: `private-user-${e.channel}`, name: EVENT, data: e.payload }))),
      close: () => agent.destroy(),
    };
  }
  const url = `http://127.0.0.1:${port}/publish`;
  return {
    send: async (events) => {
      const batch = events.map((e) => ({ room: `user-${e.channel}`, event: EVENT, data: e.payload }));
      const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ batch }) });
      if (!res.ok) throw new Error(`publish: HTTP ${res.status}`);
      await res.arrayBuffer();
    },
    close: () => undefined,
  };
}

async function main(o: SmallChannelsOptions): Promise<SmallChannelsResult> {
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
  const connectStart = performance.now();
  const clients = await openAll(o.channels, o.concurrency, (i) =>
    subscribe(o.target, o.port, { beaconChannel: `private-user-${i}`, beaconEvent: EVENT, event: EVENT, room: `user-${i}` }, onPayload),
  );
  const connectMs = performance.now() - connectStart;
  const pub = publisher(o.target, o.port);
  const pad = 'x'.repeat(Math.max(0, o.payloadBytes - 40));
  let publishErrors = 0;
  // Events go round the channels with a stride coprime to their count, so a batch never repeats a channel.
  const stride = 7919 % o.channels === 0 ? 1 : 7919;
  const runBatches = async (first: number, count: number): Promise<void> => {
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < count) {
        const b = first + next++;
        const events: BatchEvent[] = [];
        for (let k = 0; k < o.batchSize; k++) {
          const i = b * o.batchSize + k;
          events.push({ channel: (i * stride) % o.channels, payload: { i, t: performance.now(), pad } });
        }
        await pub.send(events).catch(() => publishErrors++);
      }
    };
    await Promise.all(Array.from({ length: o.inFlight }, worker));
  };
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
    const cpu0 = cpuMs(o.serverPid);
    const started = performance.now();
    await runBatches(o.warmupBatches, o.batches);
    await waitFor(() => delivered >= measuredEvents, () => delivered);
    const cpu1 = cpuMs(o.serverPid);
    const elapsed = (lastDeliveryAt > 0 ? lastDeliveryAt : performance.now()) - started;
    return {
      connectMs,
      expected: measuredEvents,
      delivered,
      deliveriesPerSecond: (delivered * 1000) / elapsed,
      serverCpuUsPerDelivery: ((cpu1 - cpu0) * 1000) / Math.max(1, delivered),
      p50Ms: quantile(latencies, Math.min(delivered, latencies.length), 0.5),
      p99Ms: quantile(latencies, Math.min(delivered, latencies.length), 0.99),
      publishErrors,
    };
  } finally {
    pub.close();
    for (const c of clients) c.close();
  }
}

runLoadProcess(main);
