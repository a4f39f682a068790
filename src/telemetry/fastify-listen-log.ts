/**
 * fastify writes a line of its own for each address it listens on, `Server listening at http://…` at `info`: a bare
 * message, without the catalog's `event` that every line carries (docs/telemetry.md, "Logs"). Beacon writes
 * `server_started` instead (main.ts), with the host, port, version and apps, so these lines are not written. fastify has
 * no option for it (`listen`'s `listenTextResolver` only changes the text), and it writes them through its root logger:
 * its own pino child of Beacon's logger, made in `Fastify()`, so only fastify's lines (and those of the request loggers
 * made from it) pass here, and every other line is written as before.
 */
import type { FastifyBaseLogger } from 'fastify';
import type { LogFn } from 'pino';

/** The start of fastify's default listening text (its `defaultResolveServerListeningText`). */
const LISTENING_TEXT = 'Server listening at ';

/** Whether a call of `info` is fastify's listening line: one argument, its text. */
function isListeningLine(args: readonly unknown[]): boolean {
  return args.length === 1 && typeof args[0] === 'string' && args[0].startsWith(LISTENING_TEXT);
}

/** Makes fastify's root logger (`fastify.log`) skip its `Server listening at …` lines; call it before `listen`. */
export function skipListeningLines(log: FastifyBaseLogger): void {
  const info = log.info;
  log.info = function (this: FastifyBaseLogger, ...args: Parameters<LogFn>): void {
    if (isListeningLine(args)) return;
    info.apply(this, args);
  } as LogFn;
}
