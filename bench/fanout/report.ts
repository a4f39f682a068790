/**
 * From the runs of every (scenario, target) to the rows of bench/results/fanout.json: medians over runs, and ratios against
 * the bare-ws baseline and Socket.IO, each ratio the median of the per-repetition ratios (the targets of one repetition ran
 * back to back, so a slow moment of the shared machine weighs on both sides of a ratio).
 */
import type { ResultColumn, ResultRow } from '../results-format.js';
import type { LoadResult } from './load.js';
import { median } from './stats.js';
import { TARGET_LABELS, type TargetId } from './targets.js';

/** The result of one load run, or why it failed. */
export interface RunRecord {
  scenario: string;
  target: TargetId;
  repetition: number;
  result?: LoadResult;
  error?: string;
}

/** The columns of the fan-out table, in order. */
export const FANOUT_COLUMNS: ResultColumn[] = [
  { key: 'latency_p50_ms', label: 'p50 latency ms (fixed rate)' },
  { key: 'latency_p99_ms', label: 'p99 latency ms (fixed rate)' },
  { key: 'deliveries_per_s', label: 'deliveries/s (max)' },
  { key: 'server_cpu_us_per_delivery', label: 'server CPU µs/delivery' },
  { key: 'throughput_vs_ws', label: 'throughput ÷ ws' },
  { key: 'throughput_vs_socketio', label: 'throughput ÷ Socket.IO' },
  { key: 'cpu_vs_ws', label: 'CPU/delivery ÷ ws' },
  { key: 'cpu_vs_socketio', label: 'CPU/delivery ÷ Socket.IO' },
  { key: 'p50_vs_ws', label: 'p50 ÷ ws' },
  { key: 'load_cpu_share', label: 'load process CPU (cores, max phase)' },
  { key: 'lost', label: 'lost deliveries (all runs)' },
  { key: 'ok_runs', label: 'runs ok' },
];

type Metric = (r: LoadResult) => number;
const METRICS: Record<string, Metric> = {
  latency_p50_ms: (r) => r.rate.p50Ms,
  latency_p99_ms: (r) => r.rate.p99Ms,
  deliveries_per_s: (r) => r.throughput.deliveriesPerSecond,
  server_cpu_us_per_delivery: (r) => r.throughput.serverCpuUsPerDelivery,
  load_cpu_share: (r) => r.throughput.loadCpuShare,
};

function ratio(records: RunRecord[], scenario: string, target: TargetId, against: TargetId, metric: Metric): number {
  const ratios: number[] = [];
  for (const mine of records) {
    if (mine.scenario !== scenario || mine.target !== target || mine.result === undefined) continue;
    const other = records.find((o) => o.scenario === scenario && o.target === against && o.repetition === mine.repetition);
    if (other?.result !== undefined) ratios.push(metric(mine.result) / metric(other.result));
  }
  return median(ratios);
}

const round = (v: number, digits: number): number | null => (Number.isFinite(v) ? Number(v.toFixed(digits)) : null);

/** One row per (scenario, target), in the order given. */
export function fanoutRows(records: RunRecord[], scenarios: { id: string; title: string }[], targets: readonly TargetId[]): ResultRow[] {
  const rows: ResultRow[] = [];
  for (const scenario of scenarios) {
    for (const target of targets) {
      const mine = records.filter((r) => r.scenario === scenario.id && r.target === target);
      const ok = mine.flatMap((r) => (r.result === undefined ? [] : [r.result]));
      const m = (metric: Metric): number => median(ok.map(metric));
      const lost = ok.reduce((sum, r) => sum + (r.rate.expected - r.rate.delivered) + (r.throughput.expected - r.throughput.delivered), 0);
      rows.push({
        name: `${scenario.title} — ${TARGET_LABELS[target]}`,
        latency_p50_ms: round(m(METRICS.latency_p50_ms!), 2),
        latency_p99_ms: round(m(METRICS.latency_p99_ms!), 2),
        deliveries_per_s: round(m(METRICS.deliveries_per_s!), 0),
        server_cpu_us_per_delivery: round(m(METRICS.server_cpu_us_per_delivery!), 2),
        throughput_vs_ws: round(ratio(records, scenario.id, target, 'ws', METRICS.deliveries_per_s!), 2),
        throughput_vs_socketio: round(ratio(records, scenario.id, target, 'socketio', METRICS.deliveries_per_s!), 2),
        cpu_vs_ws: round(ratio(records, scenario.id, target, 'ws', METRICS.server_cpu_us_per_delivery!), 2),
        cpu_vs_socketio: round(ratio(records, scenario.id, target, 'socketio', METRICS.server_cpu_us_per_delivery!), 2),
        p50_vs_ws: round(ratio(records, scenario.id, target, 'ws', METRICS.latency_p50_ms!), 2),
        load_cpu_share: round(m(METRICS.load_cpu_share!), 2),
        lost,
        ok_runs: `${ok.length}/${mine.length}`,
      });
    }
  }
  return rows;
}
