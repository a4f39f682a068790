/**
 * RedisMembership's outcomes come back in the order Redis ran their scripts. The node emits its webhooks from them (the
 * occupying join's `channel_occupied` and count of 1, each later join's count): an outcome held back by a command of its
 * own after its script let the next join's count go out before the `channel_occupied` (an outside probe saw
 * `subscription_count` 2, `channel_occupied`, 1 in one request).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { RedisKeys } from '../../src/adapters/redis-keys.js';
import { RedisMembership } from '../../src/adapters/redis-membership.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';
import { eventually } from '../helpers/wait.js';

let redis: RedisServer;
let client: Redis;
before(async () => {
  redis = await startRedis();
  client = new Redis(redis.url);
});
after(async () => {
  client?.disconnect();
  await redis?.stop();
});

test('joins of one channel on one node return in the order their scripts ran: the occupying one first', async () => {
  const keys = new RedisKeys('join-order');
  const node = new RedisMembership(client, keys, 'n1', 'PUBLISH', () => true);
  for (let round = 0; round < 20; round++) {
    const channel = `news-${round}`;
    const returned: string[] = [];
    const joins = ['s1', 's2', 's3'].map((socketId) =>
      node.join('a1', channel, socketId, null, 0).then((outcome) => {
        returned.push(`${outcome.occupied ? 'occupied ' : ''}count ${String(outcome.count)}`);
      }),
    );
    await Promise.all(joins);
    assert.deepEqual(returned, ['occupied count 1', 'count 2', 'count 3'], `round ${round}`);
  }
  // The listing an occupying join adds to is written all the same (GET /channels).
  await eventually(async () => (await client.scard(keys.appChannels('a1'))) === 20, 'the 20 channels listed');
});

test("a channel's last leave and the next join on one node return in the order their scripts ran: the vacate first", async () => {
  const keys = new RedisKeys('leave-join-order');
  const node = new RedisMembership(client, keys, 'n1', 'PUBLISH', () => true);
  // Both scripts loaded first: a script Redis does not have yet is sent again in full after its NOSCRIPT answer, behind
  // whatever was sent meanwhile (once per script and Redis start; not what this test is about).
  await node.join('a1', 'warm-up', 'w', null, 0);
  await node.leave('a1', 'warm-up', 'w', null);
  for (let round = 0; round < 20; round++) {
    const channel = `news-${round}`;
    await node.join('a1', channel, 'old', null, 0);
    const returned: string[] = [];
    await Promise.all([
      node.leave('a1', channel, 'old', null).then((outcome) => returned.push(outcome.vacated ? 'vacated' : 'left')),
      node.join('a1', channel, 'new', null, 0).then((outcome) => returned.push(outcome.occupied ? 'occupied' : 'joined')),
    ]);
    assert.deepEqual(returned, ['vacated', 'occupied'], `round ${round}`);
  }
  // The listings end as the subscriptions are: every channel occupied, listed, and held by this node.
  await eventually(async () => (await client.scard(keys.appChannels('a1'))) === 20, 'the 20 channels listed');
  assert.equal(await client.scard(keys.nodeChannels('n1')), 20);
});
