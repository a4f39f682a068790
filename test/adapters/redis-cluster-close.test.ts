/**
 * A Redis engine node closing (a graceful stop) on a real 3-master Redis Cluster with one master down: the share it holds
 * on the live masters is removed as it goes, and the share it cannot remove leaves it listed with its liveness key gone,
 * so a survivor reaps the rest once that shard answers. Unlisted, nothing would ever find what is left there (survivors
 * walk the node list only).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Cluster } from 'ioredis';
import { createRedisAdapter, type RedisAdapter } from '../../src/adapters/redis-adapter.js';
import { RedisKeys } from '../../src/adapters/redis-keys.js';
import { noAdapterMetrics, quietLogger } from '../helpers/redis-adapter-deps.js';
import { slotMasters, startRedisCluster, type RedisClusterServer } from '../helpers/redis-cluster.js';
import { within } from '../helpers/wait.js';

let cluster: RedisClusterServer;
let admin: Cluster;
before(async () => {
  // The other shards keep serving while one is down.
  cluster = await startRedisCluster({ 'cluster-require-full-coverage': 'no' });
  admin = new Cluster(cluster.nodes);
  admin.on('error', () => undefined);
});
after(async () => {
  admin?.disconnect();
  await cluster?.stop();
});


test('a node closing with part of its share on a down master stays listed, its key gone; the rest of its share is removed', { timeout: 60_000 }, async () => {
  const prefix = 'closing';
  const keys = new RedisKeys(prefix);
  const { masterOf, masters, channelOn } = await slotMasters(admin);
  const make = (): RedisAdapter =>
    createRedisAdapter({ metrics: noAdapterMetrics, logger: quietLogger, url: 'redis://unused', clusterNodes: cluster.nodes, nodeId: 'closing', cacheTtlMs: 1000, appIds: ['a1'], prefix });
  // A node whose key, listing and indexes are on masters other than the one killed (node ids end in a random part).
  let node = make();
  let victim: string | undefined;
  for (let i = 0; i < 50 && victim === undefined; i++) {
    const kept = new Set([keys.nodes, keys.node(node.nodeId), keys.nodeChannels(node.nodeId), keys.nodeApps(node.nodeId)].map(masterOf));
    victim = [...masters].find((m) => !kept.has(m));
    if (victim === undefined) {
      await node.close();
      node = make();
    }
  }
  assert.ok(victim !== undefined, 'a master holding none of the node keys');
  let closed = false;
  try {
    await within(node.ready(), 'the node up', 10_000);
    const lost = channelOn('a1', 'lost', (m) => m === victim);
    const live = channelOn('a1', 'live', (m) => m !== victim);
    await node.join('a1', lost, '1.1', null, 0);
    await node.join('a1', live, '1.1', null, 0);
    assert.equal(await admin.sismember(keys.nodes, node.nodeId), 1);

    await cluster.kill(Number(victim.split(':')[1]));
    await node.close();
    closed = true;

    // Listed, with its key gone: a survivor's next round finds it dead and reaps what is left once the shard answers.
    assert.equal(await admin.sismember(keys.nodes, node.nodeId), 1, 'the closed node is still listed');
    assert.equal(await admin.exists(keys.node(node.nodeId)), 0, 'its liveness key is gone');
    // What it could remove is gone; its index still names the channel left for the survivor.
    assert.equal(await admin.hget(keys.channel('a1', live).state, 'total'), null);
    const indexed = (await admin.smembers(keys.nodeChannels(node.nodeId))).map((pair) => (JSON.parse(pair) as string[])[1]);
    assert.ok(indexed.includes(lost), `the index names ${lost}: ${JSON.stringify(indexed)}`);
  } finally {
    if (!closed) await node.close();
  }
});
