/**
 * From the runs of every topology to the rows of bench/results/cluster-*.json: medians over repetitions, and ratios against
 * one node with the local adapter, each the median of the per-repetition ratios (the topologies of one repetition ran back
 * to back, so a slow moment of the shared machine weighs on both sides of a ratio).
 */
import type { ResultColumn, ResultRow } from '../results-format.js';
import { median } from '../fanout/stats.js';
import type { ClusterFanoutResult, ClusterPhaseResult } from './fanout-load.js';
import { sum, type PhaseCost } from './measure.js';
import type { SparseResult } from './sparse-load.js';
import { NODE_COUNT, TOPOLOGY_LABELS, type TopologyId } from './topology.js';

/** What one (repetition, topology) produced; a phase that failed has its error instead. */
export interface ClusterRunRecord {
  topology: TopologyId;
  repetition: number;
  fanout?: ClusterFanoutResult;
  sparse?: SparseResult;
  errors: string[];
}

/** The baseline every ratio is taken against. */
export const BASELINE: TopologyId = 'single-local';

/** Columns of bench/results/cluster-fanout.json. */
export const FANOUT_COLUMNS: ResultColumn[] = [
  { key: 'deliveries', label: 'deliveries/s (closed loop)' },
  { key: 'deliveries_x', label: 'deliveries/s × 1 node' },
  { key: 'node_cpu_us', label: 'nodes CPU µs / delivery (sum)' },
  { key: 'node_cpu_x', label: 'nodes CPU × 1 node' },
  { key: 'node_net_us', label: 'nodes CPU µs / delivery (net)' },
  { key: 'node_idle', label: 'node idle CPU ms/s (each)' },
  { key: 'redis_cpu_us', label: 'Redis CPU µs / delivery (net)' },
  { key: 'redis_cpu_pub_us', label: 'Redis CPU µs / publication (net)' },
  { key: 'redis_idle', label: 'Redis idle CPU ms/s' },
  { key: 'redis_cmds', label: 'Redis commands / publication' },
  { key: 'received_per_pub', label: 'cross-node messages / publication' },
  { key: 'p50_ms', label: 'p50 ms (fixed rate)' },
  { key: 'p99_ms', label: 'p99 ms (fixed rate)' },
  { key: 'lost', label: 'lost deliveries' },
  { key: 'ok', label: 'runs ok' },
];

/** Columns of bench/results/cluster-sparse.json. */
export const SPARSE_COLUMNS: ResultColumn[] = [
  { key: 'deliveries', label: 'deliveries/s' },
  { key: 'deliveries_x', label: 'deliveries/s × 1 node' },
  { key: 'node_cpu_us', label: 'nodes CPU µs / delivery (sum)' },
  { key: 'node_cpu_x', label: 'nodes CPU × 1 node' },
  { key: 'node_net_us', label: 'nodes CPU µs / delivery (net)' },
  { key: 'node_idle', label: 'node idle CPU ms/s (each)' },
  { key: 'redis_cpu_us', label: 'Redis CPU µs / publication (net, all shards)' },
  { key: 'redis_idle', label: 'Redis idle CPU ms/s' },
  { key: 'redis_cmds', label: 'Redis commands / publication' },
  { key: 'redis_busiest', label: 'busiest Redis share of Redis CPU' },
  { key: 'published', label: 'published (measured)' },
  { key: 'received_1', label: 'received node 1' },
  { key: 'received_2', label: 'received node 2' },
  { key: 'received_3', label: 'received node 3' },
  { key: 'received_share', label: 'received (all nodes) ÷ published' },
  { key: 'p50_ms', label: 'p50 ms' },
  { key: 'p99_ms', label: 'p99 ms' },
  { key: 'lost', label: 'lost deliveries' },
  { key: 'connects', label: 'connects/s (subscribed)' },
  { key: 'connect_node_us', label: 'nodes CPU µs / subscribed connect' },
  { key: 'connect_redis_us', label: 'Redis CPU µs / subscribed connect (net)' },
  { key: 'connect_cmds', label: 'Redis commands / subscribed connect' },
  { key: 'ok', label: 'runs ok' },
];

const round = (v: number, digits: number): number | null => (Number.isFinite(v) ? Number(v.toFixed(digits)) : null);

/** Median over repetitions of `metric`, rounded. */
function med<T>(list: T[], metric: (r: T) => number, digits: number): number | null {
  return round(median(list.map(metric)), digits);
}

/** Median of per-repetition ratios of `metric` between `list` and the baseline's run of the same repetition. */
function ratio<T extends { repetition: number }>(list: T[], base: T[], metric: (r: T) => number): number | null {
  return round(
    median(
      list.map((r) => {
        const b = base.find((x) => x.repetition === r.repetition);
        return b === undefined ? Number.NaN : metric(r) / metric(b);
      }),
    ),
    2,
  );
}

const nodeCpuUs = (p: { delivered: number; cost: PhaseCost }): number => (sum(p.cost.nodeCpuMs) * 1000) / Math.max(1, p.delivered);
/** The nodes' CPU µs per delivery net of their background (each node's idle rate × the phase's length). */
const nodeNetUs = (p: { delivered: number; cost: PhaseCost }): number =>
  ((sum(p.cost.nodeCpuMs) - (sum(p.cost.nodeIdleMsPerSecond) * p.cost.elapsedMs) / 1000) * 1000) / Math.max(1, p.delivered);
/** The median over nodes of their idle CPU, ms per second. */
const nodeIdle = (p: { cost: PhaseCost }): number => median(p.cost.nodeIdleMsPerSecond);
/** Redis CPU µs per `per`, net of its background (the idle rate measured before the phase × the phase's length). */
const redisUs = (p: { cost: PhaseCost }, per: number): number =>
  p.cost.redisCpuMs.length === 0
    ? Number.NaN
    : ((sum(p.cost.redisCpuMs) - (p.cost.redisIdleMsPerSecond * p.cost.elapsedMs) / 1000) * 1000) / Math.max(1, per);
const redisCmds = (p: { cost: PhaseCost }, published: number): number =>
  p.cost.redisCpuMs.length === 0 ? Number.NaN : sum(Object.values(p.cost.redisCalls)) / Math.max(1, published);

/** The commands Redis ran per publication in one phase, most frequent first: `publish 1.00, …`. */
export function commandMix(cost: PhaseCost, published: number): string {
  return Object.entries(cost.redisCalls)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 6)
    .map(([name, n]) => `${name.toUpperCase()} ${(n / Math.max(1, published)).toFixed(2)}`)
    .join(', ');
}

interface FanoutRun {
  repetition: number;
  r: ClusterFanoutResult;
}

/** One row per topology of the fan-out table. */
export function fanoutRows(records: ClusterRunRecord[], topologies: readonly TopologyId[]): ResultRow[] {
  const runsOf = (t: TopologyId): FanoutRun[] =>
    records.filter((x) => x.topology === t && x.fanout !== undefined).map((x) => ({ repetition: x.repetition, r: x.fanout! }));
  const base = runsOf(BASELINE);
  return topologies.map((t) => {
    const list = runsOf(t);
    const rate = (x: FanoutRun): ClusterPhaseResult => x.r.rate;
    return {
      name: TOPOLOGY_LABELS[t],
      deliveries: med(list, (x) => x.r.throughput.deliveriesPerSecond, 0),
      deliveries_x: ratio(list, base, (x) => x.r.throughput.deliveriesPerSecond),
      node_cpu_us: med(list, (x) => nodeCpuUs(rate(x)), 3),
      node_cpu_x: ratio(list, base, (x) => nodeCpuUs(rate(x))),
      node_net_us: med(list, (x) => nodeNetUs(rate(x)), 3),
      node_idle: med(list, (x) => nodeIdle(rate(x)), 1),
      redis_cpu_us: med(list, (x) => redisUs(rate(x), rate(x).delivered), 4),
      redis_cpu_pub_us: med(list, (x) => redisUs(rate(x), rate(x).published), 1),
      redis_idle: t === 'single-local' ? null : med(list, (x) => rate(x).cost.redisIdleMsPerSecond, 2),
      redis_cmds: med(list, (x) => redisCmds(rate(x), rate(x).published), 2),
      received_per_pub: t === 'single-local' ? null : med(list, (x) => sum(rate(x).cost.adapter.map((a) => a.received)) / Math.max(1, rate(x).published), 2),
      p50_ms: med(list, (x) => x.r.rate.p50Ms, 2),
      p99_ms: med(list, (x) => x.r.rate.p99Ms, 2),
      lost: med(list, (x) => x.r.rate.expected - x.r.rate.delivered + (x.r.throughput.expected - x.r.throughput.delivered), 0),
      ok: `${list.length}/${records.filter((x) => x.topology === t).length}`,
    };
  });
}

interface SparseRun {
  repetition: number;
  r: SparseResult;
}

/** One row per topology of the sparse table. */
export function sparseRows(records: ClusterRunRecord[], topologies: readonly TopologyId[]): ResultRow[] {
  const runsOf = (t: TopologyId): SparseRun[] =>
    records.filter((x) => x.topology === t && x.sparse !== undefined).map((x) => ({ repetition: x.repetition, r: x.sparse! }));
  const base = runsOf(BASELINE);
  return topologies.map((t) => {
    const list = runsOf(t);
    const withRedis = t !== 'single-local';
    const received = (k: number): number | null =>
      withRedis && k < NODE_COUNT[t] ? med(list, (x) => x.r.cost.adapter[k]?.received ?? Number.NaN, 0) : null;
    return {
      name: TOPOLOGY_LABELS[t],
      deliveries: med(list, (x) => x.r.deliveriesPerSecond, 0),
      deliveries_x: ratio(list, base, (x) => x.r.deliveriesPerSecond),
      node_cpu_us: med(list, (x) => nodeCpuUs(x.r), 2),
      node_cpu_x: ratio(list, base, (x) => nodeCpuUs(x.r)),
      node_net_us: med(list, (x) => nodeNetUs(x.r), 2),
      node_idle: med(list, (x) => nodeIdle(x.r), 1),
      redis_cpu_us: med(list, (x) => redisUs(x.r, x.r.published), 2),
      redis_idle: withRedis ? med(list, (x) => x.r.cost.redisIdleMsPerSecond, 2) : null,
      redis_cmds: med(list, (x) => redisCmds(x.r, x.r.published), 2),
      redis_busiest: withRedis ? med(list, (x) => Math.max(...x.r.cost.redisCpuMs) / sum(x.r.cost.redisCpuMs), 2) : null,
      published: med(list, (x) => x.r.published, 0),
      received_1: received(0),
      received_2: received(1),
      received_3: received(2),
      received_share: withRedis ? med(list, (x) => sum(x.r.cost.adapter.map((a) => a.received)) / Math.max(1, x.r.published), 3) : null,
      p50_ms: med(list, (x) => x.r.p50Ms, 2),
      p99_ms: med(list, (x) => x.r.p99Ms, 2),
      lost: med(list, (x) => x.r.published - x.r.delivered, 0),
      connects: med(list, (x) => x.r.connectsPerSecond, 0),
      connect_node_us: med(list, (x) => (sum(x.r.connectCost.nodeCpuMs) * 1000) / x.r.connections, 0),
      connect_redis_us: med(list, (x) => redisUs({ cost: x.r.connectCost }, x.r.connections), 1),
      connect_cmds: med(list, (x) => redisCmds({ cost: x.r.connectCost }, x.r.connections), 2),
      ok: `${list.length}/${records.filter((x) => x.topology === t).length}`,
    };
  });
}
