/**
 * The servers raced in every fan-out run, each started as its own child process on a free 127.0.0.1 port: the two bare-`ws`
 * baselines (`send()` per socket, and the limit probe that builds each frame once and writes it raw), Socket.IO, and Beacon
 * compiled as `npm start` runs it, with telemetry off and with metrics + traces + info logs on.
 */
import { spawnServer, type ServerChild } from './server-process.js';
import { writeFileSync } from 'node:fs';
import type { Agent } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Pusher from 'pusher';
import { startArgs } from '../../test/helpers/start-command.js';

/** Which server. */
export type TargetId = 'ws' | 'ws-raw' | 'ws-direct' | 'ws-fastify' | 'socketio' | 'beacon' | 'beacon-sampled' | 'beacon-otel';

/** Which wire protocol a target speaks: what the load process's clients must talk. */
export type Protocol = 'beacon' | 'ws' | 'socketio';

/** Every target, the baseline first. */
export const TARGETS: readonly TargetId[] = ['ws', 'ws-raw', 'ws-direct', 'ws-fastify', 'socketio', 'beacon', 'beacon-sampled', 'beacon-otel'];

/** How each target is named in the results. */
export const TARGET_LABELS: Record<TargetId, string> = {
  ws: 'bare `ws`, `send()` per socket',
  'ws-raw': 'bare `ws`, frame built once, one raw socket write per subscriber (limit probe)',
  'ws-direct': 'bare `ws`, frame built once, written straight to each TCP handle (syscall floor)',
  'ws-fastify': 'bare `ws` under fastify + @fastify/websocket (the stack floor)',
  socketio: 'Socket.IO 4.8 room broadcast',
  beacon: 'Beacon, telemetry off',
  'beacon-sampled': 'Beacon, metrics + traces (5 % sampled, OTLP) + info logs',
  'beacon-otel': 'Beacon, metrics + traces (always_on, OTLP) + info logs',
};

/** The protocol of each target. */
export function protocolOf(target: TargetId): Protocol {
  return target === 'ws' || target === 'ws-raw' || target === 'ws-direct' || target === 'ws-fastify' ? 'ws' : target === 'socketio' ? 'socketio' : 'beacon';
}

/** True for the Beacon targets that serve /metrics (and are scraped during the run). */
export function hasMetrics(target: TargetId): boolean {
  return target === 'beacon-sampled' || target === 'beacon-otel';
}

/** Repository root: every child runs from here. */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The default app every Beacon in this benchmark serves (the fan-out goes through it). */
export const BEACON_APP = { id: 'app-id', key: 'app-key', secret: 'app-secret' } as const;

/** The `pusher` SDK for the bench app of the Beacon on `port` (plain HTTP on 127.0.0.1, requests through `agent`). */
export function beaconSdk(port: number, agent: Agent): Pusher {
  return new Pusher({ appId: BEACON_APP.id, key: BEACON_APP.key, secret: BEACON_APP.secret, host: '127.0.0.1', port: String(port), useTLS: false, agent });
}

/** Apps of every Beacon target: the bench app and nine more, so /metrics is measured with 10 apps' series. */
export const BEACON_APPS = [
  BEACON_APP,
  ...Array.from({ length: 9 }, (_, i) => ({ id: `app-${i + 2}`, key: `key-${i + 2}`, secret: `secret-${i + 2}` })),
];

/** The command line of each target, relative to ROOT (a Beacon's to `root`, the checkout it runs from). */
export function targetCommand(target: TargetId, root = ROOT): string[] {
  switch (protocolOf(target)) {
    // Compiled JS with the node options of that checkout's `npm start`, as production runs it: no TypeScript loader.
    case 'beacon':
      return startArgs(root);
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
export interface ServerProcess extends ServerChild {
  target: TargetId;
  port: number;
  /** Prometheus endpoint of a Beacon with metrics on. */
  metricsUrl: string | undefined;
}

/** Where the targets with traces export them (an OTLP/HTTP sink of the runner), if any. */
export interface StartOptions {
  otlpEndpoint?: string | undefined;
  /** Extra node flags for the server process (e.g. `--cpu-prof`), before the target's own. */
  nodeArgs?: readonly string[] | undefined;
  /** The checkout a Beacon target runs from (its compiled dist/); this one by default. */
  root?: string | undefined;
  /** Variables set over the target's own environment (e.g. `LOG_LEVEL`), for a variant of a target. */
  env?: Readonly<Record<string, string>> | undefined;
}

const READY_TIMEOUT_MS = 20_000;
let appsFile: string | undefined;

function beaconAppsFile(): string {
  if (appsFile === undefined) {
    appsFile = join(tmpdir(), `beacon-bench-apps-${process.pid}.json`);
    const apps = BEACON_APPS.map((a) => ({ ...a, enableClientEvents: true, clientEventsPerSecond: 1_000_000 }));
    writeFileSync(appsFile, JSON.stringify({ apps }));
  }
  return appsFile;
}

/** The environment of a Beacon target: telemetry per target, everything else as in production. */
function beaconEnv(target: TargetId, options: StartOptions, metricsPort: number): Record<string, string> {
  const env: Record<string, string> = {
    APPS_FILE: beaconAppsFile(),
    SHUTDOWN_GRACE_MS: '0',
    SHUTDOWN_TIMEOUT_MS: '3000',
  };
  if (target === 'beacon') return { ...env, OTEL_SDK_DISABLED: 'true', LOG_LEVEL: 'warn' };
  if (options.otlpEndpoint === undefined) throw new Error(`${target} needs an OTLP endpoint`);
  return {
    ...env,
    LOG_LEVEL: 'info',
    METRICS_HOST: '127.0.0.1',
    METRICS_PORT: String(metricsPort),
    OTEL_EXPORTER_OTLP_ENDPOINT: options.otlpEndpoint,
    ...(target === 'beacon-otel'
      ? { OTEL_TRACES_SAMPLER: 'always_on' }
      : { OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.05' }),
  };
}

/** Starts `target` and resolves once GET /readyz answers 200 (bounded: 20 s). */
export async function startServer(target: TargetId, options: StartOptions = {}): Promise<ServerProcess> {
  const port = await freePort();
  const env: NodeJS.ProcessEnv = { ...process.env, NODE_ENV: 'production', HOST: '127.0.0.1', PORT: String(port) };
  for (const key of ['OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', 'LOKI_URL', 'APPS_FILE', 'OTEL_SDK_DISABLED']) {
    delete env[key];
  }
  const metricsPort = hasMetrics(target) ? await freePort() : 0;
  if (protocolOf(target) === 'beacon') Object.assign(env, beaconEnv(target, options, metricsPort));
  if (target === 'ws-raw') env.RAW_WRITES = '1';
  if (target === 'ws-direct') env.RAW_WRITES = 'direct';
  if (target === 'ws-fastify') env.STACK = 'fastify';
  Object.assign(env, options.env);
  const cwd = protocolOf(target) === 'beacon' ? (options.root ?? ROOT) : ROOT;
  // The extra node options go after the target's own and before its entry: of a V8 option given twice the last counts,
  // so `--node-arg=--max-semi-space-size=16` overrides npm start's 32.
  const command = targetCommand(target, cwd);
  const args = [...command.slice(0, -1), ...(options.nodeArgs ?? []), ...command.slice(-1)];
  const child = await spawnServer({ label: target, args, cwd, env, port, readyTimeoutMs: READY_TIMEOUT_MS, graceMs: 3000 });
  // A variant may switch the SDK off (`--variant off:OTEL_SDK_DISABLED=true`): then nothing serves /metrics.
  const served = hasMetrics(target) && env.OTEL_SDK_DISABLED !== 'true';
  const metricsUrl = served ? `http://127.0.0.1:${metricsPort}/metrics` : undefined;
  return { target, port, pid: child.pid, metricsUrl, output: child.output, stop: child.stop };
}
