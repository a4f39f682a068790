/**
 * The seam between the OpenTelemetry bootstrap (`otel/register.ts`, loaded with `node --import` before the app) and the app's
 * graceful shutdown. The bootstrap registers how to flush and stop the SDK; `main.ts` calls `shutdownTelemetry()` after
 * draining, without importing the SDK itself. Both import this module by the same URL, so they share the one registry below
 * (a module-level array, not a `globalThis` property).
 *
 * Contract: `shutdownTelemetry` never throws and never takes longer than its bound, whatever the exporters do (an OTLP
 * endpoint that is down must not hold the process past its shutdown timeout). It runs the hooks once; later calls wait for
 * the same run.
 */

/** Flushes and stops one telemetry pipeline. */
export type TelemetryShutdownHook = () => Promise<void>;

/** Default bound on the whole of `shutdownTelemetry`, in milliseconds. */
export const DEFAULT_TELEMETRY_SHUTDOWN_TIMEOUT_MS = 5000;

const hooks: TelemetryShutdownHook[] = [];
let running: Promise<void> | undefined;

/** Registers a hook run by `shutdownTelemetry` (in registration order, concurrently). */
export function onTelemetryShutdown(hook: TelemetryShutdownHook): void {
  hooks.push(hook);
}

/** What happened to each hook of the last `shutdownTelemetry` run; empty before one. */
export interface TelemetryShutdownResult {
  completed: number;
  failed: number;
  timedOut: boolean;
}

let lastResult: TelemetryShutdownResult = { completed: 0, failed: 0, timedOut: false };

/** The outcome of the last `shutdownTelemetry` run, for the `shutdown_completed` log line. */
export function telemetryShutdownResult(): TelemetryShutdownResult {
  return lastResult;
}

/**
 * Flushes pending spans and stops the SDK (metrics server, exporters). Resolves after every hook settled or after
 * `timeoutMs`, whichever comes first; never rejects. With telemetry disabled no hook is registered and it resolves at once.
 */
export function shutdownTelemetry(timeoutMs: number = DEFAULT_TELEMETRY_SHUTDOWN_TIMEOUT_MS): Promise<void> {
  running ??= run(timeoutMs);
  return running;
}

async function run(timeoutMs: number): Promise<void> {
  if (hooks.length === 0) return;
  const result: TelemetryShutdownResult = { completed: 0, failed: 0, timedOut: false };
  const settled = Promise.all(
    hooks.map((hook) =>
      Promise.resolve()
        .then(hook)
        .then(
          () => void result.completed++,
          () => void result.failed++,
        ),
    ),
  );
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<'timeout'>((resolve) => {
    // Ref'd on purpose: while hooks run, the process must not exit early just because the SDK's handles are unref'd.
    timer = setTimeout(resolve, timeoutMs, 'timeout');
  });
  const outcome = await Promise.race([settled.then(() => 'done' as const), bound]);
  clearTimeout(timer);
  result.timedOut = outcome === 'timeout';
  lastResult = result;
}
