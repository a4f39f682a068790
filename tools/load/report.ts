/**
 * The end of a run: one report object (what --json writes), the verdict that sets the exit code, and the same report
 * as a table for a person.
 */
import type { Histogram } from 'hdr-histogram-js';
import type { Audit, AuditRow } from './audit.js';
import type { LoadOptions } from './options.js';
import type { RunResult } from './run.js';

/** Percentiles in milliseconds of an HDR histogram of microseconds. */
export interface Percentiles {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

/** The report of a run: what --json prints, and what the table shows. */
export interface LoadReport {
  tool: 'beacon-load';
  started_at: string;
  options: Omit<LoadOptions, 'appSecret' | 'json'>;
  phases_seconds: { ramp: number; steady: number; drain: number; close: number };
  connections: {
    attempted: number;
    opened: number;
    subscribed: number;
    failed: number;
    closed: number;
    close_codes: Record<string, number>;
    connect_ms: Percentiles;
  };
  messages: {
    publish_via: 'client' | 'http' | 'none';
    publish_via_reason: string;
    sent: number;
    /** Sends skipped because the generator could not keep up. */
    skipped: number;
    http_accepted: number;
    /** HTTP publishes that got no answer (timeout) but whose deliveries arrived: accepted, counted in http_accepted. */
    http_accepted_unanswered: number;
    client_events_refused: number;
    expected_deliveries: number;
    received: number;
    lost: number;
    sent_per_second: number;
    received_per_second: number;
    latency_ms: Percentiles;
  };
  frames: { sent_by_clients: Record<string, number>; received_by_clients: Record<string, number> };
  errors: Record<string, number>;
  audit: Audit | null;
  verdict: { ok: boolean; reasons: string[] };
}

const round = (n: number, digits = 3) => Number(n.toFixed(digits));
const MAX_IN_FLIGHT_TEXT = 'the HTTP requests in flight at their limit';

function percentiles(h: Histogram): Percentiles {
  const at = (p: number) => (h.totalCount === 0 ? 0 : round(h.getValueAtPercentile(p) / 1000));
  return { count: h.totalCount, p50: at(50), p90: at(90), p99: at(99), p999: at(99.9), max: round(h.maxValue / 1000) };
}

function record<K extends string | number>(map: Map<K, number>): Record<string, number> {
  return Object.fromEntries([...map.entries()].sort((a, b) => b[1] - a[1]).map(([k, v]) => [String(k), v]));
}

/** Builds the report and its verdict (the exit code) from a finished run. */
export function buildReport(options: LoadOptions, result: RunResult, audit: Audit | null): LoadReport {
  const t = result.tally;
  const { appSecret: _secret, json: _json, ...shown } = options;
  const lost = Math.max(0, t.expectedDeliveries - t.deliveries);
  const reasons: string[] = [];
  const lostRate = t.expectedDeliveries === 0 ? 0 : lost / t.expectedDeliveries;
  if (lost > 0 && lostRate > options.maxErrorRate) {
    reasons.push(`${lost} of ${t.expectedDeliveries} deliveries lost (${(lostRate * 100).toFixed(2)} %)`);
  }
  const failRate = t.attempted === 0 ? 0 : t.failed / t.attempted;
  if (t.failed > 0 && failRate > options.maxErrorRate) {
    reasons.push(`${t.failed} of ${t.attempted} connections failed (${(failRate * 100).toFixed(2)} %)`);
  }
  const wanted = t.messagesSent + t.skipped;
  const skipRate = wanted === 0 ? 0 : t.skipped / wanted;
  if (t.skipped > 0 && skipRate > options.maxErrorRate) {
    reasons.push(`the load was not applied: ${t.skipped} of ${wanted} sends skipped with ${MAX_IN_FLIGHT_TEXT} unanswered`);
  }
  if (audit !== null && audit.differences > 0) reasons.push(`the audit found ${audit.differences} difference(s)`);
  const steady = result.phases.steadySeconds;
  return {
    tool: 'beacon-load',
    started_at: result.startedAt,
    options: shown,
    phases_seconds: {
      ramp: round(result.phases.rampSeconds),
      steady: round(steady),
      drain: round(result.phases.drainSeconds),
      close: round(result.phases.closeSeconds),
    },
    connections: {
      attempted: t.attempted,
      opened: t.established,
      subscribed: t.subscribed,
      failed: t.failed,
      closed: t.closedAfterEstablished + t.closedBeforeEstablished,
      close_codes: record(t.closeCodes),
      connect_ms: percentiles(t.connectTime),
    },
    messages: {
      publish_via: result.publishVia,
      publish_via_reason: result.publishViaReason,
      sent: t.messagesSent,
      skipped: t.skipped,
      http_accepted: t.httpPublished + t.httpAcceptedUnanswered,
      http_accepted_unanswered: t.httpAcceptedUnanswered,
      client_events_refused: t.clientEventsRejected,
      expected_deliveries: t.expectedDeliveries,
      received: t.deliveries,
      lost,
      sent_per_second: steady > 0 ? round(t.messagesSent / steady, 1) : 0,
      received_per_second: steady > 0 ? round(t.deliveries / steady, 1) : 0,
      latency_ms: percentiles(t.latency),
    },
    frames: { sent_by_clients: record(t.framesSent), received_by_clients: record(t.framesReceived) },
    errors: record(t.errors),
    audit,
    verdict: { ok: reasons.length === 0, reasons },
  };
}

/** Left-aligned first column, right-aligned others. */
function table(rows: string[][]): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows
    .map((r) => r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join('  ').trimEnd())
    .join('\n');
}

function percentileRow(name: string, p: Percentiles): string[] {
  return [name, String(p.count), String(p.p50), String(p.p90), String(p.p99), String(p.p999), String(p.max)];
}

function auditLines(audit: Audit): string[] {
  const lines = [
    '',
    `Audit against ${audit.metricsUrl} (server = after − before; difference = server − clients)`,
    table([
      ['', 'server', 'clients', 'difference'],
      ...audit.rows.map((r: AuditRow) => [r.what, String(r.server), String(r.clients), r.difference === 0 ? '0' : `${r.difference > 0 ? '+' : ''}${r.difference}  <<`]),
    ]),
  ];
  for (const r of audit.rows.filter((x) => x.difference !== 0)) {
    lines.push(`  ${r.what} (${r.metric}): ${r.difference > 0 ? '+' : ''}${r.difference}: ${r.meaning}`);
  }
  if (audit.differences === 0) lines.push('  no difference: every counter equals what the clients saw');
  const l = audit.loss;
  if (l.lost > 0) {
    lines.push(
      `  the ${l.lost} lost deliveries: ${l.writtenThenCut} written into the buffer of a socket the server then cut, ` +
        `${l.droppedCounted} dropped and counted by the server, ${l.notRecipient} owed to sockets the server had already ` +
        'removed from their channel (or, without slow consumers, lost silently)',
    );
  }
  if (!audit.settled) lines.push('  not settled: the server still counted open connections of this run at the last scrape');
  const context = Object.entries(audit.context).filter(([, v]) => v !== 0);
  if (context.length > 0) lines.push(`  server, for context: ${context.map(([k, v]) => `${k} ${v}`).join(', ')}`);
  return lines;
}

/** The report as a person reads it. */
export function renderReport(r: LoadReport): string {
  const c = r.connections;
  const m = r.messages;
  const codes = Object.entries(c.close_codes).map(([code, n]) => `${code}×${n}`).join(' ') || '-';
  const lines = [
    `beacon-load: ${r.options.sockets} sockets on ${r.options.channels} ${r.options.channelType} channel(s) of ${r.options.host}, ` +
      `ramp ${r.phases_seconds.ramp} s, steady ${r.phases_seconds.steady} s, drain ${r.phases_seconds.drain} s`,
    '',
    table([
      ['connections', 'attempted', 'opened', 'subscribed', 'failed', 'closed', 'close codes'],
      ['', String(c.attempted), String(c.opened), String(c.subscribed), String(c.failed), String(c.closed), codes],
    ]),
    '',
    `messages via ${m.publish_via} (${m.publish_via_reason})`,
    table([
      ['', 'sent', 'expected', 'received', 'lost', 'sent/s', 'received/s', 'skipped'],
      ['', String(m.sent), String(m.expected_deliveries), String(m.received), String(m.lost), String(m.sent_per_second), String(m.received_per_second), String(m.skipped)],
    ]),
    '',
    table([
      ['ms', 'count', 'p50', 'p90', 'p99', 'p99.9', 'max'],
      percentileRow('end-to-end latency', m.latency_ms),
      percentileRow('connect time', c.connect_ms),
    ]),
  ];
  const errors = Object.entries(r.errors);
  lines.push('', errors.length === 0 ? 'errors: none' : 'errors:');
  for (const [reason, n] of errors) lines.push(`  ${String(n).padStart(7)}  ${reason}`);
  if (r.audit !== null) lines.push(...auditLines(r.audit));
  lines.push('', r.verdict.ok ? 'verdict: ok' : `verdict: FAILED: ${r.verdict.reasons.join('; ')}`);
  return lines.join('\n');
}
