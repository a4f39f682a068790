/**
 * A subscription made while Redis cannot record it is tried again (`SUBSCRIBE_RETRY_MS`, 20 s by default) and answered
 * once Redis is back, instead of refused with 503 at once: pusher-js never subscribes again after a refusal, so a client
 * that subscribed during a Redis restart or failover stayed off the channel for good. On a real Redis, both ways it fails:
 * stopped (the engine down: the join is refused at once) and frozen (the join's command times out, and the engine takes
 * it back with a leave, which must not remove the retried join).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { channelAuthString, sign } from '../../src/protocol/signatures.js';
import { loggedOnce, logLines } from '../helpers/logs.js';
import { RawClient } from '../helpers/raw-client.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';
import { APP, startServer, type TestServer } from '../helpers/server.js';
import { signedFetch } from '../helpers/signed-fetch.js';
import { eventually, until } from '../helpers/wait.js';

const ROOM = 'presence-room';

/** Subscribes `user` to ROOM on a fresh connection, signed as the backend would. */
async function subscribeMember(server: TestServer, user: string): Promise<RawClient> {
  const { client, socketId } = await RawClient.established(server.port);
  client.answerPings();
  const channelData = JSON.stringify({ user_id: user });
  const auth = `${APP.key}:${sign(APP.secret, channelAuthString(socketId, ROOM, channelData))}`;
  client.send({ event: 'pusher:subscribe', data: { channel: ROOM, auth, channel_data: channelData } });
  return client;
}

/** Users of ROOM as the HTTP API answers them. */
async function users(server: TestServer): Promise<unknown> {
  const answer = await signedFetch(server, 'GET', `/apps/${APP.id}/channels/${ROOM}/users`);
  return answer.body;
}

/**
 * u0 holds ROOM on the node; `outage` starts with Redis unable to record anything and resolves once it can again, and u1's
 * subscribe is made inside it. u0 makes the node hold the channel already, so a frozen Redis fails the join's script, not
 * its SUBSCRIBE (which waits, unanswered, for as long as Redis is frozen).
 */
async function subscribeThrough(
  outage: (redis: RedisServer, server: TestServer, subscribe: () => void) => Promise<void>,
): Promise<void> {
  const redis = await startRedis();
  const server = await startServer({ ADAPTER: 'redis', REDIS_URL: redis.url });
  let first: RawClient | undefined;
  let client: RawClient | undefined;
  try {
    await until(() => server.app.adapter.status().up, 'the cluster engine up', 10_000);
    first = await subscribeMember(server, 'u0');
    await first.next((f) => f.event === 'pusher_internal:subscription_succeeded');
    await outage(redis, server, () => {
      void subscribeMember(server, 'u1').then((c) => (client = c));
    });
    await until(() => client !== undefined, 'the subscriber connected', 10_000);
    const answer = await client!.next((f) => f.channel === ROOM, 15_000);
    // Before: pusher:subscription_error 503 at once, and nothing after it.
    assert.equal(answer.event, 'pusher_internal:subscription_succeeded', JSON.stringify(answer));
    assert.ok((answer.data as { presence: { ids: string[] } }).presence.ids.includes('u1'), JSON.stringify(answer.data));
    assert.deepEqual(client!.all('pusher:subscription_error'), []);
    const added = await first.next((f) => f.event === 'pusher_internal:member_added');
    assert.deepEqual(added.data, { user_id: 'u1', user_info: null });
    // Recorded in the cluster, and not taken back by the leave of an attempt that timed out (that leave ran before the
    // join that was answered). A Redis restarted empty gets u0 back from the node's next heartbeat.
    const both = { users: [{ id: 'u0' }, { id: 'u1' }] };
    await eventually(async () => JSON.stringify(await users(server)) === JSON.stringify(both), 'u0 and u1 in the cluster', 10_000, 100);
  } finally {
    await client?.close();
    await first?.close();
    await server.close();
    await redis.stop();
  }
}

test('a subscribe while Redis is down is answered once Redis is back, not refused', { timeout: 60_000 }, async () => {
  await subscribeThrough(async (redis, server, subscribe) => {
    await redis.stop();
    await until(() => !server.app.adapter.status().up, 'the cluster engine down', 10_000);
    subscribe();
    // Its frame was taken, and its join refused (the engine is down, so at once), before Redis comes back.
    await until(() => logLines(server, { event: 'message_received', kind: 'subscribe' }).length === 1, 'the subscribe read', 10_000);
    await redis.start();
  });
});

test('a subscribe whose join timed out in a frozen Redis is answered once Redis reads again', { timeout: 60_000 }, async () => {
  await subscribeThrough(async (redis, server, subscribe) => {
    redis.freeze(true);
    try {
      subscribe();
      // The join got no answer within the command timeout: the engine took it back (a leave, queued) and said so.
      await loggedOnce(server, { event: 'adapter_request_failed', op: 'join' });
    } finally {
      redis.freeze(false);
    }
  });
});
