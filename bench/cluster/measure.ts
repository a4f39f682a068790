/**
 * What the cluster load processes read around a measured phase: the CPU of every node (from /proc) and of every
 * redis-server (its own `INFO cpu`: getrusage, microseconds, where /proc has 10 ms ticks and Redis spends only tens of
 * ms in a phase), and each node's `websocket_adapter_messages_total` by direction (from its /metrics): the cross-node messages.
 */
import { execFileSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { parseExposition, sumOf } from '../../test/helpers/exposition.js';
import { cpuMs } from '../fanout/proc-cpu.js';

/** CPU ms used so far by each pid, in order. */
export function cpuOf(pids: readonly number[]): number[] {
  return pids.map(cpuMs);
}

/** CPU ms (user + system, all threads) used so far by the redis-server on each port, from `INFO cpu`. */
export function redisCpuOf(ports: readonly number[]): number[] {
  return ports.map((port) => {
    const info = execFileSync('redis-cli', ['-p', String(port), 'info', 'cpu'], { encoding: 'utf8', timeout: 5000 });
    const field = (name: string): number => {
      const m = new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info);
      if (m === null) throw new Error(`redis on ${port}: no ${name} in INFO cpu`);
      return Number(m[1]) * 1000;
    };
    return field('used_cpu_user') + field('used_cpu_sys');
  });
}

/** Commands each redis-server has run so far, by command name (`INFO commandstats` calls), summed over `ports`. */
export function redisCallsOf(ports: readonly number[]): Record<string, number> {
  const calls: Record<string, number> = {};
  for (const port of ports) {
    const info = execFileSync('redis-cli', ['-p', String(port), 'info', 'commandstats'], { encoding: 'utf8', timeout: 5000 });
    for (const m of info.matchAll(/^cmdstat_([\w|]+):calls=(\d+)/gm)) calls[m[1]!] = (calls[m[1]!] ?? 0) + Number(m[2]);
  }
  return calls;
}

/** Per command, `after - before`, without the zeros and without the `info` the readings themselves sent. */
function callsDelta(after: Record<string, number>, before: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, n] of Object.entries(after)) {
    const d = n - (before[name] ?? 0);
    if (d > 0 && name !== 'info') out[name] = d;
  }
  return out;
}

/**
 * Background CPU in ms per second — of each node (timers, the /metrics scrapes, heartbeats, GC) and of Redis summed over
 * its processes (cron, cluster bus, heartbeats) — over `ms` of quiet with the clients connected: subtracted from a
 * phase's CPU for the net cost per delivery, so a slow phase is not charged for the time it lasted.
 */
export async function idleRates(nodePids: readonly number[], redisPorts: readonly number[], ms: number): Promise<{ nodes: number[]; redis: number }> {
  const nodes0 = cpuOf(nodePids);
  const redis0 = sum(redisCpuOf(redisPorts));
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, ms));
  const seconds = (performance.now() - t0) / 1000;
  const nodes = delta(cpuOf(nodePids), nodes0).map((v) => v / seconds);
  return { nodes, redis: (sum(redisCpuOf(redisPorts)) - redis0) / seconds };
}

/** Element-wise `after - before`. */
export function delta(after: readonly number[], before: readonly number[]): number[] {
  return after.map((v, i) => v - (before[i] ?? 0));
}

/** The sum of a list. */
export function sum(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

/** One node's adapter message counters: envelopes it published to Redis, and envelopes Redis pushed to it. */
export interface AdapterCounts {
  published: number;
  received: number;
}

/** Reads every node's adapter counters (null where the node has none: the local adapter counts nothing). */
export async function adapterCounts(metricsUrls: readonly string[]): Promise<AdapterCounts[]> {
  return Promise.all(
    metricsUrls.map(async (url) => {
      const families = parseExposition(await (await fetch(url, { signal: AbortSignal.timeout(10_000) })).text());
      return {
        published: sumOf(families, 'websocket_adapter_messages_total', { direction: 'published' }),
        received: sumOf(families, 'websocket_adapter_messages_total', { direction: 'received' }),
      };
    }),
  );
}

/** Per node, what changed between two readings. */
export function countsDelta(after: readonly AdapterCounts[], before: readonly AdapterCounts[]): AdapterCounts[] {
  return after.map((a, i) => ({ published: a.published - (before[i]?.published ?? 0), received: a.received - (before[i]?.received ?? 0) }));
}

/** What a measured phase cost the servers, and the cross-node messages it caused. */
export interface PhaseCost {
  /** CPU ms of each node over the phase. */
  nodeCpuMs: number[];
  /** CPU ms of each redis-server over the phase, by port (empty without Redis). */
  redisCpuMs: number[];
  /** Adapter counters of each node over the phase. */
  adapter: AdapterCounts[];
  /** Commands Redis ran over the phase, by name, all processes together. */
  redisCalls: Record<string, number>;
  /** Redis's background CPU over a quiet moment before the phase, ms per second (all processes). */
  redisIdleMsPerSecond: number;
  /** Each node's background CPU over the same quiet moment, ms per second. */
  nodeIdleMsPerSecond: number[];
  /** How long the phase lasted between the readings, ms. */
  elapsedMs: number;
}

/** Takes the readings at the start of a phase; `end()` takes them again and returns the differences. */
export async function startCost(nodePids: readonly number[], redisPorts: readonly number[], metricsUrls: readonly string[]): Promise<{ end(): Promise<PhaseCost> }> {
  const idle = await idleRates(nodePids, redisPorts, IDLE_SAMPLE_MS);
  const counts0 = await adapterCounts(metricsUrls);
  const calls0 = redisCallsOf(redisPorts);
  const t0 = performance.now();
  const nodes0 = cpuOf(nodePids);
  const redis0 = redisCpuOf(redisPorts);
  return {
    async end() {
      const nodeCpuMs = delta(cpuOf(nodePids), nodes0);
      const redisCpuMs = delta(redisCpuOf(redisPorts), redis0);
      const elapsedMs = performance.now() - t0;
      const redisCalls = callsDelta(redisCallsOf(redisPorts), calls0);
      return { nodeCpuMs, redisCpuMs, adapter: countsDelta(await adapterCounts(metricsUrls), counts0), redisCalls, redisIdleMsPerSecond: idle.redis, nodeIdleMsPerSecond: idle.nodes, elapsedMs };
    },
  };
}

/** The quiet moment before a phase over which Redis's background CPU is measured. */
const IDLE_SAMPLE_MS = 1500;
