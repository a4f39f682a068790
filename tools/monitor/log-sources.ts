/**
 * Where warn and error lines come from while the monitor runs: a file followed from its current end (polled, so it works
 * on any filesystem and survives truncation by rotation), stdin, or Loki (LogQL `query_range` polled, a cursor on the last
 * timestamp seen, lines at that same nanosecond deduplicated). The polled ones never poll twice at once (tools/monitor/
 * poller.ts): a Loki that does not answer costs skipped ticks, not a backlog, and the end of the run does not wait on it.
 */
import { open, stat, type FileHandle } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { parseLogLine, type LogEvent } from './log-line.js';
import { freshStatus, pollEvery, type SourceStatus } from './poller.js';

/** A running source. */
export interface LogSource {
  /** Ends it: a last poll, and what is still in flight at `deadline` (ms since the epoch) is aborted. */
  stop(deadline: number): Promise<void>;
  /** How its polls went, for the summary. */
  status(): SourceStatus;
}

/** Reports problems of the source itself (a Loki that does not answer), once per episode. */
export type SourceProblem = (message: string) => void;

/** How often and how long a polled source is asked (tests shorten them). */
export interface PollTiming {
  everyMs: number;
  timeoutMs: number;
}

const FILE_POLL: PollTiming = { everyMs: 250, timeoutMs: 5000 };
export const LOKI_POLL: PollTiming = { everyMs: 2000, timeoutMs: 5000 };

/**
 * Follows `path` from its end at start; lines appended later are parsed. The file is held open, as `tail -F` holds it:
 * once `path` names another file (rotated: renamed away and made again), what was appended to the held one since the last
 * poll is read first, then the new file from its start. Read by size alone, a new file already longer than where the old
 * one had been read to was read from that offset on, its first lines lost without a word (a probe). A file cut shorter
 * (truncated in place) is read again from its start — unless it was written past where it had been read before the next
 * poll, which then reads on from there, as `tail -F` does: only its size tells a truncation.
 */
export async function followFile(path: string, onEvent: (e: LogEvent) => void, onProblem: SourceProblem): Promise<LogSource> {
  let held: { handle: FileHandle; dev: number; ino: number } | undefined;
  let offset = 0;
  let partial = '';
  const hold = async (): Promise<boolean> => {
    const handle = await open(path, 'r').catch(() => undefined);
    if (handle === undefined) return false;
    const { dev, ino } = await handle.stat();
    held = { handle, dev, ino };
    offset = 0;
    partial = '';
    return true;
  };
  /** Reads what the held file has past `offset`. */
  const readHeld = async (): Promise<void> => {
    if (held === undefined) return;
    const size = (await held.handle.stat()).size;
    if (size < offset) {
      offset = 0; // truncated in place: read it again from its start
      partial = '';
    }
    if (size === offset) return;
    const buffer = Buffer.alloc(size - offset);
    const { bytesRead } = await held.handle.read(buffer, 0, buffer.length, offset);
    offset += bytesRead;
    const lines = (partial + buffer.subarray(0, bytesRead).toString('utf8')).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      const e = parseLogLine(line);
      if (e !== undefined) onEvent(e);
    }
  };
  if (await hold()) offset = (await held!.handle.stat()).size;
  const poll = async () => {
    await readHeld();
    // A path that names no file fails the poll (said once an episode), after the held file's last lines were read.
    const named = await stat(path);
    if (held !== undefined && named.dev === held.dev && named.ino === held.ino) return;
    // `path` is another file now (or the first one, made after the start): what was appended to the held one since it was
    // read above (a review lost lines written just before a rotation), and its last line even without its newline, as
    // `tail -F` prints it; then the new one from its start.
    await readHeld();
    if (partial !== '') {
      const e = parseLogLine(partial);
      if (e !== undefined) onEvent(e);
    }
    await held?.handle.close();
    held = undefined;
    if (await hold()) await readHeld();
  };
  const poller = pollEvery(`log file ${path}`, FILE_POLL, poll, onProblem);
  return {
    status: () => poller.status(),
    async stop(deadline) {
      await poller.stop(deadline);
      await held?.handle.close();
      held = undefined;
    },
  };
}

/**
 * Reads lines from `input` (stdin) until it ends or the monitor stops. Its end is kept in the status (and said once): a
 * pipe whose writer died, or `< /dev/null`, read nothing more, and the summary's "0 error" read as an all-clear.
 */
export function followStream(input: NodeJS.ReadableStream, onEvent: (e: LogEvent) => void, onProblem: SourceProblem = () => {}): LogSource {
  const st = freshStatus('stdin');
  let lines = 0;
  let stopping = false;
  const reader = createInterface({ input, crlfDelay: Infinity });
  reader.on('line', (line) => {
    lines++;
    const e = parseLogLine(line);
    if (e !== undefined) onEvent(e);
  });
  // readline closes when its input ends, and when stop() closes it: only the first is the source's end.
  reader.on('close', () => {
    if (stopping) return;
    st.ended = { at: new Date().toISOString(), lines };
    onProblem(`stdin: input ended after ${lines} line(s); later log lines are not read`);
  });
  return {
    async stop() {
      stopping = true;
      reader.close();
    },
    status: () => ({ ...st }),
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
  timing: PollTiming = LOKI_POLL,
): LogSource {
  let cursor = BigInt(Date.now()) * 1_000_000n;
  let seenAtCursor = new Set<string>();
  const poll = async (signal: AbortSignal) => {
    const end = BigInt(Date.now()) * 1_000_000n;
    const params = new URLSearchParams({
      query,
      start: cursor.toString(),
      end: end.toString(),
      direction: 'forward',
      limit: '1000',
    });
    const res = await fetch(`${baseUrl}/loki/api/v1/query_range?${params.toString()}`, { signal });
    if (res.status !== 200) throw new Error(`answered ${res.status}: ${(await res.text()).slice(0, 200)}`);
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
  };
  return pollEvery(`loki ${baseUrl}`, timing, poll, onProblem);
}
