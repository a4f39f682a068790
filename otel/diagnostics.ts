/**
 * Where OpenTelemetry's own diagnostics go (export failures, a metrics server failing once it listens): stderr, one JSON
 * line each (`event: "otel_diagnostic"`), so a failing exporter is visible without ever throwing into the app. `OTEL_LOG_LEVEL`
 * replaces this with the SDK's console logger at that level, as NodeSDK does. Used by the main thread (sdk.ts) and by the
 * span export worker, which has an `diag` of its own.
 */
import { diag, DiagConsoleLogger, DiagLogLevel, type DiagLogger } from '@opentelemetry/api';
import { diagLogLevelFromString } from '@opentelemetry/core';

/** Installs the JSON logger at WARN, or the console logger at `OTEL_LOG_LEVEL` when `consoleWhenLevelSet` and it is set. */
export function installDiagLogger({ consoleWhenLevelSet }: { consoleWhenLevelSet: boolean }): void {
  const level = process.env.OTEL_LOG_LEVEL;
  if (level !== undefined) {
    // On the main thread NodeSDK reads OTEL_LOG_LEVEL itself; a worker has no NodeSDK and must do the same.
    if (consoleWhenLevelSet) diag.setLogger(new DiagConsoleLogger(), { logLevel: diagLogLevelFromString(level) });
    return;
  }
  const write =
    (level: string) =>
    (message: string, ...args: unknown[]): void => {
      const detail = args.map((a) => (a instanceof Error ? a.message : typeof a === 'string' ? a : safeJson(a)));
      process.stderr.write(
        `${JSON.stringify({ level, time: new Date().toISOString(), event: 'otel_diagnostic', msg: message, detail })}\n`,
      );
    };
  const logger: DiagLogger = {
    error: write('error'),
    warn: write('warn'),
    info: () => {},
    debug: () => {},
    verbose: () => {},
  };
  diag.setLogger(logger, { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true });
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
