/**
 * The Redis Cluster link's commands are sent once or failed: none is parked inside ioredis and sent again after its caller
 * gave up on it (src/adapters/redis-link.ts). On a real 3-master cluster the test starts.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Cluster, Redis } from 'ioredis';
import { createRedisLink } from '../../src/adapters/redis-link.js';
import { slotMasters, startRedisCluster, type RedisClusterServer } from '../helpers/redis-cluster.js';
import { eventually } from '../helpers/wait.js';

let cluster: RedisClusterServer;
before(async () => {
  cluster = await startRedisCluster();
});
after(async () => {
  await cluster?.stop();
});

test('redis link (cluster): a command answered CLUSTERDOWN by a restarted master is failed to its caller, not sent again later', async () => {
  // A probe: a join script sent to a master killed and restarted empty was parked by ioredis (CLUSTERDOWN: sent again
  // every 100 ms, up to 16 times), timed out for its caller meanwhile, and ran after the engine's take-back, leaving a
  // member and a subscription in Redis for good.
  const link = createRedisLink(
    { clusterNodes: cluster.nodes },
    { enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: 300, autoResubscribe: false, lazyConnect: false, retryStrategy: () => 100 },
    'late',
  );
  const admin = new Cluster(cluster.nodes);
  try {
    const key = '{late-send}:counter';
    const { masterOf } = await slotMasters(admin);
    const port = Number(masterOf(key).split(':')[1]);
    await eventually(async () => (await link.commands.set('{late-send}:warm', '1').then(() => true, () => false)), 'the link serving the slot');

    await cluster.kill(port);
    cluster.restart(port);
    const direct = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 0, retryStrategy: () => 50 });
    direct.on('error', () => undefined);
    const state = async (): Promise<string> => /cluster_state:(\w+)/.exec(String(await direct.cluster('INFO')))?.[1] ?? '';
    try {
      // The restarted master answers CLUSTERDOWN until it hears from the others: each command of its slot sent meanwhile
      // (one key each) must be failed to its caller or run, never failed and run later.
      await eventually(async () => (await direct.ping()) === 'PONG', 'the master restarted', 10_000, 5);
      const failed: string[] = [];
      const ran: string[] = [];
      for (let i = 0; i < 200 && (await state().catch(() => 'fail')) !== 'ok'; i++) {
        const k = `{late-send}:n${i}`;
        await link.commands.incr(k).then(() => ran.push(k), () => failed.push(k));
      }
      await eventually(async () => (await state()) === 'ok', 'the cluster ok again', 10_000);
      assert.ok(failed.length > 0, 'some commands were sent while the master answered CLUSTERDOWN');
      await eventually(async () => (await link.commands.set('{late-send}:after', '1').then(() => true, () => false)), 'the slot served again');
      // ioredis sent a parked command again every 100 ms, up to 16 times: read the keys over that window.
      const deadline = Date.now() + 2000;
      while (Date.now() < deadline) {
        const values = await direct.mget(...failed);
        assert.deepEqual(failed.filter((_, i) => values[i] !== null), [], 'commands failed to their caller ran later');
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      if (ran.length > 0) assert.deepEqual(await direct.mget(...ran), ran.map(() => '1'));
    } finally {
      direct.disconnect();
    }
  } finally {
    admin.disconnect();
    await link.quit();
  }
});
