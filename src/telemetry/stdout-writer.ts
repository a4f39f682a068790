/**
 * The writer of stdout's batches (logger.ts): synchronous. A write the pipe takes only in part goes on from where it
 * stopped. A full non-blocking pipe (EAGAIN, EBUSY) is either answered with what is left, for the caller to try again
 * later without holding the thread, or — when the caller must wait — tried again every millisecond, the thread held,
 * while its reader makes room: for as long as it takes something at least every `patienceMs`. A reader that takes nothing
 * for that long has stalled, and what is left is answered after all: a log collector that stopped reading must not stop
 * the server with it (a probe: a FIFO nobody read froze a node, signals and health checks with it, until the reader died).
 * SonicBoom (pino's destination) slept 100 ms before each new try instead, however soon the reader had drained the pipe:
 * every connection froze in steps of 100 ms behind a slow log collector.
 *
 * A failure drops the batch it hit, and the caller counts its lines (`stdout_lines_dropped_total`): stdout gone (EPIPE:
 * nobody reads it any more; EBADF) ends the writing for good (`closed`), later batches dropped too, as pino's own
 * destination drops them after EPIPE; any other failure (a full disk, EIO) is a `write_error`, and later batches are tried
 * again. Each is also said on stderr, one JSON line per error code (when stderr is the same pipe as stdout and that is what
 * failed, only the counter says it).
 */
import { writeSync } from 'node:fs';

/** How long the writer waits before trying a full pipe again. */
export const FULL_PIPE_RETRY_MS = 1;

const sleeper = new Int32Array(new SharedArrayBuffer(4));

const RETRY = new Set(['EAGAIN', 'EBUSY']);
const GONE = new Set(['EPIPE', 'EBADF']);

function sayOnStderr(msg: string, code: string): void {
  try {
    writeSync(2, `${JSON.stringify({ level: 'error', time: new Date().toISOString(), event: 'stdout_failed', code, msg })}\n`);
  } catch {
    // stderr is gone too.
  }
}

/**
 * Why a batch was not written: stdout gone, a write failed, or its reader stalled (logger.ts drops what a stalled pipe
 * cannot hold).
 */
export type StdoutDropReason = 'closed' | 'write_error' | 'stalled';

/**
 * What the writer answers: the bytes the descriptor did not take (empty once all were written; only ever non-empty when
 * asked not to wait), or why the write failed and its bytes were dropped.
 */
export type WriteResult = Buffer | StdoutDropReason;

const WRITTEN = Buffer.alloc(0);

const NEWLINE = 0x0a;

/** A pipe takes a write of at most this many bytes whole or not at all (POSIX `PIPE_BUF`: 4096 on Linux). */
const ATOMIC_WRITE_BYTES = 4096;

/**
 * Returns a function that writes lines (bytes ending in a newline) to `fd`: as much as the descriptor takes now when
 * `patienceMs` is 0, answering the rest to be tried again later; otherwise whole before it returns, a full pipe tried
 * again every millisecond — unless its reader takes nothing for `patienceMs`, when the rest is answered too; or it drops
 * them and answers why (see the module comment).
 *
 * What it answers always starts a line: it writes whole lines at a time, at most `ATOMIC_WRITE_BYTES` in each write,
 * which a non-blocking pipe takes whole or refuses (EAGAIN). Another writer of the same descriptor — stderr sent to the
 * same pipe, the SDK's console logger, a worker's output — so writes between two lines, never into one, and what is
 * answered and then dropped leaves no cut line behind: a pipe takes a larger write in part, at a page boundary anywhere
 * in a line. Only a line longer than that, or a descriptor that is no pipe and takes a write in part, can be cut: the
 * rest of that write is finished at once, waiting if it must (for as long as the reader goes on taking bytes, at least
 * `cutPatienceMs` at a time). A reader that stalls inside such a line gets the rest of it answered, and should that be
 * dropped, stdout keeps half a line (which the next line's start joins).
 */
export function fdWriter(fd: number, cutPatienceMs: number): (bytes: Buffer, patienceMs: number) => WriteResult {
  let gone = false;
  const said = new Set<string>();
  const write = (bytes: Buffer, patienceMs: number): WriteResult => {
    let rest = bytes;
    let progressAt = 0;
    while (rest.length > 0) {
      try {
        const written = writeSync(fd, rest);
        rest = rest.subarray(written);
        if (written > 0) progressAt = 0;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? 'unknown';
        if (RETRY.has(code)) {
          if (patienceMs === 0) return rest;
          const now = performance.now();
          if (progressAt === 0) progressAt = now;
          else if (now - progressAt >= patienceMs) return rest;
          Atomics.wait(sleeper, 0, 0, FULL_PIPE_RETRY_MS);
          continue;
        }
        if (GONE.has(code)) {
          gone = true;
          sayOnStderr(`stdout failed (${(err as Error).message}); no more lines are written to it`, code);
          return 'closed';
        }
        if (!said.has(code)) {
          said.add(code);
          sayOnStderr(`stdout failed (${(err as Error).message}); lines are dropped while it fails (said once per error)`, code);
        }
        return 'write_error';
      }
    }
    return WRITTEN;
  };
  return (bytes, patienceMs) => {
    if (gone) return 'closed';
    let rest = bytes;
    while (rest.length > 0) {
      // Whole lines up to ATOMIC_WRITE_BYTES; a longer line alone.
      let end = rest.length <= ATOMIC_WRITE_BYTES ? rest.length : rest.lastIndexOf(NEWLINE, ATOMIC_WRITE_BYTES - 1) + 1;
      if (end === 0) end = rest.indexOf(NEWLINE) + 1 || rest.length;
      const chunk = rest.subarray(0, end);
      const left = write(chunk, patienceMs);
      if (typeof left === 'string') return left;
      // None of it taken: no patience, or the reader stalled. What is answered starts a line either way.
      if (left.length === chunk.length) return rest;
      if (left.length > 0) {
        // Taken in part (a line over ATOMIC_WRITE_BYTES, or no pipe): finished now, so what is held back starts a line.
        const finished = write(left, Math.max(patienceMs, cutPatienceMs));
        if (typeof finished === 'string') return finished;
        // Its reader stalled inside the line: what is answered is the rest of that line and the lines after it.
        if (finished.length > 0) return Buffer.concat([finished, rest.subarray(end)]);
      }
      rest = rest.subarray(end);
    }
    return WRITTEN;
  };
}

/** Says on stderr that stdout's reader stalled, and what Beacon does about it (logger.ts says it once per process). */
export function sayStalledOnStderr(patienceMs: number): void {
  sayOnStderr(
    `stdout's reader took nothing for ${patienceMs} ms: it no longer holds the server; lines past what is held back are dropped until it reads again`,
    'STALLED',
  );
}
