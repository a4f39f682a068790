/**
 * A subscription made while Redis cannot record it is tried again (`SUBSCRIBE_RETRY_MS`, 20 s by default) and answered
 * once Redis is back, instead of refused with 503 at once: pusher-js never subscribes again after a refusal, so a client
 * that subscribed during a Redis restart or failover stayed off the channel for good. On a real Redis, both ways it fails:
 * stopped (the engine down: the join is refused at once) and frozen (the join's command times out and runs late, when
 * Redis reads again: its retry is answered what it changed, and the other members see the user added once).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Redis } from 'ioredis';
import { loggedOnce, logLines } from '../helpers/logs.js';
import { RawClient } from '../helpers/raw-client.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';
import { APP, startServer, type TestServer } from '../helpers/server.js';
import { signedFetch } from '../helpers/signed-fetch.js';
import { eventually, until } from '../helpers/wait.js';
import { startWebhookReceiver, type WebhookReceiver } from '../helpers/webhook-receiver.js';

const ROOM = 'presence-room';

/** Subscribes `user` to ROOM on a fresh connection, signed as the backend would. */
function subscribeMember(server: TestServer, user: string): Promise<RawClient> {
  return RawClient.presenceMember(server.port, ROOM, user);
}

/** Users of ROOM as the HTTP API answers them. */
async function users(server: TestServer): Promise<unknown> {
  const answer = await signedFetch(server, 'GET', `/apps/${APP.id}/channels/${ROOM}/users`);
  return answer.body;
}

/** What each case runs with: a Redis, a webhook receiver, a Beacon on both. */
interface Room {
  redis: RedisServer;
  hooks: WebhookReceiver;
  server: TestServer;
  /** Subscribes `user` to ROOM on a fresh connection (closed with the room). */
  member(user: string): Promise<RawClient>;
  /** u0, a member of ROOM from the start. */
  first: RawClient;
}

/**
 * Runs `body` with a Redis, a webhook receiver and a Beacon on them (`env` over the Redis adapter's), u0 already a member
 * of ROOM: the node holds the channel, so a frozen Redis fails a join's script, not its SUBSCRIBE (which waits,
 * unanswered, for as long as Redis is frozen). Everything is stopped after, the clients first.
 */
async function inRoom(env: Record<string, string>, body: (room: Room) => Promise<void>): Promise<void> {
  const redis = await startRedis();
  const hooks = await startWebhookReceiver();
  const server = await startServer({ ADAPTER: 'redis', REDIS_URL: redis.url, APP_WEBHOOK_URL: hooks.url, ...env });
  const clients: RawClient[] = [];
  const member = async (user: string): Promise<RawClient> => {
    const client = await subscribeMember(server, user);
    clients.push(client);
    return client;
  };
  try {
    await until(() => server.app.adapter.status().up, 'the cluster engine up', 10_000);
    const first = await member('u0');
    await first.next((f) => f.event === 'pusher_internal:subscription_succeeded');
    await hooks.event((e) => e.name === 'member_added' && e.user_id === 'u0', "u0's member_added webhook");
    await body({ redis, hooks, server, member, first });
  } finally {
    for (const client of clients) await client.close();
    await server.close();
    await hooks.close();
    await redis.stop();
  }
}

/**
 * `outage` starts with Redis unable to record anything and resolves once it can again, and u1's subscribe is made inside
 * it; u1 is then answered, recorded, announced once.
 */
async function subscribeThrough(outage: (redis: RedisServer, server: TestServer, subscribe: () => void) => Promise<void>): Promise<void> {
  await inRoom({}, async ({ redis, hooks, server, member, first }) => {
    let client: RawClient | undefined;
    await outage(redis, server, () => {
      void member('u1').then((c) => (client = c));
    });
    await until(() => client !== undefined, 'the subscriber connected', 10_000);
    const answer = await client!.next((f) => f.channel === ROOM, 15_000);
    // Before: pusher:subscription_error 503 at once, and nothing after it.
    assert.equal(answer.event, 'pusher_internal:subscription_succeeded', JSON.stringify(answer));
    assert.ok((answer.data as { presence: { ids: string[] } }).presence.ids.includes('u1'), JSON.stringify(answer.data));
    assert.deepEqual(client!.all('pusher:subscription_error'), []);
    const added = await first.next((f) => f.event === 'pusher_internal:member_added');
    assert.deepEqual(added.data, { user_id: 'u1', user_info: null });
    // Recorded in the cluster, and not taken back. A Redis restarted empty gets u0 back from the node's next heartbeat.
    const both = { users: [{ id: 'u0' }, { id: 'u1' }] };
    await eventually(async () => JSON.stringify(await users(server)) === JSON.stringify(both), 'u0 and u1 in the cluster', 10_000, 100);
    // Every member event of the join reached u0 before an event published after it (one channel's events arrive in
    // publish order): u1 was added once, never removed. Before, a join that timed out and ran late was taken back at
    // once: u0 saw u1 added, removed, and added again by the retry.
    const body = JSON.stringify({ name: 'after', channel: ROOM, data: '{}' });
    assert.equal((await signedFetch(server, 'POST', `/apps/${APP.id}/events`, { body })).status, 200);
    await first.next((f) => f.event === 'after');
    assert.deepEqual(
      first.frames.filter((f) => f.event.startsWith('pusher_internal:member_')).map((f) => `${f.event} ${JSON.stringify(f.data)}`),
      ['pusher_internal:member_added {"user_id":"u1","user_info":null}'],
    );
    // Its webhook once: emitted from the answer of the attempt that was answered, which says what the one that ran
    // changed (a join found already recorded answered nothing, and the webhook was lost).
    await hooks.event((e) => e.name === 'member_added' && e.user_id === 'u1', "u1's member_added webhook");
    assert.equal(hooks.events().filter((e) => e.name === 'member_added' && e.user_id === 'u1').length, 1);
  });
}

test('a subscribe while Redis is down is answered once Redis is back, not refused', { timeout: 60_000 }, async () => {
  await subscribeThrough(async (redis, server, subscribe) => {
    await redis.stop();
    await until(() => !server.app.adapter.status().up, 'the cluster engine down', 10_000);
    subscribe();
    // Its frame was taken, and its join refused (the engine is down, so at once), before Redis comes back.
    await until(() => logLines(server, { event: 'message_received', kind: 'subscribe' }).length === 2, 'the subscribe read', 10_000);
    await redis.start();
  });
});

test('a subscribe whose join timed out in a frozen Redis is answered once Redis reads again', { timeout: 60_000 }, async () => {
  await subscribeThrough(async (redis, server, subscribe) => {
    redis.freeze(true);
    try {
      subscribe();
      // The join got no answer within the command timeout (it runs once Redis reads again), and the engine said so.
      await loggedOnce(server, { event: 'adapter_request_failed', op: 'join' });
    } finally {
      redis.freeze(false);
    }
  });
});

test('a join given up while Redis is frozen (refused after the window, or its client gone) is taken out once Redis reads again', { timeout: 60_000 }, async () => {
  await inRoom({ SUBSCRIBE_RETRY_MS: '1500' }, async ({ redis, server, member, first }) => {
    redis.freeze(true);
    try {
      const refused = await member('u1');
      const gone = await member('u2');
      await until(() => logLines(server, { event: 'message_received', kind: 'subscribe' }).length === 3, 'both subscribes read', 10_000);
      await gone.close();
      const error = await refused.next('pusher:subscription_error', 10_000);
      assert.equal((error.data as { status: number }).status, 503);
      // Both joins were given up and their take-backs sent, and those timed out too: kept for a retry. Their joins ran
      // nowhere yet; they run when Redis reads again, before the take-backs.
      await until(() => server.app.adapter.status().pending >= 2, 'both take-backs kept for a retry', 10_000);
    } finally {
      redis.freeze(false);
    }
    await eventually(async () => JSON.stringify(await users(server)) === JSON.stringify({ users: [{ id: 'u0' }] }), 'only u0 left in the cluster', 10_000, 100);
    await until(() => server.app.adapter.status().pending === 0, 'the take-backs recorded', 10_000);
    // What the late joins and their take-backs published: each user added, then removed.
    for (const user of ['u1', 'u2']) {
      await first.next((f) => f.event === 'pusher_internal:member_removed' && (f.data as { user_id: string }).user_id === user);
      const story: string[] = first.frames
        .filter((f) => f.event.startsWith('pusher_internal:member_') && (f.data as { user_id: string }).user_id === user)
        .map((f) => f.event);
      assert.deepEqual(story, ['pusher_internal:member_added', 'pusher_internal:member_removed'], user);
    }
  });
});

test('a drain right after a join that timed out ran late leaves nothing of it in Redis, and announces nothing of it', { timeout: 60_000 }, async () => {
  // A review: the node drained while the join waited for its next try; its take-back came after the engine had closed,
  // and the join's hold on the node's channel index was already gone, so its own reap missed the channel: the member was
  // left in Redis for good (new joiners were listed it), and the channel never vacated.
  await inRoom({}, async ({ redis, hooks, server, member }) => {
    const probe = new Redis(redis.url);
    try {
      redis.freeze(true);
      try {
        await member('u1');
        await loggedOnce(server, { event: 'adapter_request_failed', op: 'join' });
      } finally {
        redis.freeze(false);
      }
      // The late join runs now; its retry waits for its next try (125-250 ms) while the node drains.
      await server.close();
      await hooks.event((e) => e.name === 'channel_vacated' && e.channel === ROOM, 'the room vacated');
      // Only the marks of the vacate and removal the shutdown sent (the cluster confirmed them: other nodes' occupies
      // read them), each expiring on its own; no member, count or index entry of the room.
      const keys = await probe.keys(`*${ROOM}*`);
      assert.deepEqual(keys.filter((k) => !/:gone(:[^:]+)?$/.test(k)), []);
      for (const key of keys) assert.ok((await probe.pttl(key)) > 0, `${key} expires`);
      assert.deepEqual(
        hooks.events().filter((e) => 'user_id' in e && e.user_id === 'u1').map((e) => e.name),
        [],
        'u1 was never answered: no webhook of it',
      );
    } finally {
      probe.disconnect();
    }
  });
});

test("a join given up whose take-back empties what another connection's announced join made: member_removed and channel_vacated go out", { timeout: 60_000 }, async () => {
  // A review: u1 on B (announced), u1's second connection A joins while Redis is frozen (its join runs late), B leaves
  // (which changes nothing while A's late record stands), A gives up: its take-back removed u1 and vacated the room, and
  // no webhook said so — the receiver kept the room occupied and u1 present for good. u0 leaves first: the room is u1's.
  await inRoom({ WEBHOOK_VACATE_DELAY_MS: '0' }, async ({ redis, hooks, server, member, first }) => {
    first.send({ event: 'pusher:unsubscribe', data: { channel: ROOM } });
    await hooks.event((e) => e.name === 'channel_vacated' && e.channel === ROOM, 'the room vacated by u0');
    const b = await member('u1');
    await b.next((f) => f.event === 'pusher_internal:subscription_succeeded');
    await hooks.event((e) => e.name === 'member_added' && e.user_id === 'u1', "u1's member_added webhook");
    redis.freeze(true);
    try {
      const a = await member('u1');
      await loggedOnce(server, { event: 'adapter_request_failed', op: 'join' });
      // B's leave, then A's take-back, each sent behind the late join (all run in that order once Redis reads again).
      b.send({ event: 'pusher:unsubscribe', data: { channel: ROOM } });
      a.send({ event: 'pusher:unsubscribe', data: { channel: ROOM } });
      await until(() => logLines(server, { event: 'message_received', kind: 'unsubscribe' }).length === 3, 'both unsubscribes read', 10_000);
    } finally {
      redis.freeze(false);
    }
    await until(() => hooks.events().filter((e) => e.name === 'channel_vacated').length === 2, 'the room vacated again', 10_000);
    const story = hooks.events().filter((e) => 'channel' in e && e.channel === ROOM).map((e) => `${e.name} ${'user_id' in e ? String(e.user_id) : ''}`);
    assert.deepEqual(story.slice(-4), ['channel_occupied ', 'member_added u1', 'member_removed u1', 'channel_vacated ']);
  });
});
