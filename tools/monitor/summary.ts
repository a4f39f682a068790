/** What a monitoring session adds up to: peaks over the snapshots, totals over the run, distinct errors with counts. */
import { sum, type Scrape } from '../prometheus/exposition.js';
import type { LogEvent } from './log-line.js';
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
    for (const key of Object.keys(this.peaks) as Array<keyof Peaks>) {
      const v = s[key];
      if (v === undefined) continue;
      const peak = this.peaks[key];
      if (peak === undefined || v > peak) this.peaks[key] = v;
    }
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

  build(): Summary {
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
      logLines: { ...this.levels },
      distinctErrors: [...this.errors.values()].sort((a, b) => b.count - a.count),
    };
  }
}
