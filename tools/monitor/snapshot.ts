/**
 * One snapshot of a node from two /metrics scrapes (the previous and this one): gauges as they are now, counters as rates
 * over the interval (a restart between the scrapes, told as the summary tells it — a new process_start_time_seconds or a
 * counter that went down — means each counter's value is its increase since, as PromQL's rate() reads a reset),
 * broadcast latency from the histogram buckets observed in the interval.
 */
import { abortAfter } from '../../src/lifecycle/abort-after.js';
import { notBeaconMetrics, parseExposition, select, sum, sumBy, type Scrape } from '../prometheus/exposition.js';
import { histogramQuantile, type Bucket } from './histogram-quantile.js';
import type { StackHealth } from './stack-health.js';
import { restartedBetween } from './summary.js';

/** What one endpoint answered: an HTTP status, or why it did not. */
export type Probe = { status: number } | { error: string };

/** What one snapshot shows; undefined where /metrics could not tell (first snapshot, scrape failed). */
export interface Snapshot {
  time: string;
  /** Seconds the rates are taken over; 0 for the first snapshot (no rates yet). */
  intervalSeconds: number;
  /** Why /metrics could not be read, if it could not. */
  metricsError: string | undefined;
  connections: number | undefined;
  connectsPerSecond: number | undefined;
  disconnectsPerSecond: number | undefined;
  messagesInPerSecond: number | undefined;
  messagesOutPerSecond: number | undefined;
  /** Errors per second, summed over every reason below. */
  errorsPerSecond: number | undefined;
  /** Per second, by `family:reason` (frame, rejected, api_auth, closed), only the ones above 0. */
  errorsByReason: Record<string, number>;
  broadcastP50Ms: number | undefined;
  broadcastP99Ms: number | undefined;
  eventLoopLagP99Ms: number | undefined;
  rssBytes: number | undefined;
  healthz: Probe;
  readyz: Probe;
  stack: StackHealth | undefined;
}

/** Closes that are not an error: the client left, or the server drained. */
const ORDINARY_CLOSES = new Set(['client_close', 'server_shutdown']);

/**
 * A counter's increase between two scrapes. After a restart it is the new value, even when that is above the old one:
 * read as a step, a restarted counter that passed its old value gave rates and err/s counts below the summary's totals
 * (a probe: 8 refusals in the totals, 3 in "errors in /metrics").
 */
function increase(cur: number, prev: number, restarted: boolean): number {
  return restarted || cur < prev ? cur : cur - prev;
}

function broadcastBuckets(scrape: Scrape): Map<number, number> {
  const byLe = new Map<number, number>();
  for (const s of select(scrape, 'websocket_broadcast_duration_seconds_bucket')) {
    const le = s.labels.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(s.labels.le);
    byLe.set(le, (byLe.get(le) ?? 0) + s.value);
  }
  return byLe;
}

/** Per-second increases of `name` grouped by `label`, prefixed `family:`. */
function reasonRates(
  out: Record<string, number>,
  cur: Scrape,
  prev: Scrape,
  restarted: boolean,
  seconds: number,
  name: string,
  family: string,
  skip: Set<string> = new Set(),
): void {
  const before = sumBy(prev, name, 'reason');
  for (const [reason, value] of sumBy(cur, name, 'reason')) {
    if (skip.has(reason)) continue;
    const d = increase(value, before.get(reason) ?? 0, restarted);
    if (d > 0) out[`${family}:${reason}`] = d / seconds;
  }
}

/** Builds a snapshot; `prev` is the previous successful scrape (undefined for the first). */
export function buildSnapshot(input: {
  cur: Scrape | undefined;
  prev: Scrape | undefined;
  metricsError: string | undefined;
  healthz: Probe;
  readyz: Probe;
  stack: StackHealth | undefined;
}): Snapshot {
  const { cur, prev } = input;
  const snapshot: Snapshot = {
    time: new Date(cur?.at ?? Date.now()).toISOString(),
    intervalSeconds: 0,
    metricsError: input.metricsError,
    connections: undefined,
    connectsPerSecond: undefined,
    disconnectsPerSecond: undefined,
    messagesInPerSecond: undefined,
    messagesOutPerSecond: undefined,
    errorsPerSecond: undefined,
    errorsByReason: {},
    broadcastP50Ms: undefined,
    broadcastP99Ms: undefined,
    eventLoopLagP99Ms: undefined,
    rssBytes: undefined,
    healthz: input.healthz,
    readyz: input.readyz,
    stack: input.stack,
  };
  if (cur === undefined) return snapshot;
  snapshot.connections = sum(cur, 'websocket_connections');
  const lag = select(cur, 'nodejs_eventloop_delay_p99')[0];
  if (lag !== undefined) snapshot.eventLoopLagP99Ms = lag.value * 1000;
  const rss = select(cur, 'process_resident_memory_bytes')[0];
  if (rss !== undefined) snapshot.rssBytes = rss.value;

  // Broadcast latency: buckets observed in the interval (since the process started, for the first snapshot or a restart).
  const restarted = prev !== undefined && restartedBetween(prev, cur);
  const now = broadcastBuckets(cur);
  const then = prev === undefined ? new Map<number, number>() : broadcastBuckets(prev);
  const buckets: Bucket[] = [...now].map(([le, count]) => ({ le, count: increase(count, then.get(le) ?? 0, restarted) }));
  const p50 = histogramQuantile(0.5, buckets);
  const p99 = histogramQuantile(0.99, buckets);
  snapshot.broadcastP50Ms = p50 === undefined ? undefined : p50 * 1000;
  snapshot.broadcastP99Ms = p99 === undefined ? undefined : p99 * 1000;

  if (prev === undefined) return snapshot;
  const seconds = Math.max(0.001, (cur.at - prev.at) / 1000);
  snapshot.intervalSeconds = seconds;
  const rate = (name: string) => increase(sum(cur, name), sum(prev, name), restarted) / seconds;
  snapshot.connectsPerSecond = rate('websocket_connections_opened_total');
  snapshot.disconnectsPerSecond = rate('websocket_connections_closed_total');
  snapshot.messagesInPerSecond = rate('websocket_messages_received_total');
  snapshot.messagesOutPerSecond = rate('websocket_messages_sent_total');
  const reasons: Record<string, number> = {};
  reasonRates(reasons, cur, prev, restarted, seconds, 'websocket_message_errors_total', 'frame');
  reasonRates(reasons, cur, prev, restarted, seconds, 'websocket_connections_rejected_total', 'rejected');
  reasonRates(reasons, cur, prev, restarted, seconds, 'websocket_api_auth_failures_total', 'api_auth');
  reasonRates(reasons, cur, prev, restarted, seconds, 'websocket_api_refusals_total', 'api');
  reasonRates(reasons, cur, prev, restarted, seconds, 'websocket_http_malformed_requests_total', 'http');
  reasonRates(reasons, cur, prev, restarted, seconds, 'websocket_connections_closed_total', 'closed', ORDINARY_CLOSES);
  snapshot.errorsByReason = reasons;
  snapshot.errorsPerSecond = Object.values(reasons).reduce((a, b) => a + b, 0);
  return snapshot;
}

/** GETs `url`, bounded to `timeoutMs` and by `end` (the end of the run), and reports its status. */
export async function probe(url: string, timeoutMs = 3000, end?: AbortSignal): Promise<Probe> {
  const bound = abortAfter(timeoutMs, end);
  try {
    const res = await fetch(url, { signal: bound.signal });
    await res.arrayBuffer();
    return { status: res.status };
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } };
    return { error: e.cause?.code ?? e.name };
  } finally {
    bound.clear();
  }
}

/**
 * GETs and parses /metrics at `url`, bounded like `probe`; the scrape, or why there is none (no answer, a non-200, or a
 * page that is not Beacon's /metrics).
 */
export async function readMetrics(
  url: string,
  timeoutMs = 5000,
  end?: AbortSignal,
): Promise<{ scrape: Scrape; error: undefined } | { scrape: undefined; error: string }> {
  const bound = abortAfter(timeoutMs, end);
  try {
    const res = await fetch(url, { signal: bound.signal });
    const text = await res.text();
    if (res.status !== 200) return { scrape: undefined, error: `${url} answered ${res.status}` };
    const scrape = parseExposition(text);
    // A wrong --metrics (a /healthz, another exporter) answers 200 too: read as Beacon's, it showed an idle, healthy node.
    const notBeacon = notBeaconMetrics(scrape, url);
    if (notBeacon !== undefined) return { scrape: undefined, error: notBeacon };
    return { scrape, error: undefined };
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } };
    return { scrape: undefined, error: e.cause?.code ?? e.name };
  } finally {
    bound.clear();
  }
}
