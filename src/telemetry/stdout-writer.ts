/**
 * The writer of stdout's batches (logger.ts): synchronous and complete. A write the pipe takes only in part goes on from
 * where it stopped; a full non-blocking pipe (EAGAIN) is tried again every millisecond, the thread held, until its reader
 * makes room. That is what SonicBoom (pino's destination) did too, except that it slept 100 ms before each new try,
 * however soon the reader drained the pipe: every connection froze in steps of 100 ms behind a slow log collector.
 * A descriptor that is gone (EPIPE: nobody reads stdout any more; EBADF) ends the writing: one line on stderr says so, and
 * later lines are dropped, as pino's own destination drops them after EPIPE.
 */
import { writeSync } from 'node:fs';

/** How long the writer waits before trying a full pipe again. */
export const FULL_PIPE_RETRY_MS = 1;

const sleeper = new Int32Array(new SharedArrayBuffer(4));

/** Returns a function that writes a string to `fd` whole before it returns (or drops it once `fd` has failed). */
export function syncWriter(fd: number): (text: string) => void {
  let failed = false;
  return (text) => {
    if (failed || text.length === 0) return;
    let rest = Buffer.from(text);
    while (rest.length > 0) {
      try {
        rest = rest.subarray(writeSync(fd, rest));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EAGAIN') {
          Atomics.wait(sleeper, 0, 0, FULL_PIPE_RETRY_MS);
          continue;
        }
        failed = true;
        try {
          writeSync(2, `${JSON.stringify({ level: 'error', event: 'stdout_failed', msg: `stdout failed (${(err as Error).message}); no more lines are written to it` })}\n`);
        } catch {
          // stderr is gone too.
        }
        return;
      }
    }
  };
}
