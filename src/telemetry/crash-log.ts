/**
 * A crash said where operators look: an exception nothing caught — and a promise rejection nothing handled, which Node
 * raises as one — is written as a `process_crashed` fatal line with the error and its stack (stdout, and Loki when it is
 * on), the log pipeline flushed within a bound, and the process exits 1 as Node would have. Left to Node, the stack went
 * to stderr only: no line in Loki said why a node died, and the Loki spool's last lines went unflushed.
 *
 * Nothing else is attempted: after an uncaught exception the process's state is not to be trusted, so there is no drain
 * (clients see the connection drop, as with any crash, and reconnect elsewhere).
 */
import type { Logger } from 'pino';
import { logEvent } from './log-events.js';
import { flushLogger } from './logger.js';

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
    try {
      logEvent(logger, 'fatal', { event: 'process_crashed', origin, err }, 'uncaught exception: the process exits');
    } catch {
      // The logger itself failed: Node's own report on stderr is all there is.
      process.stderr.write(`${err.stack ?? String(err)}\n`);
    }
    void flushLogger(logger, flushMs).finally(() => process.exit(1));
  });
}
