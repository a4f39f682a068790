/**
 * The connection phase of a run: how fast a target accepts subscribed connections and what an idle one costs it.
 *   0. warm-up: `warmup` connections opened and closed (JIT, lazy modules), then the server's RSS is read;
 *   1. `connections` subscribed connections opened, `concurrency` handshakes in flight: connects/s = connections ÷ elapsed
 *      (handshake, the server's first frame, subscribe, its acknowledgement);
 *   2. after `settleMs` the RSS again: KiB per idle subscribed connection = ΔRSS ÷ connections;
 *   3. with a /metrics endpoint: `scrapes` sequential scrapes, the median time to the last byte;
 *   4. the connections closed (the server's CPU until it is idle again ÷ their count: CPU per close), then `connections`
 *      opened again the same way: connects/s and server CPU per connect of this second storm are the results (the
 *      connect path at its steady state: V8 optimises it only after thousands of connects, as the publish path;
 *      bench/README.md). The first storm's are kept as `first*`. RSS comes from the first storm: after it, the second
 *      reuses the heap it freed.
 * Steps 1 and 4 run in slices the runner asks for (`serveSteps` of child.ts; connects/s = connections ÷ the slices' summed
 * time, CPU summed over them), 2–3 as one step, `settle`, between them: every target's server holds its connections at
 * once, each in its own load process (10 000 descriptors each), and the targets take the slices in turn.
 * Beacon connections are spread over its apps (round robin), each app's on one public channel; the baselines' all in one room.
 *
 *   started by bench/run.ts (startStepped of child.ts) with '<IdleOptions as JSON>' and an IPC channel
 */
import { performance } from 'node:perf_hooks';
import { openAll, serveSteps, type Stepped } from './child.js';
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
  /**
   * Server CPU from closing the first storm's connections (the load process drops them: FIN, no close frame) until the
   * server is idle again ÷ their count, in µs.
   */
  serverCpuUsPerClose: number;
}

function subscription(i: number): Subscription {
  const app = BEACON_APPS[i % BEACON_APPS.length]!;
  return { beaconChannel: 'idle', beaconEvent: 'idle', event: 'idle', room: 'idle', app };
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

/** The steps of the connection phase: the two storms run in slices; `settle` once, between them. */
export type IdleStep = 'first' | 'settle' | 'second';

/** A storm measured in slices: connections opened so far, their wall time and the server's CPU over them. */
class Storm {
  readonly clients: Closable[] = [];
  elapsedMs = 0;
  serverCpuMs = 0;

  /** Opens `count` more subscribed connections, at most `concurrency` handshakes in flight, and adds their cost. */
  async slice(options: IdleOptions, count: number, open: (i: number) => Promise<Closable>): Promise<void> {
    const n = Math.min(count, options.connections - this.clients.length);
    const base = this.clients.length;
    const cpu0 = cpuMs(options.serverPid);
    const started = performance.now();
    this.clients.push(...(await openAll(n, options.concurrency, (i) => open(base + i))));
    this.elapsedMs += performance.now() - started;
    this.serverCpuMs += cpuMs(options.serverPid) - cpu0;
  }

  get connectsPerSecond(): number {
    return (this.clients.length * 1000) / this.elapsedMs;
  }

  get serverCpuUsPerConnect(): number {
    return (this.serverCpuMs * 1000) / Math.max(1, this.clients.length);
  }

  close(): void {
    for (const c of this.clients.splice(0)) c.close();
  }
}

async function setup(options: IdleOptions): Promise<Stepped<IdleStep, IdleResult>> {
  const ignore = (): void => undefined;
  const open = (i: number): Promise<Closable> => subscribe(options.target, options.port, subscription(i), ignore);
  const warm = await openAll(options.warmup, options.concurrency, open);
  for (const c of warm) c.close();
  await new Promise((r) => setTimeout(r, options.settleMs));
  const rssBeforeKiB = rssKiB(options.serverPid);
  const first = new Storm();
  const second = new Storm();
  let firstConnects = { connectsPerSecond: Number.NaN, serverCpuUsPerConnect: Number.NaN };
  let rssAfterKiB = Number.NaN;
  let metricsMs: number | null = null;
  let metricsCpuMs: number | null = null;
  let metricsBytes: number | null = null;
  let serverCpuUsPerClose = Number.NaN;
  /** After the first storm: its RSS, the /metrics scrapes with its connections open, then they close and the server goes idle. */
  const settle = async (): Promise<void> => {
    firstConnects = { connectsPerSecond: first.connectsPerSecond, serverCpuUsPerConnect: first.serverCpuUsPerConnect };
    await new Promise((r) => setTimeout(r, options.settleMs));
    rssAfterKiB = rssKiB(options.serverPid);
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
    const closeCpu0 = cpuMs(options.serverPid);
    const closing = first.clients.length;
    first.close();
    await serverIdle(options.serverPid);
    serverCpuUsPerClose = ((cpuMs(options.serverPid) - closeCpu0) * 1000) / Math.max(1, closing);
  };
  return {
    step: async (step, count) => {
      if (step === 'first') await first.slice(options, count, open);
      else if (step === 'second') await second.slice(options, count, open);
      else await settle();
    },
    finish: async () => {
      const result: IdleResult = {
        connectsPerSecond: second.connectsPerSecond,
        serverCpuUsPerConnect: second.serverCpuUsPerConnect,
        firstConnectsPerSecond: firstConnects.connectsPerSecond,
        firstServerCpuUsPerConnect: firstConnects.serverCpuUsPerConnect,
        rssBeforeKiB,
        rssAfterKiB,
        kibPerConnection: (rssAfterKiB - rssBeforeKiB) / options.connections,
        metricsMs,
        metricsCpuMs,
        metricsBytes,
        serverCpuUsPerClose,
      };
      first.close();
      second.close();
      return result;
    },
  };
}

serveSteps(setup);
