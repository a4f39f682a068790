/**
 * A real Beacon child process with telemetry on, as production runs it but from source:
 *   node --import tsx --import ./otel/register.ts src/main.ts
 * on free loopback ports (PORT for WebSocket + HTTP API, METRICS_PORT for /metrics). Resolves once GET /readyz answers 200.
 * No OTLP endpoint and no Loki unless `env` sets them, so nothing is sent off the machine.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freePort, pollUntil } from './prometheus.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface BeaconProcess {
  port: number;
  metricsPort: number;
  /** http://127.0.0.1:PORT */
  url: string;
  /** Everything the process wrote to stdout and stderr (JSON log lines). */
  output(): string;
  /** SIGTERM (graceful drain) and wait for exit; SIGKILL if it outlives its shutdown bound. */
  stop(): Promise<void>;
}

/** Starts Beacon with the default app (app-id / app-key / app-secret) plus `env` overrides. */
export async function spawnBeacon(env: Record<string, string> = {}): Promise<BeaconProcess> {
  const port = await freePort();
  let metricsPort = await freePort();
  while (metricsPort === port) metricsPort = await freePort();
  const childEnv: NodeJS.ProcessEnv = { ...process.env };
  for (const key of ['OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', 'LOKI_URL', 'OTEL_SDK_DISABLED']) {
    delete childEnv[key];
  }
  Object.assign(childEnv, {
    HOST: '127.0.0.1',
    PORT: String(port),
    METRICS_HOST: '127.0.0.1',
    METRICS_PORT: String(metricsPort),
    DEPLOYMENT_ENV: 'test',
    NODE_ID: `test-${port}`,
    LOG_LEVEL: 'info',
    SHUTDOWN_GRACE_MS: '0',
    SHUTDOWN_TIMEOUT_MS: '5000',
    ...env,
  });
  const child = spawn(process.execPath, ['--import', 'tsx', '--import', './otel/register.ts', 'src/main.ts'], {
    cwd: ROOT,
    env: childEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (b: Buffer) => (output += b.toString()));
  child.stderr?.on('data', (b: Buffer) => (output += b.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;

  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };

  try {
    await pollUntil(
      async () => {
        if (child.exitCode !== null) throw new Error(`beacon exited with ${child.exitCode}:\n${output}`);
        const res = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(1000) }).catch(() => undefined);
        return res?.status === 200;
      },
      20_000,
      100,
      () => `beacon not ready at ${url}:\n${output}`,
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return { port, metricsPort, url, output: () => output, stop };
}
