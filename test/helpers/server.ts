/**
 * An in-process Beacon on a free loopback port, with helpers that build real pusher-js and `pusher` SDK clients for it.
 * Telemetry API calls are no-ops here (no SDK registered); tests that need the SDK spawn a process (beacon-process.ts).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import Pusher from 'pusher';
import { localClient, type PusherClient, type PusherClientOptions } from './pusher-js.js';
import { buildApp, type AppDeps, type BeaconApp } from '../../src/app.js';
import { loadConfig, type Config } from '../../src/config.js';
import { Deadline } from '../../src/lifecycle/deadline.js';
import { createLogger } from '../../src/telemetry/logger.js';

export const APP = { id: 'app-id', key: 'app-key', secret: 'app-secret' } as const;

export interface TestServer {
  app: BeaconApp;
  config: Config;
  port: number;
  /** Every JSON log line written so far. */
  logs: Record<string, unknown>[];
  /** A pusher-js client (Node build) connected to this server; `extra` overrides options (authorizer, …). */
  client(extra?: Partial<PusherClientOptions>, key?: string): PusherClient;
  /** The `pusher` server SDK pointed at this server. */
  sdk(overrides?: Partial<{ appId: string; key: string; secret: string; encryptionMasterKeyBase64: string }>): Pusher;
  close(): Promise<void>;
}

/** Starts Beacon with `apps` written to a temporary APPS_FILE (`{"apps": [...]}`, removed on close), plus `env` and `deps` overrides. */
export async function startServerWithApps(
  apps: readonly Record<string, unknown>[],
  env: Record<string, string> = {},
  deps: Partial<Omit<AppDeps, 'logger'>> = {},
): Promise<TestServer> {
  const dir = await mkdtemp(join(tmpdir(), 'beacon-apps-'));
  const file = join(dir, 'apps.json');
  await writeFile(file, JSON.stringify({ apps }));
  const server = await startServer({ ...env, APPS_FILE: file }, deps);
  const close = server.close;
  // The file goes with the server.
  server.close = async () => {
    await close();
    await rm(dir, { recursive: true, force: true });
  };
  return server;
}

/**
 * Starts Beacon with the default app plus `env` overrides (strings, as the environment would give them); `deps` replaces
 * what buildApp would make (e.g. `metrics` recorded by a test's own meter provider).
 */
export async function startServer(env: Record<string, string> = {}, deps: Partial<Omit<AppDeps, 'logger'>> = {}): Promise<TestServer> {
  const config = loadConfig({ HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'debug', SHUTDOWN_GRACE_MS: '0', SHUTDOWN_TIMEOUT_MS: '400', ...env });
  const logs: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim() !== '') logs.push(JSON.parse(line));
      done();
    },
  });
  const logger = createLogger({
    serviceName: 'beacon',
    env: 'test',
    nodeId: 'test-node',
    level: config.logLevel,
    destination,
  });
  const app = await buildApp(config, { ...deps, logger });
  await app.fastify.listen({ host: '127.0.0.1', port: 0 });
  const address = app.fastify.server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  const port = address.port;
  const clients: PusherClient[] = [];

  return {
    app,
    config,
    port,
    logs,
    client(extra = {}, key = APP.key) {
      const client = localClient(port, key, extra);
      clients.push(client);
      return client;
    },
    sdk(overrides = {}) {
      return new Pusher({
        appId: APP.id,
        key: APP.key,
        secret: APP.secret,
        host: '127.0.0.1',
        port: String(port),
        useTLS: false,
        ...overrides,
      });
    },
    async close() {
      for (const c of clients) c.disconnect();
      if (!app.isDraining()) await app.drain(new Deadline(config.shutdownTimeoutMs));
    },
  };
}

/** The sockets the server's HTTP server holds now (WebSockets, keep-alive and refused ones alike). */
export function openSockets(server: TestServer): Promise<number> {
  return new Promise((resolve, reject) => server.app.fastify.server.getConnections((err, n) => (err ? reject(err) : resolve(n))));
}
