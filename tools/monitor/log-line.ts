/**
 * One log line → a warn/error event, or nothing. Beacon's lines are pino JSON with a word `level` (`warn`, `error`,
 * `fatal`; pino's numbers 40/50/60 are read too); other text counts when it carries a WARN/ERROR/FATAL word.
 */

export type Severity = 'warn' | 'error' | 'fatal';

/** One warn/error/fatal line, reduced to what the monitor shows and groups by. */
export interface LogEvent {
  time: string;
  level: Severity;
  /** The catalog event (docs/telemetry.md), when the line has one. */
  event: string | undefined;
  message: string;
  /** What groups equal errors in the summary: level, event and message, bounded. */
  key: string;
}

const NUMERIC: Record<number, Severity> = { 40: 'warn', 50: 'error', 60: 'fatal' };
const WORDS: Record<string, Severity> = { warn: 'warn', warning: 'warn', error: 'error', fatal: 'fatal' };

function severity(level: unknown): Severity | undefined {
  if (typeof level === 'number') return NUMERIC[level];
  if (typeof level === 'string') return WORDS[level.toLowerCase()];
  return undefined;
}

function event(time: string, level: Severity, name: string | undefined, message: string): LogEvent {
  const key = `${level} ${name === undefined ? '' : `${name}: `}${message}`.slice(0, 160);
  return { time, level, event: name, message, key };
}

/** Parses one line; undefined when it is not a warning or worse. `fallbackTime` stamps lines without their own. */
export function parseLogLine(line: string, fallbackTime: Date = new Date()): LogEvent | undefined {
  const text = line.trim();
  if (text === '') return undefined;
  if (text.startsWith('{')) {
    try {
      const record = JSON.parse(text) as Record<string, unknown>;
      const level = severity(record.level);
      if (level === undefined) return undefined;
      const time = typeof record.time === 'string' ? record.time : typeof record.time === 'number' ? new Date(record.time).toISOString() : fallbackTime.toISOString();
      const name = typeof record.event === 'string' ? record.event : undefined;
      const err = record.err as { message?: unknown } | undefined;
      const message = String(record.msg ?? record.message ?? err?.message ?? '');
      return event(time, level, name, message);
    } catch {
      // not JSON after all: read it as text
    }
  }
  const m = /\b(FATAL|ERROR|WARN(?:ING)?)\b/i.exec(text);
  if (m === null) return undefined;
  return event(fallbackTime.toISOString(), WORDS[(m[1] as string).toLowerCase()] as Severity, undefined, text.slice(0, 300));
}
