/**
 * Entry point: configuration → app → listen → graceful shutdown on SIGTERM/SIGINT.
 * The only file that reads process.env (through loadConfig) and decides the exit code.
 */
import { buildApp } from './app.js';
import { ConfigError, configWarnings, envWarnings, loadConfig, type Config } from './config.js';
import { hostPort } from './listen-address.js';
import { Deadline } from './lifecycle/deadline.js';
import { shutdownTelemetry, telemetryShutdownResult } from './telemetry/lifecycle.js';
import { logCrashes } from './telemetry/crash-log.js';
import { flushLogger } from './telemetry/logger.js';
import { logEvent } from './telemetry/log-events.js';
import { VERSION } from './version.js';

function readConfig(): Config {
  try {
    return loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`beacon: invalid configuration: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
}

const config = readConfig();
const app = await buildApp(config);
const { logger } = app;
logCrashes(logger);

try {
  await app.fastify.listen({ host: config.host, port: config.port });
} catch (err) {
  // A taken port or a bad HOST is an operator's error: one clear line, not a stack trace.
  const reason = err instanceof Error ? ((err as NodeJS.ErrnoException).code ?? err.message) : String(err);
  process.stderr.write(`beacon: cannot listen on ${hostPort(config.host, config.port)} (HOST/PORT): ${reason}\n`);
  process.exit(1);
}
const address = app.fastify.server.address();
const port = typeof address === 'object' && address !== null ? address.port : config.port;
/**
 * The app ids `server_started` names: the first ones configured. A multi-tenant node's 10 000 made it a 99 KB line (a
 * probe; ~390 KB with UUIDs, past Loki's default line limit of 256 KB).
 */
const LOGGED_APP_IDS = 100;
logEvent(
  logger,
  'info',
  {
    event: 'server_started',
    host: config.host,
    port,
    version: VERSION,
    apps: config.apps.slice(0, LOGGED_APP_IDS).map((a) => a.id),
    app_count: config.apps.length,
  },
  `beacon listening on ${hostPort(config.host, port)}`,
);
for (const { variables, message } of [...envWarnings(process.env), ...configWarnings(config), ...app.startWarnings]) logEvent(logger, 'warn', { event: 'config_warning', variables }, message);

let stopping = false;
/** Time kept (at most a quarter of what is left) for the last stage, the log flush, should the telemetry flush hang. */
const LOG_FLUSH_RESERVE_MS = 1000;
/** The last-resort exit fires this long after the deadline: only a stage that blocks the event loop can get there. */
const HARD_EXIT_MARGIN_MS = 1000;

async function shutdown(signal: NodeJS.Signals): Promise<void> {
  if (stopping) return;
  stopping = true;
  const started = performance.now();
  // One deadline for every stage (lifecycle/deadline.ts): the drain, the telemetry flush and the log flush all ask it what is left.
  const deadline = new Deadline(config.shutdownTimeoutMs);
  const bound = setTimeout(() => {
    logEvent(logger, 'error', { event: 'shutdown_timed_out', signal }, 'shutdown bound reached; exiting');
    logger.flush();
    process.exit(1);
  }, config.shutdownTimeoutMs + HARD_EXIT_MARGIN_MS);
  bound.unref();
  const result = await app.drain(deadline);
  await shutdownTelemetry(deadline.remainingMs() - Math.min(LOG_FLUSH_RESERVE_MS, deadline.remainingMs() / 4));
  const telemetry = telemetryShutdownResult();
  const timedOut = telemetry.timedOut ? [...result.timedOut, 'telemetry'] : result.timedOut;
  // Logged once everything but the log flush is done, so it is true, and shipped with the last Loki batch.
  logEvent(
    logger,
    'info',
    {
      event: 'shutdown_completed',
      signal,
      // The whole shutdown so far, the telemetry flush included (the drain alone is `result.seconds`).
      duration_ms: Math.round(performance.now() - started),
      ...(timedOut.length > 0 ? { timed_out: timedOut } : {}),
    },
    'shutdown completed',
  );
  await flushLogger(logger, deadline.remainingMs());
  process.exit(timedOut.length > 0 ? 1 : 0);
}

// Kept for the whole drain: a second signal (an impatient Ctrl-C, an orchestrator that repeats SIGTERM) changes nothing —
// the drain is bounded by SHUTDOWN_TIMEOUT_MS already. With `once`, Node's default action took the second: the process was
// killed mid-drain, its clients cut with 1006, their leaves and webhooks never sent, `shutdown_completed` never logged.
process.on('SIGTERM', (s) => void shutdown(s));
process.on('SIGINT', (s) => void shutdown(s));
