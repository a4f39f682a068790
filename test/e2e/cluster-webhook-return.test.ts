/**
 * The vacate delay across the nodes of a cluster (two Beacon nodes on one Redis): a member who leaves on one node and is
 * back on another before the delay ends gets `member_added` from the node it came back to at once, and the node it left
 * sends no `member_removed` after it — which a receiver would take as the member gone — because, when the delay ends, that
 * node asks the cluster whether the member is still gone. A member who does not come back is removed as usual.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RawClient } from '../helpers/raw-client.js';
import { startRedis } from '../helpers/redis.js';
import { APP, startServer, type TestServer } from '../helpers/server.js';
import { eventually, until } from '../helpers/wait.js';
import { startWebhookReceiver } from '../helpers/webhook-receiver.js';

const ROOM = 'presence-room';

/** A raw client of `server` subscribed to ROOM as `userId`. */
const member = (server: TestServer, userId: string): Promise<RawClient> => RawClient.subscribedMember(server.port, ROOM, userId);

test('a member back on another node within the vacate delay is not removed by the node it left', { timeout: 60_000 }, async () => {
  const redis = await startRedis();
  const hooks = await startWebhookReceiver();
  const env = { ADAPTER: 'redis', REDIS_URL: redis.url, APP_WEBHOOK_URL: hooks.url, WEBHOOK_VACATE_DELAY_MS: '400' };
  const a = await startServer({ ...env, NODE_ID: 'left' });
  const b = await startServer({ ...env, NODE_ID: 'back' });
  const story = (userId: string): string[] =>
    [...hooks.requests]
      .sort((x, y) => x.body.time_ms - y.body.time_ms)
      .flatMap((r) => r.body.events)
      .filter((e) => 'user_id' in e && e.user_id === userId)
      .map((e) => e.name);
  try {
    await until(() => a.app.adapter.status().up && b.app.adapter.status().up, 'both engines up', 10_000);
    // Olga stays on B throughout, so the channel is never vacated.
    const olga = await member(b, 'olga');
    const mia = await member(a, 'mia');
    const zed = await member(a, 'zed');
    await hooks.event((e) => e.name === 'member_added' && e.user_id === 'zed', 'member_added for zed');

    // Mia leaves A and is back on B at once; then zed leaves A for good, later than mia.
    // Back once A's leave is recorded: the cluster then holds no mia, so B's join adds her (and sends member_added) while
    // A's member_removed is held. Back before that (the close logged, its leave still in flight), B's join finds her
    // present and adds nothing, and A's leave then removes nothing: one member_added, no removal either way.
    await mia.close();
    await eventually(async () => !(await a.app.adapter.hasMember(APP.id, ROOM, 'mia')), "mia's leave recorded on A");
    const back = await member(b, 'mia');
    await zed.close();
    // Zed's removal is held as long and sent after mia's would have been: once it is in, mia's fate is known.
    await hooks.event((e) => e.name === 'member_removed' && e.user_id === 'zed', 'member_removed for zed');
    assert.deepEqual(story('zed'), ['member_added', 'member_removed']);
    // Mia was added twice (on A, then on B, which could not know of A's held removal) and never removed.
    assert.deepEqual(story('mia'), ['member_added', 'member_added']);
    await Promise.all([olga.close(), back.close()]);
  } finally {
    await Promise.all([a.close(), b.close()]);
    await hooks.close();
    await redis.stop();
  }
});
