/**
 * The Redis engine's credentials (`REDIS_USERNAME` / `REDIS_PASSWORD`, the adapter's `access`) on a real redis-server with
 * an ACL user and on a real Redis Cluster asking for a password: the engine comes up with them, and without them (or with
 * a wrong one) stays down saying what Redis refused — on a Cluster too, where the client itself said only that its
 * connection closed. TLS is covered with real Beacon processes (test/e2e/redis-secured.test.ts): a private authority is
 * trusted through NODE_EXTRA_CA_CERTS, read when a process starts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Redis } from 'ioredis';
import type { Envelope } from '../../src/adapters/envelope.js';
import { createRedisAdapter, type RedisAccess, type RedisAdapter } from '../../src/adapters/redis-adapter.js';
import { noAdapterMetrics } from '../helpers/redis-adapter-deps.js';
import { startRedis } from '../helpers/redis.js';
import { startRedisCluster } from '../helpers/redis-cluster.js';
import { until, within } from '../helpers/wait.js';

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

test('redis adapter with an ACL user: up with its user and password; a wrong password or none is said as Redis refused it', async () => {
  const redis = await startRedis({ args: ['--requirepass', 'admin-only', '--user', 'beacon', 'on', '>beacon-secret', '~*', '&*', '+@all'] });
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
  } finally {
    await Promise.all(made.map((m) => m.adapter.close()));
    await redis.stop();
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
  } finally {
    await Promise.all(made.map((m) => m.adapter.close()));
    await cluster.stop();
  }
});
