/**
 * The three servers raced in every fan-out scenario, each started as its own child process on a free 127.0.0.1 port:
 * Beacon as `npm start` runs it (compiled dist/, the OpenTelemetry SDK disabled, LOG_LEVEL=warn), and the two baselines.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

/** Which server. */
export type TargetId = 'beacon' | 'ws' | 'socketio';

/** Every target, the baseline first. */
export const TARGETS: readonly TargetId[] = ['ws', 'socketio', 'beacon'];

/** How each target is named in the results. */
export const TARGET_LABELS: Record<TargetId, string> = { beacon: 'Beacon', ws: 'bare ws', socketio: 'Socket.IO' };

/** Repository root: every child runs from here. */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The default app every Beacon in this benchmark serves. */
export const BEACON_APP = { id: 'app-id', key: 'app-key', secret: 'app-secret' } as const;

/** The command line of each target, relative to ROOT. */
export function targetCommand(target: TargetId): string[] {
  switch (target) {
    // Compiled JS, as production runs it (`npm start`): no TypeScript loader in the measured process.
    case 'beacon':
      return ['--enable-source-maps', '--import', './dist/otel/register.js', 'dist/src/main.js'];
    // The baselines are a page each; tsx only transpiles them at load time, the running code is plain JS.
    case 'ws':
      return ['--import', 'tsx', 'bench/fanout/ws-server.ts'];
    case 'socketio':
      return ['--import', 'tsx', 'bench/fanout/socketio-server.ts'];
  }
}

/** A port the kernel just handed out on 127.0.0.1 (closed again, so the child can bind it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** A running target. */
export interface ServerProcess {
  target: TargetId;
  port: number;
  pid: number;
  /** What it wrote to stdout and stderr (the last 64 KiB). */
  output(): string;
  /** SIGTERM, then SIGKILL if it is still there after `graceMs`; resolves once it has exited. */
  stop(graceMs?: number): Promise<void>;
}

const READY_TIMEOUT_MS = 20_000;

/** Starts `target` and resolves once GET /readyz answers 200 (bounded: 20 s). */
export async function startServer(target: TargetId): Promise<ServerProcess> {
  const port = await freePort();
  const env: NodeJS.ProcessEnv = { ...process.env, NODE_ENV: 'production', HOST: '127.0.0.1', PORT: String(port) };
  for (const key of ['OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', 'LOKI_URL', 'APPS_FILE']) delete env[key];
  if (target === 'beacon') {
    Object.assign(env, {
      OTEL_SDK_DISABLED: 'true',
      LOG_LEVEL: 'warn',
      APP_ID: BEACON_APP.id,
      APP_KEY: BEACON_APP.key,
      APP_SECRET: BEACON_APP.secret,
      // The client-event scenario publishes every message from one connection: lift the per-connection limit (default 10/s).
      APP_ENABLE_CLIENT_EVENTS: 'true',
      APP_CLIENT_EVENTS_PER_SECOND: '1000000',
      SHUTDOWN_GRACE_MS: '0',
      SHUTDOWN_TIMEOUT_MS: '3000',
    });
  }
  const child: ChildProcess = spawn(process.execPath, targetCommand(target), { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (b: Buffer): void => {
    output = (output + b.toString()).slice(-65_536);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (graceMs = 3000): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  };
  try {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`${target} exited with ${child.exitCode}:\n${output}`);
      const res = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(1000) }).catch(() => undefined);
      if (res?.status === 200) break;
      if (Date.now() > deadline) throw new Error(`${target} not ready on port ${port} after ${READY_TIMEOUT_MS} ms:\n${output}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch (err) {
    await stop(0);
    throw err;
  }
  if (child.pid === undefined) throw new Error(`${target}: no pid`);
  return { target, port, pid: child.pid, output: () => output, stop };
}
