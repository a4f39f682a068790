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
  /** The run's id: in its channel names (`beacon-load-{id}-N`) and in every message; only those messages are counted. */
  run_id: string;
  started_at: string;
  options: Omit<LoadOptions, 'appSecret' | 'json' | 'warnings'>;
  /** What the flags asked that the run did otherwise (--channels reduced to --sockets). */
  warnings: string[];
  phases_seconds: { ramp: number; steady: number; drain: number; close: number };
  connections: {
    attempted: number;
    opened: number;
    subscribed: number;
    /** Never subscribed: refused, timed out, subscription error, lost before subscribing. */
    failed: number;
    /** Of the failed, those the server refused at the upgrade (pusher:error / 4xxx close, or an HTTP status). */
    refused: number;
    /** Subscribed, then closed during the run by the server or lost (not by this tool). */
    closed_during_run: number;
    closed: number;
    close_codes: Record<string, number>;
    connect_ms: Percentiles;
  };
  messages: {
    publish_via: 'client' | 'http' | 'none';
    publish_via_reason: string;
    /** Load messages due in the steady state: sent, or skipped. */
    due: number;
    sent: number;
    /** Sends skipped because the generator could not keep up. */
    skipped: number;
    /** Client events due on a socket that had closed: not sent. */
    skipped_socket_closed: number;
    http_accepted: number;
    /** HTTP publishes that got no answer (timeout) but whose deliveries arrived: accepted, counted in http_accepted. */
    http_accepted_unanswered: number;
    /** HTTP publishes answered with a non-2xx status. */
    http_refused: number;
    /** HTTP publishes that got no answer and none of whose deliveries arrived. */
    http_unanswered: number;
    /** pusher:error answers to client events, the probe's included (the audit's "frames refused"). */
    client_events_refused: number;
    /** pusher:error answers to load messages (the probe's not included). */
    pusher_errors: number;
    expected_deliveries: number;
    received: number;
    /** Events on this run's channels that were not its messages (another run's, anyone's publish): not counted. */
    foreign: number;
    lost: number;
    sent_per_second: number;
    received_per_second: number;
    latency_ms: Percentiles;
  };
  /** Why the steady state ended before --duration (every socket gone), or null. */
  steady_ended_early: string | null;
  frames: {
    sent_by_clients: Record<string, number>;
    received_by_clients: Record<string, number>;
    /** Frames read before connection_established (refusals): the server counts them as refusals, not as frames. */
    received_on_refused_sockets: number;
  };
  errors: Record<string, number>;
  audit: Audit | null;
  /** Why the audit could not be done (with --metrics), or null. */
  audit_error: string | null;
  /**
   * ok: no reason and not interrupted (exit 0). interrupted: the signal that cut the run short and the phase it came in
   * (exit 130 for SIGINT, 143 for SIGTERM). reasons: one line per failure (exit 1).
   */
  verdict: { ok: boolean; interrupted: { by: string; phase: string } | null; reasons: string[] };
}

const round = (n: number, digits = 3) => Number(n.toFixed(digits));
const PHASE_NAMES: Record<string, string> = {
  ramp: 'ramp',
  steady: 'steady state',
  drain: 'drain',
  close: 'close',
  audit: 'audit',
};
const MAX_IN_FLIGHT_TEXT = 'the HTTP requests in flight at their limit';

/** Percentile `p` of `h` (recorded in µs) in ms, clamped to the largest value recorded (below); 0 when it holds nothing. */
export function percentileMs(h: Histogram, p: number): number {
  return h.totalCount === 0 ? 0 : Math.min(h.getValueAtPercentile(p), h.maxValue) / 1000;
}

/**
 * HDR answers a percentile with the highest value of its bucket (here up to 0.1 % above what was recorded), beside the
 * exact largest value: a p99 above max (19.807 beside 19.805) reads as a bug. No sample is above max, so none of its
 * percentiles is: each is clamped to it.
 */
function percentiles(h: Histogram): Percentiles {
  const max = h.totalCount === 0 ? 0 : h.maxValue;
  const at = (p: number) => round(percentileMs(h, p));
  return { count: h.totalCount, p50: at(50), p90: at(90), p99: at(99), p999: at(99.9), max: round(max / 1000) };
}

function record<K extends string | number>(map: Map<K, number>): Record<string, number> {
  return Object.fromEntries([...map.entries()].sort((a, b) => b[1] - a[1]).map(([k, v]) => [String(k), v]));
}

/** `401×2, 500×1`: the entries of a count map, largest first. */
function counts<K extends string | number>(map: Map<K, number>, label: (key: K) => string = String): string {
  return [...map.entries()]
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${label(k)}×${v}`)
    .join(', ');
}

function total(map: Map<unknown, number>): number {
  let n = 0;
  for (const v of map.values()) n += v;
  return n;
}

const percent = (rate: number) => `${(rate * 100).toFixed(2)} %`;

/** The load messages the server accepted: HTTP publishes answered 2xx (or proven by a delivery), client events not refused. */
function acceptedMessages(result: RunResult): number {
  const t = result.tally;
  if (result.publishVia === 'http') return t.httpPublished + t.httpAcceptedUnanswered;
  if (result.publishVia === 'client') return Math.max(0, t.messagesSent - total(t.pusherErrors));
  return 0;
}

/**
 * The verdict. Each count of something that went wrong fails it when its share of what it is a share of exceeds
 * --max-error-rate (default 0: any): lost deliveries (of those expected), failed connections (of those attempted),
 * connections closed during the run by the server or lost (of those subscribed), sends not made — skipped with the HTTP
 * requests at their limit, or due on a socket that had closed — (of those due), HTTP publishes refused (non-2xx) and
 * HTTP publishes that got no answer (of those made), pusher:error answers (of the client events sent). Never tolerated:
 * nothing delivered while messages were due, a steady state that ended early because every socket was gone, an audit
 * difference, and an audit that could not be done. One line per reason.
 */
export function judge(options: LoadOptions, result: RunResult, audit: Audit | null): string[] {
  const t = result.tally;
  const max = options.maxErrorRate;
  const reasons: string[] = [];
  /** `count` of `of` failed the verdict: past --max-error-rate (a count with nothing to be a share of is 100 %). */
  const over = (count: number, of: number): number | undefined => {
    if (count <= 0) return undefined;
    const rate = of <= 0 ? 1 : count / of;
    return rate > max ? rate : undefined;
  };
  let rate: number | undefined;

  const lost = Math.max(0, t.expectedDeliveries - t.deliveries);
  if ((rate = over(lost, t.expectedDeliveries)) !== undefined) {
    reasons.push(`${lost} of ${t.expectedDeliveries} deliveries lost (${percent(rate)})`);
  }
  if ((rate = over(t.failed, t.attempted)) !== undefined) {
    const refused = t.refused > 0 ? `, ${t.refused} of them refused by the server` : '';
    reasons.push(`${t.failed} of ${t.attempted} connections failed (${percent(rate)}${refused})`);
  }
  const closed = total(t.closedDuringRun);
  if ((rate = over(closed, t.subscribed)) !== undefined) {
    const codes = counts(t.closedDuringRun, (code) => (code === 1006 ? '1006 (lost, no close frame)' : String(code)));
    reasons.push(
      `${closed} of ${t.subscribed} subscribed connections were closed during the run by the server or lost: ${codes} (${percent(rate)})`,
    );
  }
  if ((rate = over(t.skipped, result.due)) !== undefined) {
    reasons.push(`the load was not applied: ${t.skipped} of ${result.due} sends skipped with ${MAX_IN_FLIGHT_TEXT} unanswered (${percent(rate)})`);
  }
  if ((rate = over(t.skippedSocketClosed, result.due)) !== undefined) {
    reasons.push(`${t.skippedSocketClosed} of ${result.due} client events were not sent: their socket had closed (${percent(rate)})`);
  }
  if ((rate = over(t.httpRefused, t.httpAttempted)) !== undefined) {
    const auth = [...t.httpRefusedStatuses.keys()].some((s) => s === 401 || s === 403 || s === 404)
      ? ': are --app-id, --app-key and --app-secret right?'
      : '';
    reasons.push(
      `${t.httpRefused} of ${t.httpAttempted} HTTP publishes refused (${counts(t.httpRefusedStatuses)}) (${percent(rate)})${auth}`,
    );
  }
  const unanswered = t.httpUnanswered();
  if ((rate = over(unanswered, t.httpAttempted)) !== undefined) {
    reasons.push(
      `${unanswered} of ${t.httpAttempted} HTTP publishes got no answer (${counts(t.httpNoAnswer)}) and none of their deliveries arrived (${percent(rate)})`,
    );
  }
  const pusherErrors = total(t.pusherErrors);
  const clientEvents = result.publishVia === 'client' ? t.messagesSent : 0;
  if ((rate = over(pusherErrors, clientEvents)) !== undefined) {
    reasons.push(
      `the server answered ${pusherErrors} pusher:error (${counts(t.pusherErrors)}) to ${clientEvents} client events (${percent(rate)})`,
    );
  }
  // Whatever the tolerance: a run that was to carry messages and delivered none measured nothing.
  const accepted = acceptedMessages(result);
  if (result.due > 0 && t.deliveries === 0 && (t.expectedDeliveries > 0 || accepted === 0)) {
    reasons.push(
      `nothing was delivered: ${result.due} messages due, ${t.messagesSent} sent, ${accepted} accepted by the server, ` +
        `${t.expectedDeliveries} deliveries expected, 0 received`,
    );
  }
  // Messages were asked for, and not one delivery was owed: no message was due, or none had a recipient. Nothing was
  // measured, whatever the tolerance (the "nothing was delivered" case above aside: the server accepted none).
  const nothingDelivered = reasons.some((x) => x.startsWith('nothing was delivered'));
  const cutShort = result.interrupted !== undefined || result.steadyEndedEarly !== undefined;
  if (result.publishVia !== 'none' && t.expectedDeliveries === 0 && !nothingDelivered && !cutShort) {
    reasons.push(`nothing measured: ${whyNothingMeasured(options, result, accepted)}`);
  }
  if (result.steadyEndedEarly !== undefined) reasons.push(`the steady state ${result.steadyEndedEarly}`);
  if (audit !== null && audit.differences > 0) reasons.push(`the audit found ${audit.differences} difference(s)`);
  if (result.auditError !== undefined) reasons.push(`the audit could not be done: ${result.auditError}`);
  return reasons;
}

/** Why a run that was to send messages owed no delivery at all. */
function whyNothingMeasured(options: LoadOptions, result: RunResult, accepted: number): string {
  const o = options;
  if (result.due === 0) {
    const senders = result.tally.subscribed;
    const planned = senders * o.sendRate * o.duration;
    const who = senders === o.sockets ? `--sockets ${o.sockets}` : `${senders} subscribed socket(s)`;
    return (
      `no message was due: ${who} × --send-rate ${o.sendRate} × --duration ${o.duration} s is ` +
      `${Number(planned.toFixed(2))} message(s), less than one; raise --duration or --send-rate`
    );
  }
  if (accepted === 0) return `none of the ${result.due} messages due was accepted by the server`;
  const perChannel = Math.floor(o.sockets / o.channels);
  if (result.publishVia === 'client') {
    return (
      `the ${accepted} client event(s) had no recipient: a client event is not delivered to its sender, and no other ` +
      `socket was subscribed to their channel (--sockets ${o.sockets} over --channels ${o.channels}: ` +
      `${perChannel === 1 ? '1 socket' : `${perChannel}+ sockets`} a channel); use fewer --channels`
    );
  }
  return `the ${accepted} message(s) accepted had no recipient: no socket was subscribed to their channel when they were sent`;
}

/** Builds the report and its verdict (the exit code) from a finished run. */
export function buildReport(options: LoadOptions, result: RunResult, audit: Audit | null): LoadReport {
  const t = result.tally;
  const { appSecret: _secret, json: _json, warnings, ...shown } = options;
  const lost = Math.max(0, t.expectedDeliveries - t.deliveries);
  const reasons = judge(options, result, audit);
  const interrupted = result.interrupted === undefined ? null : result.interrupted;
  const steady = result.phases.steadySeconds;
  return {
    tool: 'beacon-load',
    run_id: result.runId,
    started_at: result.startedAt,
    options: shown,
    warnings: [...warnings],
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
      refused: t.refused,
      closed_during_run: total(t.closedDuringRun),
      closed: t.closedAfterEstablished + t.closedBeforeEstablished,
      close_codes: record(t.closeCodes),
      connect_ms: percentiles(t.connectTime),
    },
    messages: {
      publish_via: result.publishVia,
      publish_via_reason: result.publishViaReason,
      due: result.due,
      sent: t.messagesSent,
      skipped: t.skipped,
      skipped_socket_closed: t.skippedSocketClosed,
      http_accepted: t.httpPublished + t.httpAcceptedUnanswered,
      http_accepted_unanswered: t.httpAcceptedUnanswered,
      http_refused: t.httpRefused,
      http_unanswered: t.httpUnanswered(),
      client_events_refused: t.clientEventsRejected,
      pusher_errors: total(t.pusherErrors),
      expected_deliveries: t.expectedDeliveries,
      received: t.deliveries,
      foreign: t.foreignMessages,
      lost,
      sent_per_second: steady > 0 ? round(t.messagesSent / steady, 1) : 0,
      received_per_second: steady > 0 ? round(t.deliveries / steady, 1) : 0,
      latency_ms: percentiles(t.latency),
    },
    steady_ended_early: result.steadyEndedEarly ?? null,
    frames: {
      sent_by_clients: record(t.framesSent),
      received_by_clients: record(t.framesReceived),
      received_on_refused_sockets: t.framesOnRefusedSockets,
    },
    errors: record(t.errors),
    audit,
    audit_error: result.auditError ?? null,
    verdict: { ok: reasons.length === 0 && interrupted === null, interrupted, reasons },
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
  if (audit.otherLoad.length > 0) {
    lines.push(
      `  other load on this server: ${audit.otherLoad.join('; ')}. The audit assumes this run is the server's only load ` +
        'for its app: a positive difference may be that load, not a fault',
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
      `ramp ${r.phases_seconds.ramp} s, steady ${r.phases_seconds.steady} s, drain ${r.phases_seconds.drain} s, run id ${r.run_id}`,
    '',
    table([
      ['connections', 'attempted', 'opened', 'subscribed', 'failed', 'refused', 'closed mid-run', 'closed', 'close codes'],
      ['', String(c.attempted), String(c.opened), String(c.subscribed), String(c.failed), String(c.refused), String(c.closed_during_run), String(c.closed), codes],
    ]),
    '',
    `messages via ${m.publish_via} (${m.publish_via_reason})${r.steady_ended_early === null ? '' : `; the steady state ${r.steady_ended_early}`}`,
    table([
      ['', 'sent', 'expected', 'received', 'lost', 'sent/s', 'received/s', 'skipped', 'refused', 'no answer'],
      [
        '',
        String(m.sent),
        String(m.expected_deliveries),
        String(m.received),
        String(m.lost),
        String(m.sent_per_second),
        String(m.received_per_second),
        String(m.skipped + m.skipped_socket_closed),
        String(m.http_refused + m.pusher_errors),
        String(m.http_unanswered),
      ],
    ]),
    '',
    table([
      ['ms', 'count', 'p50', 'p90', 'p99', 'p99.9', 'max'],
      percentileRow('end-to-end latency', m.latency_ms),
      percentileRow('connect time', c.connect_ms),
    ]),
  ];
  if (m.foreign > 0) {
    lines.push('', `${m.foreign} event(s) on this run's channels were not its messages (another run, another publisher): not counted`);
  }
  for (const w of r.warnings) lines.push('', `warning: ${w}`);
  const errors = Object.entries(r.errors);
  lines.push('', errors.length === 0 ? 'errors: none' : 'errors:');
  for (const [reason, n] of errors) lines.push(`  ${String(n).padStart(7)}  ${reason}`);
  if (r.audit !== null) lines.push(...auditLines(r.audit));
  if (r.audit_error !== null) {
    lines.push('', `Audit against ${r.options.metrics ?? '--metrics'}: could not be done: ${r.audit_error}`);
  }
  lines.push('', verdictLine(r.verdict));
  for (const reason of r.verdict.reasons) lines.push(`  ${reason}`);
  return lines.join('\n');
}

/** `verdict: ok`, `verdict: FAILED` or `verdict: interrupted (…)`; the reasons follow, one a line. */
function verdictLine(v: LoadReport['verdict']): string {
  if (v.interrupted !== null) {
    return `verdict: interrupted (${v.interrupted.by} during the ${PHASE_NAMES[v.interrupted.phase] ?? v.interrupted.phase}): the run was cut short${v.reasons.length > 0 ? ', and FAILED' : ''}`;
  }
  return v.ok ? 'verdict: ok' : 'verdict: FAILED';
}
