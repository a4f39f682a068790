/**
 * A throwaway Redis with a replica, watched by one Sentinel (quorum 1), on free loopback ports: `redis-server` for the
 * two servers and `redis-server <conf> --sentinel` for the Sentinel (its configuration file in a temporary directory,
 * which it rewrites). A failover takes the Sentinel about a second to decide (`down-after-milliseconds` 1000). Every wait
 * is bounded.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from './free-port.js';
import { startRedis, type RedisServer } from './redis.js';
import type { TlsFiles } from './tls-certs.js';
import { eventually } from './wait.js';

export const SENTINEL_MASTER = 'mymaster';

export interface RedisSentinelSet {
  /** The two servers, the first started as the master. */
  servers: [RedisServer, RedisServer];
  /** `REDIS_SENTINELS` for Beacon. */
  env: string;
  /** The port of the server the Sentinel names master now. */
  masterPort(): Promise<number>;
  /** Resolves once the Sentinel names another master than `port` and that server answers as one. */
  failedOverFrom(port: number): Promise<number>;
  /** Asks the Sentinel to fail over now (`SENTINEL FAILOVER`): the master is demoted to a replica, still running. */
  failover(): Promise<void>;
  /** A command to the Sentinel (as its admin user, with `sentinelUsers`), e.g. `ACL SETUSER …`. */
  sentinelCall(command: string, ...args: string[]): Promise<unknown>;
  stop(): Promise<void>;
}

/** The Sentinel's own ACL users instead of its `requirepass`: `users` are sentinel.conf `user` lines; `admin` the helper's. */
export interface SentinelUsers {
  users: readonly string[];
  admin: { username: string; password: string };
}

/**
 * `password`: the servers ask for it (and replicate with it), the Sentinel too (unless `sentinelUsers` says who it lets
 * in). `tls`: servers and Sentinel speak only TLS (replication and the Sentinel's own connections included), with that
 * certificate.
 */
export async function startRedisSentinel(
  security: { password?: string; tls?: TlsFiles; sentinelUsers?: SentinelUsers } = {},
): Promise<RedisSentinelSet> {
  const { password, tls, sentinelUsers } = security;
  const dir = mkdtempSync(join(tmpdir(), 'beacon-sentinel-'));
  // Each server in a directory of its own: a replica's full sync writes the snapshot it receives there.
  for (const sub of ['a', 'b']) mkdirSync(join(dir, sub));
  const secured = [
    ...(password === undefined ? [] : ['--requirepass', password, '--masterauth', password]),
    ...(tls === undefined ? [] : ['--tls-replication', 'yes']),
  ];
  const listen = tls === undefined ? {} : { tls };
  const master = await startRedis({ dir: join(dir, 'a'), args: secured, ...listen });
  const replica = await startRedis({ dir: join(dir, 'b'), args: [...secured, '--replicaof', '127.0.0.1', String(master.port)], ...listen });
  const port = await freePort();
  const conf = join(dir, 'sentinel.conf');
  writeFileSync(
    conf,
    [
      ...(tls === undefined
        ? [`port ${port}`]
        : ['port 0', `tls-port ${port}`, `tls-cert-file ${tls.cert}`, `tls-key-file ${tls.key}`, `tls-ca-cert-file ${tls.ca}`,
            'tls-auth-clients no', 'tls-replication yes']),
      'bind 127.0.0.1',
      `dir ${dir}`,
      `sentinel monitor ${SENTINEL_MASTER} 127.0.0.1 ${master.port} 1`,
      `sentinel down-after-milliseconds ${SENTINEL_MASTER} 1000`,
      `sentinel failover-timeout ${SENTINEL_MASTER} 5000`,
      ...(password === undefined ? [] : [`sentinel auth-pass ${SENTINEL_MASTER} ${password}`]),
      ...(sentinelUsers !== undefined ? sentinelUsers.users.map((line) => `user ${line}`) : password === undefined ? [] : [`requirepass ${password}`]),
      '',
    ].join('\n'),
  );
  const child: ChildProcess = spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' });
  /** How the test's own clients reach the servers and the Sentinel. */
  const access = { ...(password === undefined ? {} : { password }), ...(tls === undefined ? {} : { tls: { ca: readFileSync(tls.ca) } }) };
  // Commands wait (offline queue) while the Sentinel starts, its connection retried every 100 ms.
  const sentinel = new Redis({ host: '127.0.0.1', port, retryStrategy: () => 100, ...access, ...sentinelUsers?.admin });
  sentinel.on('error', () => undefined);
  const stop = async (): Promise<void> => {
    sentinel.disconnect();
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGKILL');
      await exited;
    }
    await Promise.all([master.stop(), replica.stop()]);
    rmSync(dir, { recursive: true, force: true });
  };
  const masterPort = async (): Promise<number> => {
    const [, p] = (await sentinel.call('SENTINEL', 'get-master-addr-by-name', SENTINEL_MASTER)) as [string, string];
    return Number(p);
  };
  /** Resolves once the Sentinel knows the replica as one in sync it could promote. */
  const replicaKnown = async (): Promise<boolean> => {
    const replicas = (await sentinel.call('SENTINEL', 'replicas', SENTINEL_MASTER)) as string[][];
    return replicas.some((fields) => {
      const info = new Map<string, string>();
      for (let i = 0; i + 1 < fields.length; i += 2) info.set(fields[i]!, fields[i + 1]!);
      return info.get('flags') === 'slave' && info.get('master-link-status') === 'ok';
    });
  };
  try {
    await eventually(replicaKnown, 'the Sentinel knows the replica, in sync', 15_000);
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    servers: [master, replica],
    env: `127.0.0.1:${port}`,
    masterPort,
    async failedOverFrom(from) {
      let to = from;
      await eventually(async () => (to = await masterPort()) !== from, `the Sentinel names a master other than ${from}`, 20_000);
      const promoted = new Redis({ host: '127.0.0.1', port: to, lazyConnect: true, maxRetriesPerRequest: 1, ...access });
      promoted.on('error', () => undefined);
      try {
        await promoted.connect();
        await eventually(async () => (await promoted.role())[0] === 'master', `${to} answers as master`, 10_000);
      } finally {
        promoted.disconnect();
      }
      return to;
    },
    async failover() {
      await eventually(replicaKnown, 'the Sentinel knows the replica, in sync', 15_000);
      await sentinel.call('SENTINEL', 'failover', SENTINEL_MASTER);
    },
    sentinelCall: (command, ...args) => sentinel.call(command, ...args),
    stop,
  };
}
