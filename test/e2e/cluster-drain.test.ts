/**
 * The drain of one node of a Redis cluster (lifecycle/drain.ts, step 5: the leave grace). Its clients are closed with
 * 4200 and reconnect to another node at once (as pusher-js does behind a load balancer); their leaves are recorded only
 * once the grace is over, so a member back on another node within it is neither removed nor added for the others — no
 * `member_removed` / `member_added`, no webhooks — as when a node crashes and its members are back before the reap. A
 * member that does not come back is removed at the end of the grace, and nothing of the drained node is left in Redis.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import type { RedisAdapter } from '../../src/adapters/redis-adapter.js';
import { RedisKeys } from '../../src/adapters/redis-keys.js';
import { Deadline } from '../../src/lifecycle/deadline.js';
import { leaveGraceMs } from '../../src/lifecycle/drain.js';
import { authOptions } from '../helpers/auth.js';
import { nextEvent, subscribed } from '../helpers/pusher-events.js';
import type { PresenceChannel, PusherClient } from '../helpers/pusher-js.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';
import { APP, startServer, type TestServer } from '../helpers/server.js';
import { eventually, until } from '../helpers/wait.js';
import { startWebhookReceiver, type WebhookReceiver } from '../helpers/webhook-receiver.js';

const SHUTDOWN_TIMEOUT_MS = 5000;
const keys = new RedisKeys('beacon');

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

/** Node A (to be drained) and node B (the survivor), both sending webhooks to `hooks`. */
async function cluster(hooks: WebhookReceiver): Promise<[TestServer, TestServer]> {
  const env = { ADAPTER: 'redis', REDIS_URL: redis.url, APP_WEBHOOK_URL: hooks.url, SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS) };
  const a = await startServer({ ...env, NODE_ID: 'drained' });
  const b = await startServer({ ...env, NODE_ID: 'survivor' });
  await until(() => a.app.adapter.status().up && b.app.adapter.status().up, 'both nodes on Redis');
  // B's heartbeat has been recorded: A's drain finds a node to reconnect to.
  const survivor = keys.node((b.app.adapter as RedisAdapter).nodeId);
  await eventually(async () => (await client.exists(survivor)) === 1, 'node B beats');
  return [a, b];
}

/** `user` on `server`, with its own auth. */
function member(server: TestServer, user: string): PusherClient {
  return server.client(authOptions(server.sdk(), { presence: { user_id: user, user_info: {} } }));
}

/** The observer's member events, as `added <id>` / `removed <id>`, with when each arrived. */
function watch(room: PresenceChannel): { seen: string[]; at: Map<string, number> } {
  const seen: string[] = [];
  const at = new Map<string, number>();
  const note = (what: string) => {
    seen.push(what);
    at.set(what, performance.now());
  };
  room.bind('pusher:member_added', (m: { id: string }) => note(`added ${m.id}`));
  room.bind('pusher:member_removed', (m: { id: string }) => note(`removed ${m.id}`));
  return { seen, at };
}

/** Nothing of `node` is left in Redis: no key of its own, not listed, no share of `channel`. */
async function assertGone(node: string, channel: string): Promise<void> {
  assert.deepEqual((await client.keys('*')).filter((k) => k.includes(node)), []);
  assert.ok(!(await client.smembers(keys.nodes)).includes(node), 'the drained node is unlisted');
  const state = await client.hgetall(keys.channel(APP.id, channel).state);
  assert.equal(state[keys.nodeField(node)], undefined, 'no subscription of the drained node is counted');
}

/** Every event published on the channel before the marker has reached the observer once the marker has. */
async function marker(server: TestServer, room: PresenceChannel, channel: string): Promise<void> {
  const arrived = nextEvent(room, 'marker');
  await server.sdk().trigger(channel, 'marker', {});
  await arrived;
}

test('a member reconnecting to another node during the drain of its node is neither removed nor added for the others', async () => {
  const hooks = await startWebhookReceiver();
  const [a, b] = await cluster(hooks);
  try {
    const room = await subscribed<PresenceChannel>(member(b, 'olga'), 'presence-rolling');
    const { seen } = watch(room);
    const mia = member(a, 'mia');
    await subscribed(mia, 'presence-rolling');
    await until(() => seen.includes('added mia'), 'the observer sees mia');
    await hooks.event((e) => e.name === 'member_added' && e.user_id === 'mia', 'member_added webhook for mia');
    seen.length = 0;
    // As pusher-js behind a load balancer: on the 4200 close mia reconnects at once, to node B.
    let back: Promise<PresenceChannel> | undefined;
    mia.connection.bind('state_change', (s: { current: string }) => {
      if (s.current !== 'connecting' || back !== undefined) return;
      mia.disconnect();
      back = subscribed<PresenceChannel>(member(b, 'mia'), 'presence-rolling');
    });
    const nodeA = (a.app.adapter as RedisAdapter).nodeId;
    const drained = a.app.drain(new Deadline(SHUTDOWN_TIMEOUT_MS));
    await until(() => back !== undefined, 'mia closed with 4200');
    const again = await back!;
    assert.deepEqual((await drained).timedOut, []);
    await marker(b, room, 'presence-rolling');
    assert.deepEqual(seen, [], 'the observer saw mia neither leave nor join');
    assert.deepEqual(Object.keys(room.members.members).sort(), ['mia', 'olga']);
    assert.deepEqual(Object.keys(again.members.members).sort(), ['mia', 'olga']);
    // Webhooks, cluster-wide: mia was added once (her first join) and never removed.
    const mias = hooks.events().filter((e) => 'user_id' in e && e.user_id === 'mia').map((e) => e.name);
    assert.deepEqual(mias, ['member_added']);
    assert.deepEqual(await client.hgetall(keys.channel(APP.id, 'presence-rolling').users), { mia: '1', olga: '1' });
    await assertGone(nodeA, 'presence-rolling');
  } finally {
    await Promise.all([a.close(), b.close()]);
    await hooks.close();
  }
});

test('a member that does not come back within the grace is removed at its end, once; the drained node leaves nothing in Redis', async () => {
  const hooks = await startWebhookReceiver();
  const [a, b] = await cluster(hooks);
  try {
    const room = await subscribed<PresenceChannel>(member(b, 'olga'), 'presence-gone');
    const { seen, at } = watch(room);
    const nora = member(a, 'nora');
    await subscribed(nora, 'presence-gone');
    await until(() => seen.includes('added nora'), 'the observer sees nora');
    let closedAt: number | undefined;
    nora.connection.bind('state_change', (s: { current: string }) => {
      if (s.current !== 'connecting' || closedAt !== undefined) return;
      closedAt = performance.now();
      nora.disconnect(); // she does not come back
    });
    const nodeA = (a.app.adapter as RedisAdapter).nodeId;
    const drained = a.app.drain(new Deadline(SHUTDOWN_TIMEOUT_MS));
    await until(() => seen.includes('removed nora'), 'member_removed for nora', SHUTDOWN_TIMEOUT_MS);
    assert.deepEqual((await drained).timedOut, []);
    const grace = leaveGraceMs(SHUTDOWN_TIMEOUT_MS);
    const waited = at.get('removed nora')! - closedAt!;
    assert.ok(waited >= grace * 0.8, `member_removed came ${waited.toFixed(0)} ms after the close, before the ${grace} ms grace`);
    await marker(b, room, 'presence-gone');
    assert.deepEqual(seen, ['added nora', 'removed nora']);
    assert.deepEqual(Object.keys(room.members.members), ['olga']);
    // The drained node's webhook sender sent it before closing: once in the cluster.
    const noras = hooks.events().filter((e) => 'user_id' in e && e.user_id === 'nora').map((e) => e.name);
    assert.deepEqual(noras, ['member_added', 'member_removed']);
    await assertGone(nodeA, 'presence-gone');
  } finally {
    await Promise.all([a.close(), b.close()]);
    await hooks.close();
  }
});

test('a node with no other node serving holds no leave: its drain is not slowed by the grace', async () => {
  const hooks = await startWebhookReceiver();
  const env = { ADAPTER: 'redis', REDIS_URL: redis.url, APP_WEBHOOK_URL: hooks.url, SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS) };
  const a = await startServer({ ...env, NODE_ID: 'alone' });
  try {
    await until(() => a.app.adapter.status().up, 'node on Redis');
    const pia = member(a, 'pia');
    await subscribed(pia, 'presence-alone');
    pia.connection.bind('state_change', (s: { current: string }) => {
      if (s.current === 'connecting') pia.disconnect();
    });
    const nodeA = (a.app.adapter as RedisAdapter).nodeId;
    const result = await a.app.drain(new Deadline(SHUTDOWN_TIMEOUT_MS));
    assert.deepEqual(result.timedOut, []);
    const grace = leaveGraceMs(SHUTDOWN_TIMEOUT_MS);
    assert.ok(result.seconds * 1000 < grace, `the drain took ${(result.seconds * 1000).toFixed(0)} ms, the grace is ${grace} ms`);
    const pias = hooks.events().filter((e) => 'user_id' in e && e.user_id === 'pia').map((e) => e.name);
    assert.deepEqual(pias, ['member_added', 'member_removed']);
    await assertGone(nodeA, 'presence-alone');
  } finally {
    await a.close();
    await hooks.close();
  }
});

test('a node already draining is no place to reconnect: a whole cluster stopping holds no leave', async () => {
  const hooks = await startWebhookReceiver();
  const env = { ADAPTER: 'redis', REDIS_URL: redis.url, APP_WEBHOOK_URL: hooks.url, SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS) };
  const a = await startServer({ ...env, NODE_ID: 'first' });
  // B waits its SHUTDOWN_GRACE_MS before closing its clients: alive, beating, taking no one.
  const b = await startServer({ ...env, NODE_ID: 'second', SHUTDOWN_GRACE_MS: '3000' });
  try {
    await until(() => a.app.adapter.status().up && b.app.adapter.status().up, 'both nodes on Redis');
    await eventually(async () => (await client.exists(keys.node((b.app.adapter as RedisAdapter).nodeId))) === 1, 'node B beats');
    const quinn = member(a, 'quinn');
    await subscribed(quinn, 'presence-all');
    quinn.connection.bind('state_change', (s: { current: string }) => {
      if (s.current === 'connecting') quinn.disconnect();
    });
    await subscribed(member(b, 'rex'), 'presence-all');
    const bDrained = b.app.drain(new Deadline(SHUTDOWN_TIMEOUT_MS));
    await eventually(async () => (await client.exists(keys.draining((b.app.adapter as RedisAdapter).nodeId))) === 1, 'B marked draining');
    const result = await a.app.drain(new Deadline(SHUTDOWN_TIMEOUT_MS));
    const grace = leaveGraceMs(SHUTDOWN_TIMEOUT_MS);
    assert.ok(result.seconds * 1000 < grace, `A's drain took ${(result.seconds * 1000).toFixed(0)} ms, the grace is ${grace} ms`);
    assert.deepEqual((await bDrained).timedOut, []);
  } finally {
    await Promise.all([a.close(), b.close()]);
    await hooks.close();
  }
});
