/** What a monitoring session adds up to: peaks over the snapshots, totals over the run, distinct errors with counts. */
import { select, type Scrape } from '../prometheus/exposition.js';
import type { LogEvent } from './log-line.js';
import type { SourceStatus } from './poller.js';
import type { Snapshot } from './snapshot.js';

/** The end-of-session summary (also the `summary` object of --json). */
export interface Summary {
  seconds: number;
  snapshots: number;
  peaks: {
    connections: number | undefined;
    connectsPerSecond: number | undefined;
    messagesInPerSecond: number | undefined;
    messagesOutPerSecond: number | undefined;
    errorsPerSecond: number | undefined;
    broadcastP99Ms: number | undefined;
    eventLoopLagP99Ms: number | undefined;
    rssBytes: number | undefined;
  };
  /**
   * Counter increases over the run, as PromQL's increase() reads them: the steps between consecutive scrapes added up,
   * per series, a series that went down (or a new process_start_time_seconds) read as a restart, its new value being the
   * increase since then (undefined without two scrapes).
   */
  totals: Record<string, number> | undefined;
  /**
   * Restarts of the target seen between consecutive scrapes: a new process_start_time_seconds, or a counter that went
   * down. `at` is the time of each scrape that first showed one. (One target: the monitor reads one --metrics.)
   */
  restarts: { target: string; count: number; at: string[] };
  /** Snapshots where /healthz or /readyz was not 200, or /metrics could not be read. */
  unhealthySnapshots: number;
  /** Snapshot ticks skipped because the previous snapshot was still waiting for an answer. */
  skippedSnapshots: number;
  /** What the skipped ticks waited for (URLs, `docker`). */
  skippedWaitingFor: string[];
  /** What was still waiting for an answer when the run ended, and was aborted (snapshot requests, log sources). */
  unansweredAtEnd: string[];
  /**
   * The errors of the err/s column over the run, counted (`family:reason` → how many), from /metrics. Refusals a client
   * caused (`rejected:unknown_app`, `api_auth:…`) are logged at info, so they are here and not among the log lines.
   */
  errorsByReason: Record<string, number>;
  /** Each followed log source and how its polls went; empty when no --loki or --log-file was given. */
  logSources: SourceStatus[];
  /** Warn and worse lines read (only what the log sources answered: see `logSources`). */
  logLines: { warn: number; error: number; fatal: number };
  /** Distinct warn/error lines, most frequent first. */
  distinctErrors: Array<{ key: string; level: string; count: number; first: string; last: string }>;
}

const TOTALS: Record<string, string> = {
  connections_opened: 'websocket_connections_opened_total',
  connections_closed: 'websocket_connections_closed_total',
  connections_rejected: 'websocket_connections_rejected_total',
  messages_received: 'websocket_messages_received_total',
  messages_sent: 'websocket_messages_sent_total',
  frames_refused: 'websocket_message_errors_total',
  events_published: 'websocket_events_published_total',
  slow_consumers_cut: 'websocket_backpressure_events_total',
};

type Peaks = Summary['peaks'];

/** The series of `name` (those including every pair of `match`) by their labels: one key per series. */
function seriesOf(scrape: Scrape, name: string, match: Record<string, string>): Map<string, number> {
  const out = new Map<string, number>();
  for (const s of select(scrape, name, match)) {
    const key = JSON.stringify(Object.entries(s.labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    out.set(key, (out.get(key) ?? 0) + s.value);
  }
  return out;
}

/** The process's start time, when the target exports it. */
function startTime(scrape: Scrape): number | undefined {
  return select(scrape, 'process_start_time_seconds')[0]?.value;
}

/**
 * True when the target restarted between `prev` and `cur`: its start time changed, or a counter of the totals went down
 * (a counter only goes down when its process started again).
 */
export function restartedBetween(prev: Scrape, cur: Scrape): boolean {
  const before = startTime(prev);
  const now = startTime(cur);
  if (before !== undefined && now !== undefined && before !== now) return true;
  for (const name of new Set(Object.values(TOTALS))) {
    const was = seriesOf(prev, name, {});
    for (const [key, value] of seriesOf(cur, name, {})) if (value < (was.get(key) ?? 0)) return true;
  }
  return false;
}

/** Counters of the totals: which series of which name each adds up. */
const TOTAL_MATCH = (name: string): Record<string, string> =>
  name === 'websocket_backpressure_events_total' ? { action: 'disconnected' } : {};

/** Accumulates scrapes, snapshots and log lines into a `Summary`. */
export class SummaryBuilder {
  private readonly startedAt = Date.now();
  private last: Scrape | undefined;
  /** Increases added up scrape to scrape; undefined until a second scrape. */
  private totals: Record<string, number> | undefined;
  private readonly restartsAt: string[] = [];
  private snapshots = 0;
  private unhealthy = 0;
  private skipped = 0;
  private readonly skippedWaitingFor = new Set<string>();
  private readonly errorCounts: Record<string, number> = {};
  private readonly peaks: Peaks = {
    connections: undefined,
    connectsPerSecond: undefined,
    messagesInPerSecond: undefined,
    messagesOutPerSecond: undefined,
    errorsPerSecond: undefined,
    broadcastP99Ms: undefined,
    eventLoopLagP99Ms: undefined,
    rssBytes: undefined,
  };
  private readonly levels = { warn: 0, error: 0, fatal: 0 };
  private readonly errors = new Map<string, { key: string; level: string; count: number; first: string; last: string }>();

  /** `target` names the endpoint in the summary's `restarts`. */
  constructor(private readonly target = '/metrics') {}

  /**
   * A successful scrape: each counter's increase since the previous one is added to the totals, per series: the step
   * when it went up, its whole value when the target restarted in between (a series absent before counts from 0: a
   * counter nobody incremented is not exported).
   */
  scrape(s: Scrape): void {
    const prev = this.last;
    this.last = s;
    if (prev === undefined) return;
    const restarted = restartedBetween(prev, s);
    if (restarted) this.restartsAt.push(new Date(s.at).toISOString());
    const totals = (this.totals ??= Object.fromEntries(Object.keys(TOTALS).map((label) => [label, 0])));
    for (const [label, name] of Object.entries(TOTALS)) {
      const was = seriesOf(prev, name, TOTAL_MATCH(name));
      for (const [key, value] of seriesOf(s, name, TOTAL_MATCH(name))) {
        const before = was.get(key) ?? 0;
        totals[label] = (totals[label] ?? 0) + (restarted || value < before ? value : value - before);
      }
    }
  }

  snapshot(s: Snapshot): void {
    this.snapshots++;
    const ok = (p: Snapshot['healthz']) => 'status' in p && p.status === 200;
    if (!ok(s.healthz) || !ok(s.readyz) || s.metricsError !== undefined) this.unhealthy++;
    // Rates back to counts: each is an increase over the snapshot's interval.
    for (const [reason, rate] of Object.entries(s.errorsByReason)) {
      this.errorCounts[reason] = (this.errorCounts[reason] ?? 0) + Math.round(rate * s.intervalSeconds);
    }
    for (const key of Object.keys(this.peaks) as Array<keyof Peaks>) {
      const v = s[key];
      if (v === undefined) continue;
      // The first snapshot's broadcast latency is of everything since the process started (no scrape before it to take
      // away): days of history on a node up for days, not a peak of the session.
      if (key === 'broadcastP99Ms' && s.intervalSeconds === 0) continue;
      const peak = this.peaks[key];
      if (peak === undefined || v > peak) this.peaks[key] = v;
    }
  }

  /** A snapshot tick skipped: the previous snapshot was still waiting for `waitingFor`. */
  skippedSnapshot(waitingFor: Iterable<string>): void {
    this.skipped++;
    for (const w of waitingFor) this.skippedWaitingFor.add(w);
  }

  log(e: LogEvent): void {
    this.levels[e.level]++;
    const seen = this.errors.get(e.key);
    if (seen === undefined) this.errors.set(e.key, { key: e.key, level: e.level, count: 1, first: e.time, last: e.time });
    else {
      seen.count++;
      seen.last = e.time;
    }
  }

  /** The summary; `end` says what the end of the run found: the log sources' state and what had not answered. */
  build(end: { logSources: SourceStatus[]; unansweredAtEnd: string[] } = { logSources: [], unansweredAtEnd: [] }): Summary {
    return {
      seconds: (Date.now() - this.startedAt) / 1000,
      snapshots: this.snapshots,
      peaks: { ...this.peaks },
      totals: this.totals === undefined ? undefined : { ...this.totals },
      restarts: { target: this.target, count: this.restartsAt.length, at: [...this.restartsAt] },
      unhealthySnapshots: this.unhealthy,
      skippedSnapshots: this.skipped,
      skippedWaitingFor: [...this.skippedWaitingFor],
      unansweredAtEnd: [...end.unansweredAtEnd],
      errorsByReason: Object.fromEntries(
        Object.entries(this.errorCounts)
          .filter(([, n]) => n > 0)
          .sort((a, b) => b[1] - a[1]),
      ),
      logSources: end.logSources.map((s) => ({ ...s })),
      logLines: { ...this.levels },
      distinctErrors: [...this.errors.values()].sort((a, b) => b.count - a.count),
    };
  }
}
