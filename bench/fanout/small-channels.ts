/**
 * Many small channels: `channels` connections, each the only subscriber of its own channel (Beacon `private-user-<i>`,
 * authorised as an auth endpoint would; the baselines a room `user-<i>`), and publishes of `batchSize` events to distinct
 * channels per HTTP request (Beacon `POST /apps/app-id/batch_events` signed by the `pusher` SDK; the baselines an unsigned
 * `POST /publish` with a `batch`), `inFlight` requests at a time, `batches` of them after `warmupBatches`. Every event has
 * one recipient, so the per-publish costs (lookup, encode, telemetry, span) weigh fully on each delivery. The measured
 * batches are sent in slices the runner asks for (as load.ts), server CPU and time summed over them.
 *
 *   started by bench/run.ts (startStepped of child.ts) with '<SmallChannelsOptions as JSON>' and an IPC channel
 */
import { Agent } from 'node:http';
import { performance } from 'node:perf_hooks';
import { ChannelBatches, type ChannelBatchOptions } from './channel-batches.js';
import { openAll, serveSteps, type Stepped } from './child.js';
import { subscribe, type Payload } from './clients.js';
import { cpuMs } from './proc-cpu.js';
import { beaconSdk, protocolOf, type TargetId } from './targets.js';

export interface SmallChannelsOptions extends ChannelBatchOptions {
  target: TargetId;
  port: number;
  serverPid: number;
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
    const pusher = beaconSdk(port, agent);
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

async function setup(o: SmallChannelsOptions): Promise<Stepped<'batches', SmallChannelsResult>> {
  const load = new ChannelBatches(o);
  const connectStart = performance.now();
  const clients = await openAll(o.channels, o.concurrency, (i) =>
    subscribe(o.target, o.port, { beaconChannel: `private-user-${i}`, beaconEvent: EVENT, event: EVENT, room: `user-${i}` }, load.onPayload),
  );
  const connectMs = performance.now() - connectStart;
  const pub = publisher(o.target, o.port);
  const close = (): void => {
    pub.close();
    for (const c of clients) c.close();
  };
  const event = (channel: number, payload: Payload): BatchEvent => ({ channel, payload });
  const send = (_: number, events: BatchEvent[]): Promise<unknown> => pub.send(events);
  try {
    await load.warmUp(event, send);
  } catch (err) {
    close();
    throw err;
  }
  let serverCpuMs = 0;
  const serverCpu = () => {
    const cpu0 = cpuMs(o.serverPid);
    return { end: () => cpuMs(o.serverPid) - cpu0 };
  };
  return {
    step: async (_step, count) => {
      serverCpuMs += await load.slice(count, event, send, serverCpu);
    },
    finish: async () => {
      close();
      const d = load.deliveries();
      return {
        connectMs,
        expected: d.published,
        delivered: d.delivered,
        deliveriesPerSecond: d.deliveriesPerSecond,
        serverCpuUsPerDelivery: (serverCpuMs * 1000) / Math.max(1, d.delivered),
        p50Ms: d.p50Ms,
        p99Ms: d.p99Ms,
        publishErrors: d.publishErrors,
      };
    },
  };
}

serveSteps(setup);
