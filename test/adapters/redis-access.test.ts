/**
 * The Redis engine's credentials (`REDIS_USERNAME` / `REDIS_PASSWORD`, the adapter's `access`) on a real redis-server with
 * an ACL user and on a real Redis Cluster asking for a password: the engine comes up with them, and without them (or with
 * a wrong one) stays down saying what Redis refused — on a Cluster too, where the client itself said only that its
 * connection closed. TLS is covered with real Beacon processes (test/e2e/redis-secured.test.ts): a private authority is
 * trusted through NODE_EXTRA_CA_CERTS, read when a process starts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Cluster, Redis } from 'ioredis';
import type { Envelope } from '../../src/adapters/envelope.js';
import { createRedisAdapter, type RedisAccess, type RedisAdapter } from '../../src/adapters/redis-adapter.js';
import { noAdapterMetrics } from '../helpers/redis-adapter-deps.js';
import { startRedis } from '../helpers/redis.js';
import { startRedisCluster } from '../helpers/redis-cluster.js';
import { SENTINEL_MASTER, startRedisSentinel } from '../helpers/redis-sentinel.js';
import { eventually, until, within } from '../helpers/wait.js';

interface Made {
  adapter: RedisAdapter;
  lines: Record<string, unknown>[];
}

function make(target: { url: string } | { clusterNodes: { host: string; port: number }[] }, access: RedisAccess | undefined, prefix: string): Made {
  const lines: Record<string, unknown>[] = [];
  const logger = { info: (o: Record<string, unknown>) => lines.push(o), warn: (o: Record<string, unknown>) => lines.push(o) };
  const adapter = createRedisAdapter({
    metrics: noAdapterMetrics,
    logger: logger as never,
    url: 'url' in target ? target.url : 'redis://unused',
    ...('clusterNodes' in target ? { clusterNodes: target.clusterNodes } : {}),
    ...(access === undefined ? {} : { access }),
    nodeId: 'n',
    cacheTtlMs: 1000,
    appIds: ['a1'],
    prefix,
  });
  return { adapter, lines };
}

/** The reason of the first `adapter_down` line, once there is one. */
async function downBecause({ adapter, lines }: Made): Promise<string> {
  await until(() => lines.some((l) => l.event === 'adapter_down'), 'adapter_down', 10_000);
  assert.equal(adapter.status().up, false);
  return String(lines.find((l) => l.event === 'adapter_down')!.reason);
}

/** A publication of `a` reaches `b`, which listens to the channel (a subscription of its own). */
async function publishes(a: RedisAdapter, b: RedisAdapter): Promise<void> {
  await within(Promise.all([a.ready(), b.ready()]), 'both adapters up', 10_000);
  const atB: Envelope[] = [];
  b.onEnvelope((e) => atB.push(e));
  await b.join('a1', 'news', '2.1', null, 0);
  a.publish({ appId: 'a1', channel: 'news', event: 'e', data: 'through AUTH', userId: undefined, excludeSocketId: undefined, kind: 'channel_event', trace: undefined, publishedAt: 1 });
  await until(() => atB.some((e) => e.event === 'e' && e.data === 'through AUTH'), 'the publication at B');
  assert.deepEqual(await a.channel('a1', 'news'), { subscriptionCount: 1, userCount: 0 });
}

/**
 * The smallest ACL the engine needs (docs/scaling.md), for the default key prefix `beacon` and the tests' prefixes; on a
 * Redis Cluster `cluster|slots` too (the client reads the slot map with it).
 */
const ENGINE_ACL = ['~beacon:*', '&beacon:*', '~acl:*', '&acl:*', '-@all', '+@read', '+@write', '+@pubsub', '+@scripting', '+@connection', '+@keyspace', '-@dangerous', '+info', '+time', '+cluster|slots'];

/** Resolves once `node`'s liveness key had its TTL set again `times` times from now (a beat each). */
async function beats(admin: Pick<Redis | Cluster, 'pttl'>, key: string, times: number): Promise<void> {
  let last = Number.POSITIVE_INFINITY;
  let rises = 0;
  await eventually(async () => {
    const ttl = await admin.pttl(key);
    if (ttl > last) rises++;
    last = ttl;
    return rises >= times;
  }, `${times} beats`, 10_000);
}

test('redis adapter with an ACL user: up with its user and password; a wrong password or none is said as Redis refused it', async () => {
  const redis = await startRedis({ args: ['--requirepass', 'admin-only', '--user', 'beacon', 'on', '>beacon-secret', ...ENGINE_ACL] });
  const made: Made[] = [];
  try {
    const access = { username: 'beacon', password: 'beacon-secret' };
    made.push(make({ url: redis.url }, access, 'acl'), make({ url: redis.url }, access, 'acl'));
    await publishes(made[0]!.adapter, made[1]!.adapter);
    const wrong = make({ url: redis.url }, { username: 'beacon', password: 'not-it' }, 'acl');
    const none = make({ url: redis.url }, undefined, 'acl');
    made.push(wrong, none);
    assert.match(await downBecause(wrong), /^WRONGPASS/);
    assert.match(await downBecause(none), /^NOAUTH/);
    // Let in once Redis takes the password: it kept trying.
    const admin = new Redis(redis.url, { username: 'default', password: 'admin-only' });
    try {
      await admin.acl('SETUSER', 'beacon', 'on', '>not-it');
    } finally {
      admin.disconnect();
    }
    await within(wrong.adapter.ready(), 'the engine up once its password is taken', 10_000);
    assert.ok(wrong.lines.some((l) => l.event === 'adapter_up'));
    // The ACL above gives INFO: nothing said about it.
    assert.deepEqual(made.flatMap((m) => m.lines.filter((l) => l.event === 'adapter_info_denied')), []);
  } finally {
    await Promise.all(made.map((m) => m.adapter.close()));
    await redis.stop();
  }
});

test('redis adapter: a password changed under a connected node is said (WRONGPASS) once its connections are cut, not only "connection closed"', async () => {
  const redis = await startRedis({ args: ['--requirepass', 'admin-only', '--user', 'beacon', 'on', '>beacon-secret', ...ENGINE_ACL] });
  const admin = new Redis(redis.url, { username: 'default', password: 'admin-only' });
  const made = make({ url: redis.url }, { username: 'beacon', password: 'beacon-secret' }, 'acl');
  try {
    await within(made.adapter.ready(), 'the engine up', 10_000);
    // Rotated on the server without the node: its connections stay authenticated until they are cut.
    await admin.acl('SETUSER', 'beacon', 'resetpass', '>rotated');
    await admin.client('KILL', 'USER', 'beacon');
    await until(
      () => made.lines.some((l) => (l.event === 'adapter_down' || l.event === 'adapter_still_down') && /^WRONGPASS/.test(String(l.reason))),
      'WRONGPASS said',
      10_000,
    );
    assert.equal(made.lines.filter((l) => l.event === 'adapter_down').length, 1);
  } finally {
    admin.disconnect();
    await made.adapter.close();
    await redis.stop();
  }
});

test('redis adapter with a user denied INFO (-@dangerous): up and working; says once that restores and eviction go unseen', async () => {
  const redis = await startRedis({ args: ['--requirepass', 'admin-only', '--user', 'beacon', 'on', '>beacon-secret', '~*', '&*', '+@all', '-@dangerous'] });
  const admin = new Redis(redis.url, { username: 'default', password: 'admin-only' });
  const made = [0, 1].map(() => make({ url: redis.url }, { username: 'beacon', password: 'beacon-secret' }, 'acl'));
  try {
    await publishes(made[0]!.adapter, made[1]!.adapter);
    const denied = (m: Made): Record<string, unknown>[] => m.lines.filter((l) => l.event === 'adapter_info_denied');
    await until(() => made.every((m) => denied(m).length > 0), 'adapter_info_denied on both nodes');
    // Every beat reads the run id again: still said once.
    await beats(admin, `acl:node:${made[0]!.adapter.nodeId}`, 2);
    for (const m of made) assert.deepEqual(denied(m).map((l) => l.server), [`127.0.0.1:${redis.port}`]);
  } finally {
    admin.disconnect();
    await Promise.all(made.map((m) => m.adapter.close()));
    await redis.stop();
  }
});

test('redis cluster adapter with an ACL user: up, publishing and subscribing with the ACL docs/scaling.md gives', async () => {
  const cluster = await startRedisCluster({}, { password: 'admin-only', serverArgs: ['--user', 'beacon', 'on', '>beacon-secret', ...ENGINE_ACL] });
  const admin = new Cluster(cluster.nodes, { redisOptions: { password: 'admin-only' } });
  const made: Made[] = [];
  try {
    const target = { clusterNodes: cluster.nodes };
    made.push(make(target, { username: 'beacon', password: 'beacon-secret' }, 'acl'), make(target, { username: 'beacon', password: 'beacon-secret' }, 'acl'));
    // Without `+cluster|slots` neither came up: "Failed to refresh slots cache. (last node: NOPERM this user has no
    // permissions to run the 'cluster|slots' command)".
    await publishes(made[0]!.adapter, made[1]!.adapter);
    // Two more beats (each reads every master's INFO too): nothing refused meanwhile.
    await beats(admin, `acl:node:${made[0]!.adapter.nodeId}`, 2);
    // Nothing refused: no permission missing, INFO allowed. (Under load a command may time out: not what this is about.)
    for (const { lines } of made) {
      assert.deepEqual(lines.filter((l) => /NOPERM/.test(JSON.stringify(l)) || l.event === 'adapter_info_denied'), []);
    }
    // The user's channels taken away on every node: each publish is refused (NOPERM) while the engine is up. Said, as the
    // engine's other requests are (it was counted only: nothing said, the node ready).
    for (const node of cluster.nodes) {
      const nodeAdmin = new Redis({ ...node, password: 'admin-only' });
      await nodeAdmin.acl('SETUSER', 'beacon', 'resetchannels');
      nodeAdmin.disconnect();
    }
    // Published until one is refused while the engine is up (the subscriber connections Redis cut for their channels
    // reconnect meanwhile, and a publish while the engine is down is dropped as such): bounded, 50 × 200 ms.
    const saidFailed = (): boolean => made[0]!.lines.some((l) => l.event === 'adapter_request_failed');
    for (let i = 0; i < 50 && !saidFailed(); i++) {
      made[0]!.adapter.publish({ appId: 'a1', channel: 'news', event: 'e', data: 'refused', userId: undefined, excludeSocketId: undefined, kind: 'channel_event', trace: undefined, publishedAt: 1 });
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    assert.ok(saidFailed(), 'adapter_request_failed');
    const failed = made[0]!.lines.find((l) => l.event === 'adapter_request_failed')!;
    assert.deepEqual([failed.op, /^NOPERM/.test(String(failed.error))], ['publish', true]);
  } finally {
    admin.disconnect();
    await Promise.all(made.map((m) => m.adapter.close()));
    await cluster.stop();
  }
});

test('redis cluster adapter with a password: up, publishing and subscribing with it; a wrong one is said as WRONGPASS, not "connection closed"', async () => {
  const cluster = await startRedisCluster({}, { password: 'cluster-secret' });
  const made: Made[] = [];
  try {
    const target = { clusterNodes: cluster.nodes };
    made.push(make(target, { password: 'cluster-secret' }, 'auth'), make(target, { password: 'cluster-secret' }, 'auth'));
    await publishes(made[0]!.adapter, made[1]!.adapter);
    const wrong = make(target, { password: 'not-it' }, 'auth');
    made.push(wrong);
    assert.match(await downBecause(wrong), /WRONGPASS/);

    // The password changed on every master under connected nodes, their connections cut: each reconnection of the client
    // is refused. Said as such, and the masters not said down again at every round (160–190 lines a minute before).
    const [a] = made as [Made];
    const admins = cluster.nodes.map((n) => new Redis({ ...n, password: 'cluster-secret' }));
    try {
      const accepted = async (admin: Redis): Promise<number> => Number(/total_connections_received:(\d+)/.exec(await admin.info('stats'))?.[1] ?? 0);
      const before = await Promise.all(admins.map(accepted));
      for (const admin of admins) await admin.config('SET', 'requirepass', 'rotated');
      for (const admin of admins) {
        await admin.call('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
        await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
      }
      // Rounds of reconnections, each refused (about 10 a second per master here; every round said every master down
      // again before: 27 lines in 5 s).
      await eventually(
        async () => (await Promise.all(admins.map(accepted))).every((n, i) => n - before[i]! >= 40),
        'forty refused connections on every master',
        20_000,
      );
      const said = (event: string): Record<string, unknown>[] => a.lines.filter((l) => l.event === event);
      assert.ok(
        [...said('adapter_down'), ...said('adapter_still_down')].some((l) => /WRONGPASS/.test(String(l.reason))),
        JSON.stringify(said('adapter_down')),
      );
      assert.ok(said('adapter_shard_down').length <= cluster.nodes.length, `${said('adapter_shard_down').length} adapter_shard_down lines`);
    } finally {
      for (const admin of admins) admin.disconnect();
    }
  } finally {
    await Promise.all(made.map((m) => m.adapter.close()));
    await cluster.stop();
  }
});

test('redis adapter through Sentinels asking for an ACL user: up with its user; a user not let listen to the switch is said once and asked again, and the switch followed once it is', { timeout: 90_000 }, async () => {
  // The Sentinel's user for Beacon, at first without the channel of the master's switch (`&+switch-master`).
  const sentinelUser = 'beacon-s on >sentinel-secret -@all +sentinel|get-master-addr-by-name +sentinel|sentinels +subscribe resetchannels';
  const set = await startRedisSentinel({
    sentinelUsers: { users: ['default off', 'admin on >admin-secret ~* &* +@all', sentinelUser], admin: { username: 'admin', password: 'admin-secret' } },
  });
  const lines: Record<string, unknown>[] = [];
  const logger = { info: (o: Record<string, unknown>) => lines.push(o), warn: (o: Record<string, unknown>) => lines.push(o) };
  const [host, port] = set.env.split(':') as [string, string];
  const adapter = createRedisAdapter({
    metrics: noAdapterMetrics,
    logger: logger as never,
    url: 'redis://unused',
    sentinels: [{ host, port: Number(port) }],
    sentinelMaster: SENTINEL_MASTER,
    sentinelUsername: 'beacon-s',
    sentinelPassword: 'sentinel-secret',
    nodeId: 'n',
    cacheTtlMs: 1000,
    appIds: ['a1'],
    prefix: 'sacl',
  });
  const said = (event: string): Record<string, unknown>[] => lines.filter((l) => l.event === event);
  try {
    // Without the user (REDIS_SENTINEL_USERNAME) it was refused as `default`: WRONGPASS, never up.
    await within(adapter.ready(), 'the adapter up through the Sentinel', 10_000);
    await until(() => said('adapter_sentinel_watch_failed').length > 0, 'adapter_sentinel_watch_failed', 10_000);
    assert.deepEqual(
      said('adapter_sentinel_watch_failed').map((l) => [l.sentinel, /NOPERM/.test(String(l.error))]),
      [[set.env, true]],
    );
    // Let in: listening from the next try (every 5 s), said once; the refusals meanwhile were not said again.
    await set.sentinelCall('ACL', 'SETUSER', 'beacon-s', '&+switch-master');
    await until(() => said('adapter_sentinel_watch_resumed').length > 0, 'adapter_sentinel_watch_resumed', 10_000);
    assert.equal(said('adapter_sentinel_watch_failed').length, 1);
    // Taken away again: Redis disconnects the listener, whose SUBSCRIBE is refused on reconnection (ioredis' own
    // resubscription left that refusal unhandled: the process ended). Said, and asked again until given back.
    await set.sentinelCall('ACL', 'SETUSER', 'beacon-s', 'resetchannels');
    await until(() => said('adapter_sentinel_watch_failed').length > 1, 'the second adapter_sentinel_watch_failed', 10_000);
    await set.sentinelCall('ACL', 'SETUSER', 'beacon-s', '&+switch-master');
    await until(() => said('adapter_sentinel_watch_resumed').length > 1, 'the second adapter_sentinel_watch_resumed', 10_000);
    // A password changed under it: its reconnections are refused (WRONGPASS), said though no command of it fails.
    await set.sentinelCall('ACL', 'SETUSER', 'beacon-s', 'resetpass', '>rotated');
    await set.sentinelCall('CLIENT', 'KILL', 'USER', 'beacon-s');
    await until(() => said('adapter_sentinel_watch_failed').length > 2, 'the third adapter_sentinel_watch_failed', 10_000);
    await set.sentinelCall('ACL', 'SETUSER', 'beacon-s', 'resetpass', '>sentinel-secret');
    await until(() => said('adapter_sentinel_watch_resumed').length > 2, 'the third adapter_sentinel_watch_resumed', 15_000);
    assert.deepEqual(
      said('adapter_sentinel_watch_failed').map((l) => String(l.error).split(' ')[0]),
      ['NOPERM', 'NOPERM', 'WRONGPASS'],
    );

    // A manual failover demotes the master, still running: the subscriber connection (which never writes, so never meets
    // READONLY) leaves it for the new master at the switch. It stayed behind while the switch could not be heard.
    const from = await set.masterPort();
    await set.failover();
    const to = await set.failedOverFrom(from);
    const promoted = new Redis({ host, port: to });
    try {
      await eventually(
        async () => String(await promoted.call('CLIENT', 'LIST')).includes('name=beacon-sub-'),
        'the subscriber connection on the new master',
        5000,
      );
    } finally {
      promoted.disconnect();
    }
  } finally {
    await adapter.close();
    await set.stop();
  }
});

test('redis adapter with TLS on against a Redis that speaks none: adapter_down says the handshake went unanswered, not only ETIMEDOUT', { timeout: 30_000 }, async () => {
  // A Redis without TLS takes the ClientHello for the start of an inline command and waits for its end: the connect
  // timed out after 10 s with `connect ETIMEDOUT`, which named neither TLS nor the setting (a probe).
  const redis = await startRedis();
  const made = make({ url: redis.url }, { tls: true }, 'tls-plain');
  try {
    await until(() => made.lines.some((l) => l.event === 'adapter_down'), 'adapter_down', 20_000);
    assert.match(String(made.lines.find((l) => l.event === 'adapter_down')!.reason), /ETIMEDOUT.*TLS.*REDIS_TLS/);
  } finally {
    await made.adapter.close();
    await redis.stop();
  }
});
