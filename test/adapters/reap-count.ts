/**
 * One case shared by the Redis engines (single Redis and Redis Cluster): a node's share removed while it held
 * subscriptions publishes `subscription_count` only for the apps that enabled counting (the local engine has no reap).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Envelope } from '../../src/adapters/envelope.js';
import type { RedisAdapter } from '../../src/adapters/redis-adapter.js';
import { until, WAIT_MS, within } from '../helpers/wait.js';

type Make = (extra: { prefix: string; countsSubscriptions: (appId: string) => boolean }) => RedisAdapter;

/** Registers the case for `name`'s adapters, made by `make`, each up within `readyMs` (a Redis Cluster client takes longer). */
export function reapWithoutCountCase(name: string, make: Make, readyMs = WAIT_MS): void {
  test(`${name}: a node gone from a channel of an app without subscription counting is reaped without subscription_count`, async () => {
    // A1 counts, a2 does not: the reap of each channel (on its own shard, on a Redis Cluster) follows its own app's setting.
    const countsSubscriptions = (appId: string): boolean => appId === 'a1';
    const a = make({ prefix: 'reapcount', countsSubscriptions });
    const b = make({ prefix: 'reapcount', countsSubscriptions });
    try {
      await within(Promise.all([a.ready(), b.ready()]), 'both adapters up', readyMs);
      const atB: Envelope[] = [];
      b.onEnvelope((e) => atB.push(e));
      for (const app of ['a1', 'a2']) {
        await b.join(app, 'news', '2.1', null, 0);
        await a.join(app, 'news', '1.1', null, 0);
        await a.join(app, 'news', '1.2', null, 0);
      }
      // The joins' own counts are in before the reap's is looked for (each reaches B over pub/sub after its join returns).
      const three = JSON.stringify({ subscription_count: 3 });
      await until(() => atB.some((e) => e.appId === 'a1' && e.data === three), "a1's count of 3 at B");
      atB.length = 0;
      // A node that goes away with subscriptions left removes its own share the way a survivor reaps a dead node's.
      await a.close();
      assert.deepEqual(await b.channel('a2', 'news'), { subscriptionCount: 1, userCount: 0 });
      for (const appId of ['a1', 'a2']) {
        b.publish({ appId, channel: 'news', event: 'e', data: 'after', userId: undefined, excludeSocketId: undefined, kind: 'channel_event', trace: undefined, publishedAt: 1 });
      }
      await until(() => atB.filter((e) => e.event === 'e').length === 2, 'the markers after the reap at B');
      assert.deepEqual(
        atB.filter((e) => e.event !== 'e').map((e) => [e.appId, e.event, e.data]),
        [['a1', 'pusher_internal:subscription_count', JSON.stringify({ subscription_count: 1 })]],
      );
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
}
