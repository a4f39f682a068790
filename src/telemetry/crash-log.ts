/**
 * A crash said where operators look: an exception nothing caught — and a promise rejection nothing handled, which Node
 * raises as one — is written as a `process_crashed` fatal line with the error and its stack (stdout, and Loki when it is
 * on), the log pipeline flushed within a bound, and the process exits 1 as Node would have. Left to Node, the stack went
 * to stderr only: no line in Loki said why a node died, and the Loki spool's last lines went unflushed.
 *
 * Nothing else is attempted: after an uncaught exception the process's state is not to be trusted, so there is no drain
 * (clients see the connection drop, as with any crash, and reconnect elsewhere).
 */
import { writeSync } from 'node:fs';
import type { Logger } from 'pino';
import { logEvent } from './log-events.js';
import { flushLogger, stdoutDropCounts } from './logger.js';

/** How long the log flush may take before the process exits anyway. */
export const CRASH_FLUSH_MS = 3000;

/** Installs the handler on the process (once: the server's entry point calls it). */
export function logCrashes(logger: Logger, flushMs = CRASH_FLUSH_MS): void {
  let crashed = false;
  process.on('uncaughtException', (err: Error, origin: NodeJS.UncaughtExceptionOrigin) => {
    // A second one while the first is being flushed: the first said why.
    if (crashed) return;
    crashed = true;
    // Whatever the flush does, the process ends within the bound (a timer the flush's own work cannot hold off).
    setTimeout(() => process.exit(1), flushMs + 500);
    const droppedBefore = droppedOnStdout(logger);
    const onStderr = (): void => {
      try {
        writeSync(2, `${err.stack ?? String(err)}\n`);
      } catch {
        // stderr is gone too.
      }
    };
    try {
      logEvent(logger, 'fatal', { event: 'process_crashed', origin, err }, 'uncaught exception: the process exits');
    } catch {
      // The logger itself failed: Node's own report on stderr is all there is.
      onStderr();
    }
    void flushLogger(logger, flushMs).finally(() => {
      // The line did not reach stdout (its reader gone, a full disk, a stalled pipe): the reason goes to stderr, or no
      // output at all said why the node died (a review: only `stdout_failed` there).
      if (droppedOnStdout(logger) > droppedBefore) onStderr();
      process.exit(1);
    });
  });
}

/** The stdout lines `logger` dropped so far, every reason (0 when it writes elsewhere). */
function droppedOnStdout(logger: Logger): number {
  const counts = stdoutDropCounts(logger);
  return counts === undefined ? 0 : counts.closed + counts.write_error + counts.stalled;
}
