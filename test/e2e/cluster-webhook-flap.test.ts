/**
 * The vacate delay across the nodes of a cluster when both nodes hold a vacate: a member leaves node A (A holds its
 * `channel_vacated` / `member_removed`), comes to B and leaves it too (B holds its own), A's delay ends while the channel
 * is empty (A sends its vacate), and the member comes back to B within B's delay. B's own vacate is cancelled by its new
 * occupy, as a flap on one node is — but the receiver's last word was A's vacate, so B must send the occupy after all (a
 * probe: it was dropped with B's vacate, and the receiver kept the channel vacated and the member removed for good).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RawClient } from '../helpers/raw-client.js';
import { startRedis } from '../helpers/redis.js';
import { APP, startServer, type TestServer } from '../helpers/server.js';
import { eventually, until } from '../helpers/wait.js';
import { startWebhookReceiver } from '../helpers/webhook-receiver.js';

const ROOM = 'presence-flap';

/** A raw client of `server` subscribed to ROOM as `userId`. */
const member = (server: TestServer, userId: string): Promise<RawClient> => RawClient.subscribedMember(server.port, ROOM, userId);

test('a node whose held vacate is cancelled by its own occupy sends the occupy when another node sent its vacate meanwhile', { timeout: 60_000 }, async () => {
  const redis = await startRedis();
  const hooks = await startWebhookReceiver();
  const env = { ADAPTER: 'redis', REDIS_URL: redis.url, APP_WEBHOOK_URL: hooks.url };
  // A's delay ends while the member is gone from both nodes; B's lasts past the member's return to it.
  const a = await startServer({ ...env, NODE_ID: 'a', WEBHOOK_VACATE_DELAY_MS: '3000' });
  const b = await startServer({ ...env, NODE_ID: 'b', WEBHOOK_VACATE_DELAY_MS: '30000' });
  /** The receiver's story so far, in `time_ms` order. */
  const story = (): string[] =>
    [...hooks.requests]
      .sort((x, y) => x.body.time_ms - y.body.time_ms)
      .flatMap((r) => r.body.events)
      .filter((e) => e.channel === ROOM)
      .map((e) => e.name);
  const count = (name: string): number => hooks.events().filter((e) => e.channel === ROOM && e.name === name).length;
  const empty = async (): Promise<boolean> => (await a.app.adapter.channel(APP.id, ROOM)).subscriptionCount === 0;
  try {
    await until(() => a.app.adapter.status().up && b.app.adapter.status().up, 'both engines up', 10_000);
    const first = await member(a, 'u1');
    await until(() => count('member_added') === 1, 'member_added from A');
    await first.close();
    await eventually(empty, "the leave on A recorded");
    // On B the channel is empty: B sends its own occupy, then holds its vacate.
    const second = await member(b, 'u1');
    await until(() => count('member_added') === 2 && count('channel_occupied') === 2, 'channel_occupied and member_added from B');
    await second.close();
    await eventually(empty, 'the leave on B recorded');
    // A's delay ends with the channel empty: its vacate goes out.
    await until(() => count('channel_vacated') === 1 && count('member_removed') === 1, "A's channel_vacated and member_removed", 15_000);
    // Back on B within B's delay: B's held vacate is dropped, and its occupy goes out.
    const third = await member(b, 'u1');
    await until(() => count('channel_occupied') === 3 && count('member_added') === 3, 'channel_occupied and member_added from B again', 10_000);
    assert.deepEqual(story().filter((name) => name.startsWith('channel_')), ['channel_occupied', 'channel_occupied', 'channel_vacated', 'channel_occupied']);
    assert.deepEqual(story().filter((name) => name.startsWith('member_')), ['member_added', 'member_added', 'member_removed', 'member_added']);
    assert.equal(await b.app.adapter.hasMember(APP.id, ROOM, 'u1'), true);
    await third.close();
  } finally {
    await Promise.all([a.close(), b.close()]);
    await hooks.close();
    await redis.stop();
  }
});
