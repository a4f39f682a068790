/** What a monitoring session adds up to: peaks over the snapshots, totals over the run, distinct errors with counts. */
import { sum, type Scrape } from '../prometheus/exposition.js';
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
  /** Counter increases from the first to the last scrape (undefined without two scrapes). */
  totals: Record<string, number> | undefined;
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

/** Accumulates scrapes, snapshots and log lines into a `Summary`. */
export class SummaryBuilder {
  private readonly startedAt = Date.now();
  private first: Scrape | undefined;
  private last: Scrape | undefined;
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

  scrape(s: Scrape): void {
    this.first ??= s;
    this.last = s;
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
    let totals: Record<string, number> | undefined;
    if (this.first !== undefined && this.last !== undefined && this.first !== this.last) {
      totals = {};
      for (const [label, name] of Object.entries(TOTALS)) {
        const match: Record<string, string> = name === 'websocket_backpressure_events_total' ? { action: 'disconnected' } : {};
        totals[label] = Math.max(0, sum(this.last, name, match) - sum(this.first, name, match));
      }
    }
    return {
      seconds: (Date.now() - this.startedAt) / 1000,
      snapshots: this.snapshots,
      peaks: { ...this.peaks },
      totals,
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
