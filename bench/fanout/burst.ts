/**
 * Bursts: `subscribers` connections on one channel and publishes of `batchSize` events to that same channel per HTTP
 * request (Beacon `POST /apps/app-id/batch_events` signed by the `pusher` SDK; the baselines an unsigned `POST /publish`
 * with a batch), `inFlight` requests at a time: every subscriber gets `batchSize` frames in one turn of the server's event
 * loop, which Beacon coalesces into one socket write (transport/write-turns.ts). Measures server CPU per delivery, in
 * slices of requests the runner asks for (as load.ts), summed.
 *
 *   started by bench/run.ts (startStepped of child.ts) with '<BurstOptions as JSON>' and an IPC channel
 */
import { Agent } from 'node:http';
import { performance } from 'node:perf_hooks';
import { waitUntil, type BatchOptions } from './channel-batches.js';
import { openAll, serveSteps, type Stepped } from './child.js';
import { subscribe, type Payload } from './clients.js';
import { cpuMs } from './proc-cpu.js';
import { beaconSdk, protocolOf, type TargetId } from './targets.js';

export interface BurstOptions extends BatchOptions {
  target: TargetId;
  port: number;
  serverPid: number;
  subscribers: number;
}

export interface BurstResult {
  expected: number;
  delivered: number;
  /** Requests that failed, and why the first did. */
  publishErrors: number;
  firstPublishError?: string;
  serverCpuUsPerDelivery: number;
}

const CHANNEL = 'burst';
const EVENT = 'burst';

function publisher(target: TargetId, port: number): { send: (payloads: Payload[]) => Promise<unknown>; close: () => void } {
  if (protocolOf(target) === 'beacon') {
    const agent = new Agent({ keepAlive: true, maxSockets: 16 });
    const pusher = beaconSdk(port, agent);
    return {
      send: (payloads) => pusher.triggerBatch(payloads.map((data) => ({ channel: CHANNEL, name: EVENT, data }))),
      close: () => agent.destroy(),
    };
  }
  const url = `http://127.0.0.1:${port}/publish`;
  return {
    send: async (payloads) => {
      const batch = payloads.map((data) => ({ room: CHANNEL, event: EVENT, data }));
      const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ batch }) });
      if (!res.ok) throw new Error(`publish: HTTP ${res.status}`);
      await res.arrayBuffer();
    },
    close: () => undefined,
  };
}

async function setup(o: BurstOptions): Promise<Stepped<'burst', BurstResult>> {
  let delivered = 0;
  const clients = await openAll(o.subscribers, 50, () =>
    subscribe(o.target, o.port, { beaconChannel: CHANNEL, beaconEvent: EVENT, event: EVENT, room: CHANNEL }, () => delivered++),
  );
  const pub = publisher(o.target, o.port);
  const close = (): void => {
    pub.close();
    for (const c of clients) c.close();
  };
  const pad = 'x'.repeat(Math.max(0, o.payloadBytes - 40));
  let publishErrors = 0;
  let firstPublishError: string | undefined;
  const runBatches = async (count: number): Promise<void> => {
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < count) {
        next++;
        const payloads = Array.from({ length: o.batchSize }, (_, k) => ({ i: k, t: performance.now(), pad }));
        await pub.send(payloads).catch((err: unknown) => {
          publishErrors++;
          firstPublishError ??= err instanceof Error ? `${err.name}: ${err.message}` : String(err);
        });
      }
    };
    await Promise.all(Array.from({ length: o.inFlight }, worker));
  };
  const drain = (target: number): Promise<void> => waitUntil(() => delivered >= target, () => delivered, o.drainTimeoutMs);
  try {
    await runBatches(o.warmupBatches);
    await drain(o.warmupBatches * o.batchSize * o.subscribers);
  } catch (err) {
    close();
    throw err;
  }
  delivered = 0;
  publishErrors = 0;
  firstPublishError = undefined;
  let sent = 0;
  let serverCpuMs = 0;
  return {
    // One slice: `count` requests, measured from the first to the last delivery of their events.
    step: async (_step, count) => {
      const n = Math.min(count, o.batches - sent);
      sent += n;
      const cpu0 = cpuMs(o.serverPid);
      await runBatches(n);
      await drain(sent * o.batchSize * o.subscribers);
      serverCpuMs += cpuMs(o.serverPid) - cpu0;
    },
    finish: async () => {
      close();
      const expected = o.batches * o.batchSize * o.subscribers;
      return {
        expected,
        delivered,
        publishErrors,
        ...(firstPublishError === undefined ? {} : { firstPublishError }),
        serverCpuUsPerDelivery: (serverCpuMs * 1000) / Math.max(1, delivered),
      };
    },
  };
}

serveSteps(setup);
