/**
 * The three outputs of beacon-monitor. tty: a table with aligned columns (the header repeated every 20 rows) and colour
 * for bad states, log lines in between as they arrive; plain: one `key=value` line per snapshot or log line, for pipes
 * and files; json: one JSON object per line (`type`: snapshot, log, problem, summary).
 */
import type { LogEvent } from './log-line.js';
import type { OutputMode } from './options.js';
import type { SourceStatus } from './poller.js';
import type { Probe, Snapshot } from './snapshot.js';
import type { Summary } from './summary.js';

/** One output mode: how snapshots, log lines, problems and the summary are written. */
export interface Renderer {
  snapshot(s: Snapshot): void;
  log(e: LogEvent): void;
  /** A problem of the monitor's own sources (Loki unreachable, log file gone). */
  problem(message: string): void;
  summary(s: Summary): void;
}

const ANSI = { red: 31, green: 32, yellow: 33, dim: 2, bold: 1 } as const;
type Colour = keyof typeof ANSI;

const fixed = (v: number | undefined, digits = 1) => (v === undefined ? '-' : v.toFixed(digits));
const mb = (v: number | undefined) => (v === undefined ? '-' : `${(v / 1024 / 1024).toFixed(0)}M`);
const probeText = (p: Probe) => ('status' in p ? String(p.status) : p.error);
const probeOk = (p: Probe) => 'status' in p && p.status === 200;
const clock = (iso: string) => iso.slice(11, 19);

interface Column {
  title: string;
  width: number;
  value: (s: Snapshot) => string;
  bad?: (s: Snapshot) => boolean;
}

const COLUMNS: Column[] = [
  { title: 'time', width: 8, value: (s) => clock(s.time) },
  { title: 'conns', width: 7, value: (s) => (s.connections === undefined ? '-' : String(s.connections)), bad: (s) => s.metricsError !== undefined },
  { title: 'conn/s', width: 7, value: (s) => fixed(s.connectsPerSecond) },
  { title: 'disc/s', width: 7, value: (s) => fixed(s.disconnectsPerSecond) },
  { title: 'in/s', width: 8, value: (s) => fixed(s.messagesInPerSecond) },
  { title: 'out/s', width: 9, value: (s) => fixed(s.messagesOutPerSecond) },
  { title: 'err/s', width: 7, value: (s) => fixed(s.errorsPerSecond, 2), bad: (s) => (s.errorsPerSecond ?? 0) > 0 },
  { title: 'bc p50', width: 7, value: (s) => fixed(s.broadcastP50Ms, 2) },
  { title: 'bc p99', width: 7, value: (s) => fixed(s.broadcastP99Ms, 2) },
  { title: 'lag p99', width: 7, value: (s) => fixed(s.eventLoopLagP99Ms), bad: (s) => (s.eventLoopLagP99Ms ?? 0) > 100 },
  { title: 'rss', width: 6, value: (s) => mb(s.rssBytes) },
  { title: 'healthz', width: 12, value: (s) => probeText(s.healthz), bad: (s) => !probeOk(s.healthz) },
  { title: 'readyz', width: 12, value: (s) => probeText(s.readyz), bad: (s) => !probeOk(s.readyz) },
  { title: 'stack', width: 0, value: (s) => s.stack?.detail ?? '-', bad: (s) => s.stack !== undefined && s.stack.running && s.stack.detail.includes(';') },
];

/** Numbers are right-aligned, text left-aligned, both cut to the column's width; the last column is free width. */
function cell(column: Column, text: string, index: number): string {
  if (column.width === 0) return text;
  const fitted = text.length > column.width ? `${text.slice(0, column.width - 1)}…` : text;
  return index === 0 ? fitted.padEnd(column.width) : fitted.padStart(column.width);
}

function reasonsText(s: Snapshot): string {
  return Object.entries(s.errorsByReason)
    .sort((a, b) => b[1] - a[1])
    .map(([reason, rate]) => `${reason} ${rate.toFixed(2)}/s`)
    .join(', ');
}

/** What went wrong with one log source, for the summary; undefined when every poll answered. */
function sourceNote(st: SourceStatus): string | undefined {
  if (st.ended !== undefined) return `${st.source} ended at ${clock(st.ended.at)} after ${st.ended.lines} line(s): nothing later was read`;
  if (st.failedPolls === 0) return undefined;
  const skipped = st.skippedPolls > 0 ? `, ${st.skippedPolls} skipped while one was waiting` : '';
  if (st.failingSince === undefined) return `${st.source}: ${st.failedPolls} of ${st.polls} polls failed, answering again at the end`;
  const whole = st.failedPolls === st.polls ? ', the whole run' : '';
  return `${st.source} not answering since ${clock(st.failingSince)}${whole}: ${st.failedPolls} of ${st.polls} polls failed${skipped}; last: ${st.lastError ?? '?'}`;
}

function summaryLines(s: Summary): string[] {
  const p = s.peaks;
  const lines = [
    `summary: ${s.seconds.toFixed(0)} s, ${s.snapshots} snapshots, ${s.unhealthySnapshots} unhealthy`,
    `  peaks: connections ${p.connections ?? '-'}, connects ${fixed(p.connectsPerSecond)}/s, in ${fixed(p.messagesInPerSecond)}/s, ` +
      `out ${fixed(p.messagesOutPerSecond)}/s, errors ${fixed(p.errorsPerSecond, 2)}/s, broadcast p99 ${fixed(p.broadcastP99Ms, 2)} ms, ` +
      `event-loop lag p99 ${fixed(p.eventLoopLagP99Ms)} ms, rss ${mb(p.rssBytes)}`,
  ];
  if (s.totals !== undefined) {
    lines.push(`  totals: ${Object.entries(s.totals).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  }
  if (s.restarts.count > 0) {
    const r = s.restarts;
    lines.push(
      `  restarts: ${r.target} restarted ${r.count} time(s) during the run (seen at ${r.at.map(clock).join(', ')}); ` +
        'the totals count each restarted counter from zero',
    );
  }
  if (s.skippedSnapshots > 0) {
    lines.push(`  snapshots skipped: ${s.skippedSnapshots} (the previous one was still waiting for ${s.skippedWaitingFor.join(', ')})`);
  }
  if (s.unansweredAtEnd.length > 0) lines.push(`  no answer by the end (aborted): ${s.unansweredAtEnd.join(', ')}`);
  const counted = Object.entries(s.errorsByReason);
  if (counted.length > 0) {
    lines.push(
      `  errors in /metrics: ${counted.map(([reason, n]) => `${reason} ${n}`).join(', ')}` +
        ' (refusals a client caused are logged at info: not among the log lines)',
    );
  }
  if (s.logSources.length === 0) {
    lines.push('  log lines: none followed (no --loki or --log-file)');
    return lines;
  }
  const notes = s.logSources.map(sourceNote).filter((n) => n !== undefined);
  // A stream that ended before its first line read nothing at all, as a source that never answered.
  const deaf = s.logSources.every((st) => (st.polls > 0 && st.failedPolls === st.polls) || st.ended?.lines === 0);
  if (deaf) {
    // Nothing was read: "0 error, distinct errors: none" would read as all clear.
    lines.push(`  log lines: unknown, no log source answered: ${notes.join('; ')}`);
    lines.push('  distinct errors: unknown');
    return lines;
  }
  const incomplete = s.logSources.some((st) => st.failingSince !== undefined || st.ended !== undefined) ? 'incomplete: ' : '';
  lines.push(
    `  log lines: ${s.logLines.fatal} fatal, ${s.logLines.error} error, ${s.logLines.warn} warn` +
      (notes.length > 0 ? ` (${incomplete}${notes.join('; ')})` : ''),
  );
  if (s.distinctErrors.length === 0) lines.push('  distinct errors: none');
  else {
    lines.push(`  distinct errors (${s.distinctErrors.length}):`);
    for (const e of s.distinctErrors) lines.push(`    ${String(e.count).padStart(6)}× ${e.key}`);
  }
  return lines;
}

function ttyRenderer(out: NodeJS.WritableStream, colour: boolean): Renderer {
  const paint = (c: Colour, text: string) => (colour ? `\u001b[${ANSI[c]}m${text}\u001b[0m` : text);
  let rows = 0;
  const header = () => out.write(`${paint('bold', COLUMNS.map((c, i) => cell(c, c.title, i)).join(' '))}\n`);
  return {
    snapshot(s) {
      if (rows % 20 === 0) header();
      rows++;
      const line = COLUMNS.map((c, i) => {
        const text = cell(c, c.value(s), i);
        return c.bad?.(s) === true ? paint('red', text) : c.title === 'healthz' || c.title === 'readyz' ? paint('green', text) : text;
      }).join(' ');
      out.write(`${line}\n`);
      if (s.metricsError !== undefined) out.write(`${paint('red', `  metrics: ${s.metricsError}`)}\n`);
      const reasons = reasonsText(s);
      if (reasons !== '') out.write(`${paint('red', `  errors: ${reasons}`)}\n`);
    },
    log(e) {
      const text = `  ${clock(e.time)} ${e.level.toUpperCase().padEnd(5)} ${e.event === undefined ? '' : `${e.event}: `}${e.message}`;
      out.write(`${paint(e.level === 'warn' ? 'yellow' : 'red', text)}\n`);
    },
    problem(message) {
      out.write(`${paint('yellow', `  monitor: ${message}`)}\n`);
    },
    summary(s) {
      out.write(`\n${summaryLines(s).map((l, i) => (i === 0 ? paint('bold', l) : l)).join('\n')}\n`);
    },
  };
}

/** `key=value`, quoting values with spaces. */
function kv(pairs: Array<[string, string | number | undefined]>): string {
  return pairs
    .map(([k, v]) => {
      const text = v === undefined ? '-' : typeof v === 'number' ? String(Number(v.toFixed(3))) : v;
      return `${k}=${/[\s"]/.test(text) ? JSON.stringify(text) : text}`;
    })
    .join(' ');
}

function plainRenderer(out: NodeJS.WritableStream): Renderer {
  return {
    snapshot(s) {
      out.write(
        `snapshot ${kv([
          ['time', s.time],
          ['connections', s.connections],
          ['connects_per_s', s.connectsPerSecond],
          ['disconnects_per_s', s.disconnectsPerSecond],
          ['messages_in_per_s', s.messagesInPerSecond],
          ['messages_out_per_s', s.messagesOutPerSecond],
          ['errors_per_s', s.errorsPerSecond],
          ['errors', reasonsText(s) || undefined],
          ['broadcast_p50_ms', s.broadcastP50Ms],
          ['broadcast_p99_ms', s.broadcastP99Ms],
          ['eventloop_lag_p99_ms', s.eventLoopLagP99Ms],
          ['rss_bytes', s.rssBytes],
          ['healthz', probeText(s.healthz)],
          ['readyz', probeText(s.readyz)],
          ['stack', s.stack?.detail],
          ['metrics_error', s.metricsError],
        ])}\n`,
      );
    },
    log(e) {
      out.write(`log ${kv([['time', e.time], ['level', e.level], ['event', e.event], ['msg', e.message]])}\n`);
    },
    problem(message) {
      out.write(`problem ${kv([['msg', message]])}\n`);
    },
    summary(s) {
      out.write(`${summaryLines(s).join('\n')}\n`);
    },
  };
}

function jsonRenderer(out: NodeJS.WritableStream): Renderer {
  const write = (type: string, body: object) => out.write(`${JSON.stringify({ type, ...body })}\n`);
  return {
    snapshot: (s) => write('snapshot', s),
    log: (e) => write('log', e),
    problem: (message) => write('problem', { message }),
    summary: (s) => write('summary', s),
  };
}

/** The renderer of `mode`; colour in tty mode unless NO_COLOR is set. */
export function createRenderer(mode: OutputMode, out: NodeJS.WritableStream, env: NodeJS.ProcessEnv): Renderer {
  if (mode === 'json') return jsonRenderer(out);
  if (mode === 'plain') return plainRenderer(out);
  return ttyRenderer(out, env.NO_COLOR === undefined || env.NO_COLOR === '');
}
