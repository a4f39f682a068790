/**
 * Presence with real pusher-js clients: member_added only on a user's first connection and never to the joiner,
 * member_removed only when the user's last connection leaves, `me` and `members.count` on every tab.
 * "Did not arrive" is proven with a marker event triggered afterwards: frames on one socket arrive in order. A raw socket
 * switching users while its join is under way ends as the last user it subscribed as, on either engine.
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { test } from 'node:test';
import type Pusher from 'pusher';
import { channelAuthString, sign } from '../../src/protocol/signatures.js';
import { authOptions } from '../helpers/auth.js';
import { names, nextEvent, record, subscribed, type Recorded } from '../helpers/pusher-events.js';
import type { PresenceChannel, PusherClient } from '../helpers/pusher-js.js';
import { RawClient } from '../helpers/raw-client.js';
import { startRedis } from '../helpers/redis.js';
import { APP, startServer, type TestServer } from '../helpers/server.js';

const ROOM = 'presence-room';

function tab(server: TestServer, sdk: Pusher, userId: string, name: string): PusherClient {
  return server.client(authOptions(sdk, { presence: { user_id: userId, user_info: { name } } }));
}

/** Triggers a marker on the room and waits until every given channel has received it. */
async function barrier(sdk: Pusher, channels: PresenceChannel[], n: number): Promise<void> {
  const arrived = channels.map((c) => nextEvent(c, 'marker'));
  await sdk.trigger(ROOM, 'marker', { n });
  await Promise.all(arrived);
}

function memberEvents(events: Recorded[]): string[] {
  return names(events).filter((n) => n === 'pusher:member_added' || n === 'pusher:member_removed');
}

test('two users, several tabs: member_added on first connection only, member_removed on last only', async () => {
  const server = await startServer();
  try {
    const sdk = server.sdk();
    const bob = await subscribed<PresenceChannel>(tab(server, sdk, 'bob', 'Bob'), ROOM);
    const bobEvents = record(bob);
    assert.equal(bob.members.count, 1);

    // Alice's first tab: Bob hears member_added with her info; the joiner hears nothing about herself.
    const added = nextEvent<{ id: string; info: unknown }>(bob, 'pusher:member_added');
    const aliceTab1Client = tab(server, sdk, 'alice', 'Alice');
    const alice1 = await subscribed<PresenceChannel>(aliceTab1Client, ROOM);
    const alice1Events = record(alice1);
    assert.deepEqual(await added, { id: 'alice', info: { name: 'Alice' } });
    assert.equal(alice1.members.count, 2);
    assert.deepEqual(alice1.members.me, { id: 'alice', info: { name: 'Alice' } });
    assert.deepEqual(alice1.members.get('bob'), { id: 'bob', info: { name: 'Bob' } });

    // Alice's second tab: nobody hears member_added again, and the count stays at two users.
    const aliceTab2Client = tab(server, sdk, 'alice', 'Alice');
    const alice2 = await subscribed<PresenceChannel>(aliceTab2Client, ROOM);
    const alice2Events = record(alice2);
    assert.equal(alice2.members.count, 2);
    assert.equal(alice2.members.me.id, 'alice');
    await barrier(sdk, [bob, alice1, alice2], 1);
    assert.deepEqual(memberEvents(bobEvents), ['pusher:member_added']);
    assert.deepEqual(memberEvents(alice1Events), []);
    assert.deepEqual(memberEvents(alice2Events), []);
    assert.equal(bob.members.count, 2);

    // Alice closes one tab: she is still present, nobody hears member_removed.
    aliceTab1Client.disconnect();
    await barrier(sdk, [bob, alice2], 2);
    assert.deepEqual(memberEvents(bobEvents), ['pusher:member_added']);
    assert.equal(bob.members.count, 2);

    // Her last tab goes: Bob hears member_removed once.
    const removed = nextEvent<{ id: string }>(bob, 'pusher:member_removed');
    aliceTab2Client.disconnect();
    assert.equal((await removed).id, 'alice');
    await barrier(sdk, [bob], 3);
    assert.deepEqual(memberEvents(bobEvents), ['pusher:member_added', 'pusher:member_removed']);
    assert.equal(bob.members.count, 1);
    assert.equal(bob.members.me.id, 'bob');
  } finally {
    await server.close();
  }
});

test('unsubscribing (not only disconnecting) removes the member', async () => {
  const server = await startServer();
  try {
    const sdk = server.sdk();
    const bob = await subscribed<PresenceChannel>(tab(server, sdk, 'bob', 'Bob'), ROOM);
    const carolClient = tab(server, sdk, 'carol', 'Carol');
    const added = nextEvent(bob, 'pusher:member_added');
    await subscribed(carolClient, ROOM);
    await added;
    const removed = nextEvent<{ id: string; info: unknown }>(bob, 'pusher:member_removed');
    carolClient.unsubscribe(ROOM);
    assert.deepEqual(await removed, { id: 'carol', info: { name: 'Carol' } });
    assert.equal(bob.members.count, 1);
  } finally {
    await server.close();
  }
});

test('numeric user ids in channel_data are members as strings', async () => {
  const server = await startServer();
  try {
    const sdk = server.sdk();
    // The SDK's own types say string, but the reference's vector signs `"user_id":10`, as PHP backends send it.
    await subscribed(
      server.client(authOptions(sdk, { presence: { user_id: 10 as unknown as string, user_info: { name: 'Mr. Channels' } } })),
      ROOM,
    );
    const second = await subscribed<PresenceChannel>(tab(server, sdk, 'x', 'X'), ROOM);
    assert.equal(second.members.count, 2);
    assert.deepEqual(second.members.get('10'), { id: '10', info: { name: 'Mr. Channels' } });
  } finally {
    await server.close();
  }
});

for (const engine of ['local', 'redis'] as const) {
  test(`${engine}: a socket that switches users in one write (unsubscribe, subscribe as v, unsubscribe, subscribe as w) is w`, async () => {
    const redis = engine === 'redis' ? await startRedis() : undefined;
    const server = await startServer(redis === undefined ? {} : { ADAPTER: 'redis', REDIS_URL: redis.url });
    try {
      const client = await RawClient.presenceMember(server.port, ROOM, 'x');
      const first = await client.next('pusher_internal:subscription_succeeded');
      const socketId = (client.all('pusher:connection_established')[0]!.data as { socket_id: string }).socket_id;
      const as = (user: string) => {
        const channelData = JSON.stringify({ user_id: user });
        const auth = `${APP.key}:${sign(APP.secret, channelAuthString(socketId, ROOM, channelData))}`;
        return { event: 'pusher:subscribe', data: { channel: ROOM, auth, channel_data: channelData } };
      };
      const unsubscribe = { event: 'pusher:unsubscribe', data: { channel: ROOM } };
      // One TCP write, so the server reads the four frames at once: v's join is under way when w's subscribe comes.
      const socket = (client.ws as unknown as { _socket: Socket })._socket;
      socket.cork();
      for (const frame of [unsubscribe, as('v'), unsubscribe, as('w')]) client.send(frame);
      socket.uncork();
      const answer = await client.next((f) => f.event === 'pusher_internal:subscription_succeeded' && f !== first);
      // Before: v's cancelled join was taken up again, and w's subscribe was answered with v in the list.
      assert.deepEqual((answer.data as { presence: { ids: string[] } }).presence.ids, ['w']);
      const users = (await (await server.sdk().get({ path: `/channels/${ROOM}/users` })).json()) as { users: { id: string }[] };
      assert.deepEqual(users.users, [{ id: 'w' }]);
      await client.close();
    } finally {
      await server.close();
      await redis?.stop();
    }
  });
}
