/** Beacon for the hostile-neighbour runs: compiled, as `npm start` runs it, with its default limits and client events on. */
import { spawn } from 'node:child_process';
import { freePort, targetCommand } from '../fanout/targets.js';

/** The server's MAX_PAYLOAD_BYTES in these runs (the oversized flood sends just over twice it). */
export const MAX_PAYLOAD_BYTES = 100_000;

/** A running Beacon. */
export interface Server {
  port: number;
  pid: number;
  /** Its stdout and stderr so far (the last 64 KiB). */
  output(): string;
  /** Lines logged at `error` or `fatal` so far. */
  errorLines(): number;
  stop(): Promise<void>;
}

/** Starts the Beacon built in `root` (its dist/) on a free port; resolves once /readyz answers 200 (bounded: 20 s). */
export async function startBeacon(root: string): Promise<Server> {
  const port = await freePort();
  const env: NodeJS.ProcessEnv = { ...process.env, NODE_ENV: 'production', HOST: '127.0.0.1', PORT: String(port) };
  for (const key of ['OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', 'LOKI_URL', 'APPS_FILE']) delete env[key];
  Object.assign(env, {
    OTEL_SDK_DISABLED: 'true',
    // Logs as an operator runs them (info): a flood that floods the log pays for it here.
    LOG_LEVEL: 'info',
    // The deep-nesting flood sends client events.
    APP_ENABLE_CLIENT_EVENTS: 'true',
    MAX_PAYLOAD_BYTES: String(MAX_PAYLOAD_BYTES),
    SHUTDOWN_GRACE_MS: '0',
    SHUTDOWN_TIMEOUT_MS: '3000',
  });
  const child = spawn(process.execPath, targetCommand('beacon', root), { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  let errors = 0;
  let partial = '';
  const keep = (b: Buffer): void => {
    output = (output + b.toString()).slice(-65_536);
    const lines = (partial + b.toString()).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) if (/"level":"(error|fatal)"/.test(line)) errors++;
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  };
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`beacon exited ${child.exitCode}: ${output.slice(-2000)}`);
    const res = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(1000) }).catch(() => undefined);
    if (res?.status === 200) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`beacon not ready: ${output.slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  if (child.pid === undefined) throw new Error('beacon: no pid');
  return { port, pid: child.pid, output: () => output, errorLines: () => errors, stop };
}
