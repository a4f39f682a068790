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
import type { Cluster, Redis } from 'ioredis';
import { freePort } from './free-port.js';
import { eventually } from './wait.js';

const run = promisify(execFile);

export interface RedisClusterServer {
  nodes: { host: string; port: number }[];
  /** `REDIS_CLUSTER_NODES` for Beacon. */
  env: string;
  stop(): Promise<void>;
}

/** The cluster's slot map as it is now: the master serving a key's slot, and every master, as "host:port". */
export interface SlotMasters {
  masterOf(key: string): string;
  masters: Set<string>;
}

/** Reads the slot map through `client` (CLUSTER SLOTS). */
export async function slotMasters(client: Redis | Cluster): Promise<SlotMasters> {
  const ranges = (await client.cluster('SLOTS')) as unknown as [number, number, [string, number]][];
  return {
    masterOf(key) {
      const slot = calculateSlot(key);
      const [, , [host, port]] = ranges.find(([from, to]) => from <= slot && slot <= to)!;
      return `${host}:${port}`;
    },
    masters: new Set(ranges.map(([, , [host, port]]) => `${host}:${port}`)),
  };
}

export async function startRedisCluster(): Promise<RedisClusterServer> {
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
  try {
    for (const port of ports) {
      const child = spawn(
        'redis-server',
        ['--port', String(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`,
          '--save', '', '--appendonly', 'no', '--dir', dir],
        { stdio: 'ignore' },
      );
      children.push(child);
    }
    for (const port of ports) {
      await eventually(async () => (await run('redis-cli', ['-p', String(port), 'ping'])).stdout.trim() === 'PONG', `redis ${port}`, 5000);
    }
    await run('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'], {
      timeout: 20_000,
    });
    for (const port of ports) {
      await eventually(
        async () => (await run('redis-cli', ['-p', String(port), 'cluster', 'info'])).stdout.includes('cluster_state:ok'),
        `cluster_state:ok on ${port}`,
        10_000,
      );
    }
  } catch (err) {
    await stop();
    throw err;
  }
  const nodes = ports.map((port) => ({ host: '127.0.0.1', port }));
  return { nodes, env: nodes.map((n) => `${n.host}:${n.port}`).join(','), stop };
}
