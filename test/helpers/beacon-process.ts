/**
 * A real Beacon child process with telemetry on, as production runs it but from source:
 *   node --import tsx --import ./otel/register.ts src/main.ts
 * (or compiled, as `npm start` runs it) on free loopback ports (PORT for WebSocket + HTTP API, METRICS_PORT for /metrics). Resolves once GET /readyz answers 200
 * (bounded poll). No OTLP endpoint and no Loki unless `env` sets them, so nothing is sent anywhere.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freePort, pollUntil } from './prometheus.js';
import { startArgs } from './start-command.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface BeaconProcess {
  port: number;
  metricsPort: number;
  /** http://127.0.0.1:PORT */
  url: string;
  /** Every stdout line so far (JSON log lines), growing while the process runs. */
  logs: string[];
  /** Everything the process wrote to stdout and stderr. */
  output(): string;
  /** The child's pid, for CPU accounting (/proc/<pid>/stat). */
  pid: number;
  /**
   * Sends `signal` (SIGTERM: the graceful drain) and resolves with the exit code once the process exited (null when a
   * signal ended it); SIGKILL if it outlives 10 s.
   */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Variables never inherited from the test's own environment: each test states what it wants. */
const SCRUBBED = [
  'OTEL_EXPORTER_OTLP_ENDPOINT',
  'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT',
  'OTEL_SDK_DISABLED',
  'OTEL_SERVICE_NAME',
  'OTEL_RESOURCE_ATTRIBUTES',
  'OTEL_TRACES_SAMPLER',
  'OTEL_TRACES_SAMPLER_ARG',
  'LOKI_URL',
  'NODE_OPTIONS',
];

/** Starts Beacon with the default app (app-id / app-key / app-secret) plus `env` overrides. */
/**
 * `compiled`: run what `npm start` runs (`dist/`, built by the test command) instead of the TypeScript sources under tsx.
 * `root`: the checkout to run (benchmarks comparing two commits); this one by default.
 */
/**
 * `fdLimit`: the file descriptor limit the process starts under (`ulimit -n`, soft and hard, set by a shell that then
 * becomes the process: `pid` is Beacon's).
 */
export async function spawnBeacon(
  env: Record<string, string> = {},
  { compiled = false, root = ROOT, fdLimit }: { compiled?: boolean; root?: string; fdLimit?: number } = {},
): Promise<BeaconProcess> {
  const port = await freePort();
  let metricsPort = await freePort();
  while (metricsPort === port) metricsPort = await freePort();
  const childEnv: NodeJS.ProcessEnv = { ...process.env };
  for (const key of SCRUBBED) delete childEnv[key];
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
  const args = compiled
    ? startArgs(root)
    : ['--import', 'tsx', '--import', './otel/register.ts', 'src/main.ts'];
  const [command, commandArgs] =
    fdLimit === undefined
      ? [process.execPath, args]
      : ['/bin/sh', ['-c', `ulimit -n ${fdLimit} && exec "$0" "$@"`, process.execPath, ...args]];
  const child = spawn(command, commandArgs, {
    cwd: root,
    env: childEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const logs: string[] = [];
  let partial = '';
  child.stdout.on('data', (b: Buffer) => {
    const text = b.toString();
    output += text;
    const parts = (partial + text).split('\n');
    partial = parts.pop() ?? '';
    for (const line of parts) if (line.trim() !== '') logs.push(line);
  });
  child.stderr.on('data', (b: Buffer) => (output += b.toString()));
  // 'close', not 'exit': the process may have exited with its last lines still in the pipe, read after 'exit'.
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  const url = `http://127.0.0.1:${port}`;

  const stop = async (signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    const code = await exited;
    clearTimeout(timer);
    if (partial.trim() !== '') logs.push(partial);
    partial = '';
    return code;
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
  return { port, metricsPort, url, logs, output: () => output, pid: child.pid ?? -1, stop };
}
