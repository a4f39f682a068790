/**
 * From the runs of every target to the rows of bench/results/*.json: medians over runs, and ratios against the bare-ws
 * baseline, the limit probe, the syscall floor (the main table) and Socket.IO, each ratio the median of the
 * per-repetition ratios (the targets of one repetition ran back to back, so a slow moment of the shared machine weighs
 * on both sides of a ratio).
 */
import type { ResultColumn, ResultRow } from '../results-format.js';
import type { BurstResult } from './burst.js';
import type { IdleResult } from './idle.js';
import type { LoadResult } from './load.js';
import type { SmallChannelsResult } from './small-channels.js';
import { median } from './stats.js';
import { protocolOf, TARGET_LABELS, type TargetId } from './targets.js';

/** What one (repetition, target) produced; a phase that failed has its error instead. */
export interface RunRecord {
  target: TargetId;
  repetition: number;
  fanout?: LoadResult;
  burst?: BurstResult;
  idle?: IdleResult;
  small?: SmallChannelsResult;
  errors: string[];
}

/** The columns of the main table (bench/results/fanout.json), in order. */
export const FANOUT_COLUMNS: ResultColumn[] = [
  { key: 'cpu_us', label: 'CPU µs / delivery' },
  { key: 'vs_ws', label: '× bare ws' },
  { key: 'vs_probe', label: '× limit probe' },
  { key: 'vs_floor', label: '× syscall floor' },
  { key: 'vs_socketio', label: '× Socket.IO' },
  { key: 'vs_off', label: '× Beacon off' },
  { key: 'burst_cpu_us', label: 'burst CPU µs / delivery' },
  { key: 'burst_vs_ws', label: 'burst × bare ws' },
  { key: 'rss_kib', label: 'RSS KiB / idle subscribed conn' },
  { key: 'connects', label: 'connects/s' },
  { key: 'connects_vs_ws', label: 'connects/s × bare ws' },
  { key: 'connects_vs_stack', label: 'connects/s × stack floor' },
  { key: 'connect_cpu_us', label: 'server CPU µs / connect' },
  { key: 'close_cpu_us', label: 'server CPU µs / close' },
  { key: 'p50_ms', label: 'p50 ms (low rate)' },
  { key: 'p99_ms', label: 'p99 ms (low rate)' },
  { key: 'p99_vs_ws', label: 'p99 × bare ws' },
  { key: 'latency_load_cpu', label: 'load process CPU % (low rate)' },
  { key: 'max_deliveries', label: 'deliveries/s (closed loop)' },
  { key: 'metrics_ms', label: '/metrics ms' },
  { key: 'metrics_cpu_ms', label: '/metrics server CPU ms' },
  { key: 'lost', label: 'lost deliveries' },
  { key: 'ok', label: 'runs ok' },
];

/** The columns of the many-small-channels table (bench/results/fanout-small-channels.json). */
export const SMALL_COLUMNS: ResultColumn[] = [
  { key: 'deliveries', label: 'deliveries/s' },
  { key: 'cpu_us', label: 'CPU µs / delivery' },
  { key: 'vs_ws', label: '× bare ws' },
  { key: 'vs_probe', label: '× limit probe' },
  { key: 'vs_socketio', label: '× Socket.IO' },
  { key: 'p50_ms', label: 'p50 ms' },
  { key: 'p99_ms', label: 'p99 ms' },
  { key: 'lost', label: 'lost deliveries' },
  { key: 'ok', label: 'runs ok' },
];

type Metric = (r: RunRecord) => number | undefined;

const round = (v: number, digits: number): number | null => (Number.isFinite(v) ? Number(v.toFixed(digits)) : null);

function medianOf(records: RunRecord[], target: TargetId, metric: Metric): number {
  return median(records.filter((r) => r.target === target).flatMap((r) => metric(r) ?? []));
}

/** `metric(target) / metric(against)` of every repetition that measured both. */
function ratios(records: RunRecord[], target: TargetId, against: TargetId, metric: Metric): number[] {
  const found: number[] = [];
  for (const mine of records) {
    if (mine.target !== target) continue;
    const other = records.find((o) => o.target === against && o.repetition === mine.repetition);
    const a = metric(mine);
    const b = other === undefined ? undefined : metric(other);
    if (a !== undefined && b !== undefined && b > 0) found.push(a / b);
  }
  return found;
}

/** Median over repetitions of `metric(target) / metric(against)`, both from the same repetition. */
function ratio(records: RunRecord[], target: TargetId, against: TargetId, metric: Metric): number {
  return median(ratios(records, target, against, metric));
}

/** A ratio column whose spread over the repetitions a note gives. */
interface SpreadColumn {
  label: string;
  against: TargetId;
  metric: Metric;
  /** The targets the column is given for; all by default. */
  only?: (target: TargetId) => boolean;
}

/**
 * A note with the lowest and highest per-repetition ratio behind each median of `columns`, per target: on a shared machine
 * one repetition can differ from the next by more than a change being measured, and the table alone does not show it.
 */
function spreadNote(records: RunRecord[], targets: readonly TargetId[], columns: SpreadColumn[]): string {
  const parts: string[] = [];
  for (const target of targets) {
    const cells: string[] = [];
    for (const column of columns) {
      if (column.against === target || column.only?.(target) === false) continue;
      const found = ratios(records, target, column.against, column.metric);
      if (found.length === 0) continue;
      cells.push(`${column.label} ${Math.min(...found).toFixed(2)}–${Math.max(...found).toFixed(2)}`);
    }
    if (cells.length > 0) parts.push(`${TARGET_LABELS[target]}: ${cells.join(', ')}`);
  }
  const runs = new Set(records.map((r) => r.repetition)).size;
  return `Spread: the lowest and highest per-repetition ratio behind each median (${runs} repetitions). ${parts.join('; ')}.`;
}

const isBeacon = (target: TargetId): boolean => protocolOf(target) === 'beacon';

const fanoutCpu: Metric = (r) => r.fanout?.rate.serverCpuUsPerDelivery;
const connects: Metric = (r) => r.idle?.connectsPerSecond;
const burstCpu: Metric = (r) => r.burst?.serverCpuUsPerDelivery;
const latencyP99: Metric = (r) => r.fanout?.latency.p99Ms;

/** The spread of the main table's ratios to bare ws and the probe (CPU per delivery, connects/s). */
export function fanoutSpread(records: RunRecord[], targets: readonly TargetId[]): string {
  return spreadNote(records, targets, [
    { label: 'CPU / delivery × bare ws', against: 'ws', metric: fanoutCpu },
    { label: '× limit probe', against: 'ws-raw', metric: fanoutCpu },
    { label: '× syscall floor', against: 'ws-direct', metric: fanoutCpu },
    { label: '× Beacon off', against: 'beacon', metric: fanoutCpu, only: isBeacon },
    { label: 'connects/s × bare ws', against: 'ws', metric: connects },
    { label: 'connects/s × stack floor', against: 'ws-fastify', metric: connects, only: isBeacon },
  ]);
}

const firstConnects: Metric = (r) => r.idle?.firstConnectsPerSecond;

/** The first connect storm's results (JIT still warming up), beside the table's second storm. */
export function firstStormNote(records: RunRecord[], targets: readonly TargetId[]): string {
  const cells = targets
    .filter((target) => Number.isFinite(medianOf(records, target, firstConnects)))
    .map((target) => {
      const vsWs = target === 'ws' ? '' : ` (× bare ws ${ratio(records, target, 'ws', firstConnects).toFixed(2)})`;
      const cpu = medianOf(records, target, (r) => r.idle?.firstServerCpuUsPerConnect);
      return `${TARGET_LABELS[target]} ${Math.round(medianOf(records, target, firstConnects))}/s${vsWs}, ${Math.round(cpu)} µs CPU / connect`;
    });
  return `The first connect storm, after 200 warm-up connects (the table's RSS comes from it; until the second storm was added its connects/s and CPU were the table's): ${cells.join('; ')}.`;
}

/**
 * Where the main table's lost deliveries come from: per target, repetition and phase, the deliveries missing and the
 * publishes that failed (with why the first failed). A publish the server refused loses its deliveries too, but is not
 * a delivery the server accepted and dropped.
 */
export function lossNote(records: RunRecord[]): string {
  const cells: string[] = [];
  for (const r of records) {
    const phases = r.fanout === undefined ? [] : (['rate', 'latency', 'throughput'] as const).map((name) => [name, r.fanout![name]] as const);
    for (const [name, phase] of phases) {
      const lost = phase.expected - phase.delivered;
      if (lost === 0 && phase.publishErrors === 0) continue;
      const failed = phase.publishErrors === 0 ? '' : `, ${phase.publishErrors} publishes failed (${phase.firstPublishError ?? 'no reason'})`;
      cells.push(`${TARGET_LABELS[r.target]}, run ${r.repetition + 1}, ${name} phase: ${lost} deliveries missing${failed}`);
    }
    if (r.burst !== undefined && (r.burst.expected !== r.burst.delivered || r.burst.publishErrors > 0)) {
      const failed = r.burst.publishErrors === 0 ? '' : `, ${r.burst.publishErrors} requests failed (${r.burst.firstPublishError ?? 'no reason'})`;
      cells.push(`${TARGET_LABELS[r.target]}, run ${r.repetition + 1}, bursts: ${r.burst.expected - r.burst.delivered} deliveries missing${failed}`);
    }
  }
  return cells.length === 0 ? 'Lost deliveries: none.' : `Lost deliveries: ${cells.join('; ')}.`;
}

/** One row per target of the main table. */
export function fanoutRows(records: RunRecord[], targets: readonly TargetId[]): ResultRow[] {
  return targets.map((target) => {
    const mine = records.filter((r) => r.target === target);
    const lost = mine.reduce(
      (sum, r) =>
        sum +
        (r.fanout === undefined
          ? 0
          : r.fanout.rate.expected - r.fanout.rate.delivered +
            (r.fanout.latency.expected - r.fanout.latency.delivered) +
            (r.fanout.throughput.expected - r.fanout.throughput.delivered)) +
        (r.burst === undefined ? 0 : r.burst.expected - r.burst.delivered),
      0,
    );
    const m = (metric: Metric): number => medianOf(records, target, metric);
    const metricsMs = m((r) => r.idle?.metricsMs ?? undefined);
    const metricsCpuMs = m((r) => r.idle?.metricsCpuMs ?? undefined);
    return {
      name: TARGET_LABELS[target],
      cpu_us: round(m(fanoutCpu), 1),
      vs_ws: round(ratio(records, target, 'ws', fanoutCpu), 2),
      vs_probe: round(ratio(records, target, 'ws-raw', fanoutCpu), 2),
      vs_floor: round(ratio(records, target, 'ws-direct', fanoutCpu), 2),
      vs_socketio: round(ratio(records, target, 'socketio', fanoutCpu), 2),
      // What telemetry costs per delivery on the issue's own workload: Beacon on (info logs included) over Beacon off.
      vs_off: isBeacon(target) && target !== 'beacon' ? round(ratio(records, target, 'beacon', fanoutCpu), 2) : null,
      burst_cpu_us: round(m(burstCpu), 1),
      burst_vs_ws: round(ratio(records, target, 'ws', burstCpu), 2),
      rss_kib: round(m((r) => r.idle?.kibPerConnection), 1),
      connects: round(m(connects), 0),
      connects_vs_ws: round(ratio(records, target, 'ws', connects), 2),
      // What Beacon's connect costs over the least its stack (fastify + @fastify/websocket) does for one.
      connects_vs_stack: isBeacon(target) ? round(ratio(records, target, 'ws-fastify', connects), 2) : null,
      connect_cpu_us: round(m((r) => r.idle?.serverCpuUsPerConnect), 0),
      close_cpu_us: round(m((r) => r.idle?.serverCpuUsPerClose), 0),
      p50_ms: round(m((r) => r.fanout?.latency.p50Ms), 2),
      p99_ms: round(m(latencyP99), 2),
      p99_vs_ws: round(ratio(records, target, 'ws', latencyP99), 2),
      latency_load_cpu: round(m((r) => (r.fanout === undefined ? undefined : r.fanout.latency.loadCpuShare * 100)), 0),
      max_deliveries: round(m((r) => r.fanout?.throughput.deliveriesPerSecond), 0),
      metrics_ms: Number.isFinite(metricsMs) ? round(metricsMs, 1) : null,
      metrics_cpu_ms: Number.isFinite(metricsCpuMs) ? round(metricsCpuMs, 1) : null,
      lost,
      ok: `${mine.filter((r) => r.fanout !== undefined && r.burst !== undefined && r.idle !== undefined).length}/${mine.length}`,
    };
  });
}

const smallCpu: Metric = (r) => r.small?.serverCpuUsPerDelivery;

/** The spread of the small-channels table's CPU ratios to bare ws and Beacon with telemetry off. */
export function smallSpread(records: RunRecord[], targets: readonly TargetId[]): string {
  return spreadNote(records, targets, [
    { label: 'CPU / delivery × bare ws', against: 'ws', metric: smallCpu },
    { label: '× Beacon off', against: 'beacon', metric: smallCpu, only: isBeacon },
  ]);
}

/** One row per target of the many-small-channels table. */
export function smallRows(records: RunRecord[], targets: readonly TargetId[]): ResultRow[] {
  return targets.map((target) => {
    const mine = records.filter((r) => r.target === target);
    const m = (metric: Metric): number => medianOf(records, target, metric);
    return {
      name: TARGET_LABELS[target],
      deliveries: round(m((r) => r.small?.deliveriesPerSecond), 0),
      cpu_us: round(m(smallCpu), 1),
      vs_ws: round(ratio(records, target, 'ws', smallCpu), 2),
      vs_probe: round(ratio(records, target, 'ws-raw', smallCpu), 2),
      vs_socketio: round(ratio(records, target, 'socketio', smallCpu), 2),
      p50_ms: round(m((r) => r.small?.p50Ms), 2),
      p99_ms: round(m((r) => r.small?.p99Ms), 2),
      lost: mine.reduce((sum, r) => sum + (r.small === undefined ? 0 : r.small.expected - r.small.delivered), 0),
      ok: `${mine.filter((r) => r.small !== undefined).length}/${mine.length}`,
    };
  });
}
