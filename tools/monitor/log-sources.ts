/**
 * Where warn and error lines come from while the monitor runs: a file followed from its current end (polled, so it works
 * on any filesystem and survives truncation by rotation), stdin, or Loki (LogQL `query_range` polled, a cursor on the last
 * timestamp seen, lines at that same nanosecond deduplicated).
 */
import { open, stat } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { parseLogLine, type LogEvent } from './log-line.js';

/** A running source; `stop` ends it (and awaits a poll in progress). */
export interface LogSource {
  stop(): Promise<void>;
}

/** Reports problems of the source itself (a Loki that does not answer), at most once per distinct message in a row. */
export type SourceProblem = (message: string) => void;

const FILE_POLL_MS = 250;
const LOKI_POLL_MS = 2000;

/** Follows `path` from its end at start; lines appended later are parsed. */
export async function followFile(path: string, onEvent: (e: LogEvent) => void, onProblem: SourceProblem): Promise<LogSource> {
  let offset = await stat(path).then((s) => s.size, () => 0);
  let partial = '';
  let stopped = false;
  let running: Promise<void> = Promise.resolve();
  const poll = async () => {
    try {
      const size = (await stat(path)).size;
      if (size < offset) offset = 0; // truncated or rotated: read the new file from its start
      if (size === offset) return;
      const handle = await open(path, 'r');
      try {
        const buffer = Buffer.alloc(size - offset);
        const { bytesRead } = await handle.read(buffer, 0, buffer.length, offset);
        offset += bytesRead;
        const lines = (partial + buffer.subarray(0, bytesRead).toString('utf8')).split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) {
          const e = parseLogLine(line);
          if (e !== undefined) onEvent(e);
        }
      } finally {
        await handle.close();
      }
    } catch (err) {
      onProblem(`log file ${path}: ${(err as Error).message}`);
    }
  };
  const timer = setInterval(() => {
    if (!stopped) running = running.then(poll);
  }, FILE_POLL_MS);
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
      await poll();
    },
  };
}

/** Reads lines from `input` (stdin) until it ends or the monitor stops. */
export function followStream(input: NodeJS.ReadableStream, onEvent: (e: LogEvent) => void): LogSource {
  const lines = createInterface({ input, crlfDelay: Infinity });
  lines.on('line', (line) => {
    const e = parseLogLine(line);
    if (e !== undefined) onEvent(e);
  });
  return {
    async stop() {
      lines.close();
    },
  };
}

interface LokiAnswer {
  data?: { result?: Array<{ stream?: Record<string, string>; values?: Array<[string, string]> }> };
}

/** Polls Loki's `query_range` for `query` from now on. */
export function followLoki(
  baseUrl: string,
  query: string,
  onEvent: (e: LogEvent) => void,
  onProblem: SourceProblem,
): LogSource {
  let cursor = BigInt(Date.now()) * 1_000_000n;
  let seenAtCursor = new Set<string>();
  let stopped = false;
  let running: Promise<void> = Promise.resolve();
  const poll = async () => {
    const end = BigInt(Date.now()) * 1_000_000n;
    const params = new URLSearchParams({
      query,
      start: cursor.toString(),
      end: end.toString(),
      direction: 'forward',
      limit: '1000',
    });
    try {
      const res = await fetch(`${baseUrl}/loki/api/v1/query_range?${params.toString()}`, { signal: AbortSignal.timeout(5000) });
      if (res.status !== 200) {
        onProblem(`loki answered ${res.status}: ${(await res.text()).slice(0, 200)}`);
        return;
      }
      const answer = (await res.json()) as LokiAnswer;
      const entries: Array<[bigint, string]> = [];
      for (const stream of answer.data?.result ?? []) {
        for (const [ts, line] of stream.values ?? []) entries.push([BigInt(ts), line]);
      }
      entries.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
      for (const [ts, line] of entries) {
        const id = `${ts}|${line}`;
        if (ts < cursor || (ts === cursor && seenAtCursor.has(id))) continue;
        if (ts > cursor) {
          cursor = ts;
          seenAtCursor = new Set();
        }
        seenAtCursor.add(id);
        const e = parseLogLine(line, new Date(Number(ts / 1_000_000n)));
        if (e !== undefined) onEvent(e);
      }
    } catch (err) {
      const e = err as Error & { cause?: { code?: string } };
      onProblem(`loki ${baseUrl}: ${e.cause?.code ?? e.message}`);
    }
  };
  const timer = setInterval(() => {
    if (!stopped) running = running.then(poll);
  }, LOKI_POLL_MS);
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
      await poll();
    },
  };
}
