/**
 * The Redis adapter on a real 3-master Redis Cluster (started by the test from redis-server on loopback ports): the shared
 * contract suite, and two nodes seeing one presence membership and each other's sharded publications.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Envelope } from '../../src/adapters/envelope.js';
import { createRedisAdapter, type RedisAdapter } from '../../src/adapters/redis-adapter.js';
import { startRedisCluster, type RedisClusterServer } from '../helpers/redis-cluster.js';
import { until, within } from '../helpers/wait.js';
import { adapterContract } from './adapter-contract.js';
import { reapWithoutCountCase } from './reap-count.js';

let cluster: RedisClusterServer;
before(async () => {
  cluster = await startRedisCluster();
});
after(async () => {
  await cluster?.stop();
});

const noMetrics = {
  adapterMessage: () => undefined,
  adapterRequest: () => undefined,
  adapterDropped: () => undefined,
  cacheEvicted: () => undefined,
};
const quiet = { info: () => undefined, warn: () => undefined };
let prefixes = 0;

function make(extra: Partial<Parameters<typeof createRedisAdapter>[0]> = {}): RedisAdapter {
  return createRedisAdapter({
    metrics: noMetrics,
    logger: quiet,
    url: 'redis://unused',
    clusterNodes: cluster.nodes,
    nodeId: 'n',
    cacheTtlMs: 1000,
    appIds: ['a1'],
    ...extra,
  });
}

adapterContract('redis cluster adapter', async (clock, cacheTtlMs, countsSubscriptions) => {
  const adapter = make({ cacheTtlMs, now: clock.now, prefix: `cc${prefixes++}`, countsSubscriptions });
  await within(adapter.ready(), 'the redis cluster adapter to be up', 10_000);
  return adapter;
});

test('redis cluster adapter: a user on two nodes is one member; sharded publications reach both nodes', async () => {
  const a = make({ prefix: 'pair' });
  const b = make({ prefix: 'pair' });
  try {
    await within(Promise.all([a.ready(), b.ready()]), 'both adapters up', 10_000);
    const atB: Envelope[] = [];
    b.onEnvelope((e) => atB.push(e));
    const u = { userId: 'u', userInfo: null };
    const first = await a.join('a1', 'presence-x', '1.1', u, 0);
    const second = await b.join('a1', 'presence-x', '2.1', u, 0);
    assert.equal(first.memberAdded, true);
    assert.equal(second.memberAdded, false);
    assert.deepEqual(await a.channel('a1', 'presence-x'), { subscriptionCount: 2, userCount: 1 });
    for (const channel of ['c1', 'c2', 'c3', 'c4']) await b.join('a1', channel, '2.1', null, 0);
    for (const channel of ['c1', 'c2', 'c3', 'c4']) {
      a.publish({ appId: 'a1', channel, event: 'e', data: channel, userId: undefined, excludeSocketId: undefined, kind: 'channel_event', trace: undefined, publishedAt: 1 });
    }
    await until(() => atB.filter((e) => e.event === 'e').length === 4, 'the four publications on B');
    assert.deepEqual((await a.leave('a1', 'presence-x', '1.1', u)).memberRemoved, false);
    assert.deepEqual(await b.leave('a1', 'presence-x', '2.1', u), { memberRemoved: true, vacated: true, count: undefined });
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});

reapWithoutCountCase('redis cluster adapter', make, 10_000);
