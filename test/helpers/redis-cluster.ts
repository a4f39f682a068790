/**
 * A throwaway 3-master Redis Cluster on free loopback ports: three `redis-server --cluster-enabled yes` (no persistence,
 * each in its own temporary directory for its nodes.conf), joined by `redis-cli --cluster create … --cluster-yes`, ready
 * once every node reports `cluster_state:ok`. Every wait is bounded.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import calculateSlot from 'cluster-key-slot';
import { Cluster, Redis } from 'ioredis';
import { RedisKeys } from '../../src/adapters/redis-keys.js';
import { freePort } from './free-port.js';
import type { TlsFiles } from './tls-certs.js';
import { eventually, within } from './wait.js';

const run = promisify(execFile);

export interface RedisClusterServer {
  nodes: { host: string; port: number }[];
  /** `REDIS_CLUSTER_NODES` for Beacon. */
  env: string;
  /** SIGKILLs the node on `port`; resolves once it has exited. */
  kill(port: number): Promise<void>;
  /**
   * Starts the node on `port` again (its node id and slots from its nodes.conf), with `config`: empty, unless a `SAVE` was
   * sent to it before (no other persistence), whose snapshot it loads (each node has its own file).
   */
  restart(port: number): void;
  /** Freezes the node on `port` (SIGSTOP: connected, reading nothing) or lets it go on (SIGCONT). */
  freeze(port: number, frozen: boolean): void;
  stop(): Promise<void>;
}

/** The cluster's slot map as it is now: the master serving a key's slot, and every master, as "host:port". */
export interface SlotMasters {
  masterOf(key: string): string;
  masters: Set<string>;
  /** The first of `prefix-0`, `prefix-1`, … whose events the engine publishes on a master `fits`. */
  channelOn(appId: string, prefix: string, fits: (master: string) => boolean): string;
}

/** The keys a Beacon server writes (its adapter's default prefix). */
const keys = new RedisKeys('beacon');

/** Reads the slot map through `client` (CLUSTER SLOTS). */
export async function slotMasters(client: Redis | Cluster): Promise<SlotMasters> {
  const ranges = (await client.cluster('SLOTS')) as unknown as [number, number, [string, number]][];
  const masterOf = (key: string): string => {
    const slot = calculateSlot(key);
    const [, , [host, port]] = ranges.find(([from, to]) => from <= slot && slot <= to)!;
    return `${host}:${port}`;
  };
  return {
    masterOf,
    masters: new Set(ranges.map(([, , [host, port]]) => `${host}:${port}`)),
    channelOn(appId, prefix, fits) {
      for (let i = 0; i < 10_000; i++) {
        const channel = `${prefix}-${i}`;
        if (fits(masterOf(keys.channel(appId, channel).events))) return channel;
      }
      throw new Error(`no channel ${prefix}-… on the wanted master`);
    },
  };
}

/** The slot map of `cluster`, read through a connection of its own to its first node. */
export async function clusterSlots(cluster: RedisClusterServer): Promise<SlotMasters> {
  const redis = new Redis(cluster.nodes[0]!);
  try {
    return await slotMasters(redis);
  } finally {
    redis.disconnect();
  }
}

/** A secured cluster: every node asks for `password` (`requirepass`) and/or speaks only TLS (clients and cluster bus). */
export interface ClusterSecurity {
  password?: string;
  /** The nodes' certificate; its names must match what the cluster announces (their IP, or `announceHostname`). */
  tls?: TlsFiles;
  /** Announced in the slot map instead of the nodes' IP (`cluster-announce-hostname`, preferred endpoint type hostname). */
  announceHostname?: string;
  /** More arguments for every node's redis-server, e.g. an ACL user: `['--user', 'beacon', 'on', '>secret', …]`. */
  serverArgs?: readonly string[];
}

/**
 * Starts the cluster; `config` is set on every node once it serves (e.g. `cluster-require-full-coverage: 'no'`), and given
 * again to a node `restart` starts.
 */
export async function startRedisCluster(
  config: Readonly<Record<string, string>> = {},
  security: ClusterSecurity = {},
): Promise<RedisClusterServer> {
  const { password, tls, announceHostname, serverArgs: moreArgs = [] } = security;
  const serverArgs = (port: number): string[] => [
    ...(tls === undefined
      ? ['--port', String(port)]
      : ['--port', '0', '--tls-port', String(port), '--tls-cluster', 'yes', '--tls-cert-file', tls.cert, '--tls-key-file', tls.key,
          '--tls-ca-cert-file', tls.ca, '--tls-auth-clients', 'no']),
    ...(password === undefined ? [] : ['--requirepass', password, '--masterauth', password]),
    ...(announceHostname === undefined ? [] : ['--cluster-announce-hostname', announceHostname, '--cluster-preferred-endpoint-type', 'hostname']),
    ...moreArgs,
  ];
  const cliArgs = [
    ...(tls === undefined ? [] : ['--tls', '--cacert', tls.ca]),
    ...(password === undefined ? [] : ['-a', password, '--no-auth-warning']),
  ];
  const dir = mkdtempSync(join(tmpdir(), 'beacon-redis-cluster-'));
  const ports: number[] = [];
  while (ports.length < 3) {
    const p = await freePort();
    // The cluster bus listens on port + 10000: keep both in range and distinct.
    if (p < 55_000 && !ports.includes(p)) ports.push(p);
  }
  const children: ChildProcess[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(
      children.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            child.once('exit', () => resolve());
            child.kill('SIGKILL');
          }),
      ),
    );
    rmSync(dir, { recursive: true, force: true });
  };
  const byPort = new Map<number, ChildProcess>();
  const start = (port: number, settings: readonly string[]): void => {
    const child = spawn(
      'redis-server',
      [...serverArgs(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`,
        '--save', '', '--appendonly', 'no', '--dir', dir, '--dbfilename', `dump-${port}.rdb`, ...settings],
      { stdio: 'ignore' },
    );
    children.push(child);
    byPort.set(port, child);
  };
  try {
    for (const port of ports) start(port, []);
    for (const port of ports) {
      await eventually(async () => (await run('redis-cli', [...cliArgs, '-p', String(port), 'ping'])).stdout.trim() === 'PONG', `redis ${port}`, 5000);
    }
    await run('redis-cli', [...cliArgs, '--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'], {
      timeout: 20_000,
    });
    for (const port of ports) {
      await eventually(
        async () => (await run('redis-cli', [...cliArgs, '-p', String(port), 'cluster', 'info'])).stdout.includes('cluster_state:ok'),
        `cluster_state:ok on ${port}`,
        10_000,
      );
    }
    for (const port of ports) {
      for (const [name, value] of Object.entries(config)) await run('redis-cli', [...cliArgs, '-p', String(port), 'config', 'set', name, value]);
    }
  } catch (err) {
    await stop();
    throw err;
  }
  const nodes = ports.map((port) => ({ host: announceHostname ?? '127.0.0.1', port }));
  const kill = async (port: number): Promise<void> => {
    const child = byPort.get(port);
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGKILL');
    await exited;
  };
  const restart = (port: number): void => start(port, Object.entries(config).flatMap(([name, value]) => [`--${name}`, value]));
  const freeze = (port: number, frozen: boolean): void => void byPort.get(port)?.kill(frozen ? 'SIGSTOP' : 'SIGCONT');
  return { nodes, env: nodes.map((n) => `${n.host}:${n.port}`).join(','), kill, restart, freeze, stop };
}

/**
 * A Cluster client to `cluster` as the Redis engine makes one (src/adapters/redis-link.ts: no offline queue, no ready
 * check, a command failing after `commandTimeoutMs`; the engine's `retryStrategy` is replaced by the Cluster client's own
 * for each node), resolved once it is up.
 */
export async function engineClusterClient(cluster: RedisClusterServer, commandTimeoutMs: number): Promise<Cluster> {
  const client = new Cluster(cluster.nodes, {
    redisOptions: { maxRetriesPerRequest: 0, commandTimeout: commandTimeoutMs },
    enableOfflineQueue: false,
    clusterRetryStrategy: (times: number) => Math.min(times * 100, 1000),
    enableReadyCheck: false,
  });
  client.on('error', () => undefined);
  client.on('node error', () => undefined);
  await within(new Promise((resolve) => client.once('ready', resolve)), 'a cluster client up', 10_000);
  return client;
}
