/**
 * Entry point: configuration → app → listen → graceful shutdown on SIGTERM/SIGINT.
 * The only file that reads process.env (through loadConfig) and decides the exit code.
 */
import { buildApp } from './app.js';
import { ConfigError, loadConfig, type Config } from './config.js';
import { shutdownTelemetry } from './telemetry/lifecycle.js';
import { flushLogger } from './telemetry/logger.js';
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

try {
  await app.fastify.listen({ host: config.host, port: config.port });
} catch (err) {
  // A taken port or a bad HOST is an operator's error: one clear line, not a stack trace.
  const reason = err instanceof Error ? ((err as NodeJS.ErrnoException).code ?? err.message) : String(err);
  process.stderr.write(`beacon: cannot listen on ${config.host}:${config.port} (HOST/PORT): ${reason}\n`);
  process.exit(1);
}
const address = app.fastify.server.address();
const port = typeof address === 'object' && address !== null ? address.port : config.port;
logger.info(
  { event: 'server_started', host: config.host, port, version: VERSION, apps: config.apps.map((a) => a.id) },
  `beacon listening on ${config.host}:${port}`,
);

let stopping = false;
async function shutdown(signal: NodeJS.Signals): Promise<void> {
  if (stopping) return;
  stopping = true;
  // The bound: whatever hangs (a client that never closes, an exporter that never answers), the process ends in time.
  const bound = setTimeout(() => {
    logger.error({ event: 'shutdown_completed', signal, timed_out: true }, 'shutdown bound reached; exiting');
    logger.flush();
    process.exit(1);
  }, config.shutdownTimeoutMs);
  bound.unref();
  const seconds = await app.drain();
  await shutdownTelemetry(Math.max(100, config.shutdownTimeoutMs - seconds * 1000 - 100));
  logger.info(
    { event: 'shutdown_completed', signal, duration_ms: Math.round(seconds * 1000) },
    'shutdown completed',
  );
  await flushLogger(logger);
  process.exit(0);
}

process.once('SIGTERM', (s) => void shutdown(s));
process.once('SIGINT', (s) => void shutdown(s));
