/**
 * The connection phase of a run: how fast a target accepts subscribed connections and what an idle one costs it.
 *   0. warm-up: `warmup` connections opened and closed (JIT, lazy modules), then the server's RSS is read;
 *   1. `connections` subscribed connections opened, `concurrency` handshakes in flight: connects/s = connections ÷ elapsed
 *      (handshake, the server's first frame, subscribe, its acknowledgement);
 *   2. after `settleMs` the RSS again: KiB per idle subscribed connection = ΔRSS ÷ connections;
 *   3. with a /metrics endpoint: `scrapes` sequential scrapes, the median time to the last byte;
 *   4. the connections closed, the server left to go idle, then `connections` opened again the same way: connects/s and
 *      server CPU per connect of this second storm are the results (the connect path at its steady state: V8 optimises
 *      it only after thousands of connects, as the publish path; bench/README.md). The first storm's are kept as
 *      `first*`. RSS comes from the first storm: after it, the second reuses the heap it freed.
 * Beacon connections are spread over its apps (round robin), each app's on one public channel; the baselines' all in one room.
 *
 *   node --import tsx bench/fanout/idle.ts '<IdleOptions as JSON>'      (started by bench/run.ts)
 */
import { performance } from 'node:perf_hooks';
import { runLoadProcess, openAll } from './child.js';
import { subscribe, type Closable, type Subscription } from './clients.js';
import { cpuMs } from './proc-cpu.js';
import { rssKiB } from './proc-mem.js';
import { median } from './stats.js';
import { BEACON_APPS, type TargetId } from './targets.js';

export interface IdleOptions {
  target: TargetId;
  port: number;
  serverPid: number;
  connections: number;
  warmup: number;
  concurrency: number;
  settleMs: number;
  metricsUrl: string | undefined;
  scrapes: number;
}

export interface IdleResult {
  /** Connects/s of the second storm (step 4). */
  connectsPerSecond: number;
  /** Server CPU (utime + stime) over the second storm ÷ connections, in µs. */
  serverCpuUsPerConnect: number;
  /** The same two of the first storm (step 1), after only `warmup` connects. */
  firstConnectsPerSecond: number;
  firstServerCpuUsPerConnect: number;
  rssBeforeKiB: number;
  rssAfterKiB: number;
  kibPerConnection: number;
  /** Median /metrics scrape time (null without a /metrics endpoint). */
  metricsMs: number | null;
  /** Server CPU per scrape over the sequential scrapes (10 ms tick resolution, so averaged over all of them). */
  metricsCpuMs: number | null;
  metricsBytes: number | null;
}

function subscription(i: number): Subscription {
  const app = BEACON_APPS[i % BEACON_APPS.length]!;
  return { beaconChannel: 'idle', beaconEvent: 'idle', event: 'idle', room: 'idle', app };
}

/** Opens `connections` subscribed connections; their rate, and the server's CPU per connect over that time. */
async function storm(
  options: IdleOptions,
  open: (i: number) => Promise<Closable>,
): Promise<{ clients: Closable[]; connectsPerSecond: number; serverCpuUsPerConnect: number }> {
  const cpu0 = cpuMs(options.serverPid);
  const started = performance.now();
  const clients = await openAll(options.connections, options.concurrency, open);
  const elapsed = performance.now() - started;
  const connectCpuMs = cpuMs(options.serverPid) - cpu0;
  return {
    clients,
    connectsPerSecond: (options.connections * 1000) / elapsed,
    serverCpuUsPerConnect: (connectCpuMs * 1000) / options.connections,
  };
}

/** Waits (at most 15 s) until the server spent under 2 % of a core over a 250 ms window: the closes are processed. */
async function serverIdle(pid: number): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const before = cpuMs(pid);
    await new Promise((r) => setTimeout(r, 250));
    if (cpuMs(pid) - before <= 5 || Date.now() > deadline) return;
  }
}

async function main(options: IdleOptions): Promise<IdleResult> {
  const ignore = (): void => undefined;
  const open = (i: number): Promise<Closable> => subscribe(options.target, options.port, subscription(i), ignore);
  const warm = await openAll(options.warmup, options.concurrency, open);
  for (const c of warm) c.close();
  await new Promise((r) => setTimeout(r, options.settleMs));
  const rssBeforeKiB = rssKiB(options.serverPid);
  const first = await storm(options, open);
  let openClients: Closable[] = first.clients;
  try {
    await new Promise((r) => setTimeout(r, options.settleMs));
    const rssAfterKiB = rssKiB(options.serverPid);
    let metricsMs: number | null = null;
    let metricsCpuMs: number | null = null;
    let metricsBytes: number | null = null;
    if (options.metricsUrl !== undefined) {
      const times: number[] = [];
      const scrapeCpu0 = cpuMs(options.serverPid);
      for (let k = 0; k < options.scrapes; k++) {
        const t0 = performance.now();
        const res = await fetch(options.metricsUrl, { signal: AbortSignal.timeout(10_000) });
        const body = await res.text();
        times.push(performance.now() - t0);
        metricsBytes = body.length;
      }
      metricsMs = median(times);
      metricsCpuMs = (cpuMs(options.serverPid) - scrapeCpu0) / options.scrapes;
    }
    for (const c of openClients) c.close();
    openClients = [];
    await serverIdle(options.serverPid);
    const second = await storm(options, open);
    openClients = second.clients;
    return {
      connectsPerSecond: second.connectsPerSecond,
      serverCpuUsPerConnect: second.serverCpuUsPerConnect,
      firstConnectsPerSecond: first.connectsPerSecond,
      firstServerCpuUsPerConnect: first.serverCpuUsPerConnect,
      rssBeforeKiB,
      rssAfterKiB,
      kibPerConnection: (rssAfterKiB - rssBeforeKiB) / options.connections,
      metricsMs,
      metricsCpuMs,
      metricsBytes,
    };
  } finally {
    for (const c of openClients) c.close();
  }
}

runLoadProcess(main);
