/**
 * Print only: Redis memory per recorded subscription, on one large channel and with one channel per subscription, for the
 * Redis engine of this checkout or of another one (`--root DIR`, e.g. a `git worktree` before a change).
 *
 *   node --import tsx bench/cluster/redis-memory.ts [--root DIR] [--subscriptions N]
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { startRedis } from '../../test/helpers/redis.js';

const { values } = parseArgs({
  options: { root: { type: 'string', default: '.' }, subscriptions: { type: 'string', default: '10000' } },
  strict: true,
});
const root = resolve(values.root);
const subscriptions = Number(values.subscriptions);
const { createRedisAdapter } = (await import(
  pathToFileURL(`${root}/src/adapters/redis-adapter.ts`).href
)) as typeof import('../../src/adapters/redis-adapter.js');

const redis = await startRedis();
const probe = new Redis(redis.url);
const usedMemory = async (): Promise<number> => Number(/used_memory:(\d+)/.exec(await probe.info('memory'))?.[1] ?? NaN);
const adapter = createRedisAdapter({
  metrics: { adapterMessage: () => undefined, adapterRequest: () => undefined, adapterDropped: () => undefined, cacheEvicted: () => undefined },
  logger: { info: () => undefined, warn: () => undefined },
  url: redis.url,
  nodeId: 'n',
  cacheTtlMs: 1000,
  appIds: ['a1'],
});
try {
  await adapter.ready();
  for (const layout of ['one channel', 'a channel each'] as const) {
    const before = await usedMemory();
    for (let i = 0; i < subscriptions; i += 200) {
      const joins: Promise<unknown>[] = [];
      for (let j = i; j < Math.min(i + 200, subscriptions); j++) {
        joins.push(adapter.join('a1', layout === 'one channel' ? 'big' : `c${j}`, `${1_000_000 + j}.${2_000_000 + j}`, null, 0));
      }
      await Promise.all(joins);
    }
    const bytes = ((await usedMemory()) - before) / subscriptions;
    console.log(`${root}: ${layout}: ${bytes.toFixed(0)} bytes of Redis memory per subscription (${subscriptions})`);
  }
} finally {
  await adapter.close();
  probe.disconnect();
  await redis.stop();
}
