/**
 * fastify's per-request logger, made when a line is written. fastify gives every request (every WebSocket upgrade, every
 * API call) a pino child bound to its request id; building one serialises the bindings and copies the logger's state,
 * ~5 µs per connect in a CPU profile of a connect storm. Beacon writes its own lines through its own loggers, and fastify
 * writes a request's line only when something fails (request logging is off), so almost every child was never used.
 * This one holds the parent and the bindings, and makes the pino child on its first line: what is written is the same.
 */
import type { FastifyBaseLogger } from 'fastify';
import type { Bindings, ChildLoggerOptions, LevelWithSilentOrString, LogFn } from 'pino';

type LineLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';

/** What this module needs of pino's logger: fastify's logger interface and pino's level check. */
export type ParentLogger = FastifyBaseLogger & { isLevelEnabled(level: string): boolean };

class LazyRequestLogger {
  private readonly parent: ParentLogger;
  private readonly bindings: Bindings;
  private readonly options: ChildLoggerOptions;
  private made: FastifyBaseLogger | undefined = undefined;

  constructor(parent: ParentLogger, bindings: Bindings, options: ChildLoggerOptions) {
    this.parent = parent;
    this.bindings = bindings;
    this.options = options;
  }

  /** The pino child, made once. */
  private pinoChild(): FastifyBaseLogger {
    this.made ??= this.parent.child(this.bindings, this.options);
    return this.made;
  }

  /** Writes through the child; a level the parent drops makes no child (unless the route set a level of its own). */
  private write(level: LineLevel, args: Parameters<LogFn>): void {
    if (this.made === undefined && this.options.level === undefined && !this.parent.isLevelEnabled(level)) return;
    (this.pinoChild()[level] as (...a: Parameters<LogFn>) => void)(...args);
  }

  get level(): LevelWithSilentOrString {
    return this.made?.level ?? this.options.level ?? this.parent.level;
  }

  set level(level: LevelWithSilentOrString) {
    this.pinoChild().level = level;
  }

  fatal(...args: Parameters<LogFn>): void {
    this.write('fatal', args);
  }
  error(...args: Parameters<LogFn>): void {
    this.write('error', args);
  }
  warn(...args: Parameters<LogFn>): void {
    this.write('warn', args);
  }
  info(...args: Parameters<LogFn>): void {
    this.write('info', args);
  }
  debug(...args: Parameters<LogFn>): void {
    this.write('debug', args);
  }
  trace(...args: Parameters<LogFn>): void {
    this.write('trace', args);
  }
  silent(): void {}

  child(bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger {
    return this.pinoChild().child(bindings, options);
  }
}

/** fastify's `childLoggerFactory`: a request logger that makes its pino child on its first line. */
export function lazyRequestLogger(parent: FastifyBaseLogger, bindings: Bindings, options: ChildLoggerOptions): FastifyBaseLogger {
  return new LazyRequestLogger(parent as ParentLogger, bindings, options) as unknown as FastifyBaseLogger;
}
