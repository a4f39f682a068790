/**
 * Two Beacon nodes sharing one real redis-server (ADAPTER=redis): a publication on one node reaches clients of the other,
 * presence queries answer for the cluster, a crashed node is reaped (member_removed for its users), and a Redis outage makes nodes unready
 * without crashing them. Node B of the crash case is a real child process killed with SIGKILL.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import Pusher from 'pusher';
import { authOptions } from '../helpers/auth.js';
import { spawnBeacon } from '../helpers/beacon-process.js';
import { nextEvent, signedIn, subscribed } from '../helpers/pusher-events.js';
import { localClient, type PresenceChannel } from '../helpers/pusher-js.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';
import { sign, userAuthString } from '../../src/protocol/signatures.js';
import { RawClient } from '../helpers/raw-client.js';
import { APP, startServer, type TestServer } from '../helpers/server.js';
import { until, within } from '../helpers/wait.js';
import { startWebhookReceiver } from '../helpers/webhook-receiver.js';

let redis: RedisServer;
before(async () => {
  redis = await startRedis();
});
after(async () => {
  await redis?.stop();
});

async function node(id: string, url = redis.url): Promise<TestServer> {
  const server = await startServer({ ADAPTER: 'redis', REDIS_URL: url, NODE_ID: id });
  await until(() => server.app.adapter.status().up, `node ${id} connected to Redis`);
  return server;
}

async function userIds(sdk: Pusher, channel: string): Promise<string[]> {
  const response = await sdk.get({ path: `/channels/${channel}/users` });
  const body = (await response.json()) as { users: { id: string }[] };
  return body.users.map((u) => u.id).sort();
}

async function readyz(server: TestServer): Promise<{ status: number; up: boolean }> {
  const response = await fetch(`http://127.0.0.1:${server.port}/readyz`);
  const body = (await response.json()) as { checks: { adapter: { up: boolean } } };
  return { status: response.status, up: body.checks.adapter.up };
}

test('an event triggered through node A reaches a pusher-js client on node B', async () => {
  const a = await node('a');
  const b = await node('b');
  try {
    const channel = await subscribed(b.client(), 'news');
    const event = nextEvent(channel, 'headline');
    await a.sdk().trigger('news', 'headline', { n: 1 });
    assert.deepEqual(await event, { n: 1 });
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});

test('presence members on two nodes: both nodes list both users; counts add up', async () => {
  const a = await node('a');
  const b = await node('b');
  try {
    const sdkA = a.sdk();
    const sdkB = b.sdk();
    await subscribed(a.client(authOptions(sdkA, { presence: { user_id: 'alice', user_info: {} } })), 'presence-room');
    const bob = await subscribed<PresenceChannel>(
      b.client(authOptions(sdkB, { presence: { user_id: 'bob', user_info: {} } })),
      'presence-room',
    );
    // Bob joined second, on the other node: his subscription_succeeded already lists Alice.
    assert.equal(bob.members.count, 2);
    assert.deepEqual(await userIds(sdkA, 'presence-room'), ['alice', 'bob']);
    assert.deepEqual(await userIds(sdkB, 'presence-room'), ['alice', 'bob']);
    const info = await sdkA.get({ path: '/channels/presence-room', params: { info: 'user_count,subscription_count' } });
    assert.deepEqual(await info.json(), { occupied: true, user_count: 2, subscription_count: 2 });
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});

test('a user on two nodes: one member_added, no member_removed while one connection stays, one when the last leaves', async () => {
  const hooks = await startWebhookReceiver();
  const env = { APP_WEBHOOK_URL: hooks.url, WEBHOOK_VACATE_DELAY_MS: '0', WEBHOOK_BATCH_MS: '5' };
  const a = await startServer({ ADAPTER: 'redis', REDIS_URL: redis.url, NODE_ID: 'pa', ...env });
  const b = await startServer({ ADAPTER: 'redis', REDIS_URL: redis.url, NODE_ID: 'pb', ...env });
  try {
    await until(() => a.app.adapter.status().up && b.app.adapter.status().up, 'both nodes on Redis');
    const sdk = a.sdk();
    const watcher = await subscribed<PresenceChannel>(
      a.client(authOptions(sdk, { presence: { user_id: 'watcher', user_info: {} } })),
      'presence-two',
    );
    const seen: string[] = [];
    watcher.bind('pusher:member_added', (m: { id: string }) => seen.push(`+${m.id}`));
    watcher.bind('pusher:member_removed', (m: { id: string }) => seen.push(`-${m.id}`));
    const daveA = a.client(authOptions(sdk, { presence: { user_id: 'dave', user_info: {} } }));
    const daveB = b.client(authOptions(b.sdk(), { presence: { user_id: 'dave', user_info: {} } }));
    await subscribed(daveA, 'presence-two');
    await subscribed(daveB, 'presence-two');
    await until(() => seen.length >= 1, 'dave added');
    daveA.unsubscribe('presence-two');
    // The count drops to 2 subscriptions once A recorded the leave: no member_removed may have gone out by then.
    const deadline = Date.now() + 3000;
    for (;;) {
      const info = await sdk.get({ path: '/channels/presence-two', params: { info: 'subscription_count' } });
      if (((await info.json()) as { subscription_count: number }).subscription_count === 2) break;
      if (Date.now() > deadline) assert.fail('the leave on node A was never counted');
    }
    daveB.unsubscribe('presence-two');
    await until(() => seen.length >= 2, 'dave removed');
    assert.deepEqual(seen, ['+dave', '-dave']);
    await hooks.event((e) => e.name === 'member_removed' && 'user_id' in e && e.user_id === 'dave', 'member_removed webhook');
    const daves = hooks.events().filter((e) => 'user_id' in e && e.user_id === 'dave').map((e) => e.name);
    assert.deepEqual(daves, ['member_added', 'member_removed']);
    assert.deepEqual(hooks.events().filter((e) => e.name === 'channel_occupied').length, 1);
  } finally {
    await Promise.all([a.close(), b.close()]);
    await hooks.close();
  }
});

/** The app opts in to subscription_count (off by default, as in Pusher). */
const COUNTED = { APP_ENABLE_SUBSCRIPTION_COUNT: 'true' };

test('subscription_count and MAX_PRESENCE_MEMBERS are the cluster’s', async () => {
  const a = await startServer({ ...COUNTED, ADAPTER: 'redis', REDIS_URL: redis.url, NODE_ID: 'ca', MAX_PRESENCE_MEMBERS: '2' });
  const b = await startServer({ ...COUNTED, ADAPTER: 'redis', REDIS_URL: redis.url, NODE_ID: 'cb', MAX_PRESENCE_MEMBERS: '2' });
  try {
    await until(() => a.app.adapter.status().up && b.app.adapter.status().up, 'both nodes on Redis');
    const first = await subscribed(a.client(), 'counted');
    const counts: number[] = [];
    first.bind('pusher:subscription_count', (d: { subscription_count: number }) => counts.push(d.subscription_count));
    await subscribed(b.client(), 'counted');
    await until(() => counts.includes(2), 'the count of the cluster (2) on node A');
    await subscribed(a.client(authOptions(a.sdk(), { presence: { user_id: 'p1', user_info: {} } })), 'presence-small');
    await subscribed(b.client(authOptions(b.sdk(), { presence: { user_id: 'p2', user_info: {} } })), 'presence-small');
    const third = b.client(authOptions(b.sdk(), { presence: { user_id: 'p3', user_info: {} } }));
    await assert.rejects(subscribed(third, 'presence-small'), /LimitReached|403/);
    // A user already present still joins from either node.
    await subscribed(a.client(authOptions(a.sdk(), { presence: { user_id: 'p2', user_info: {} } })), 'presence-small');
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});

test('subscribers joining at once on two nodes each end on the cluster’s count, never on an older one arriving late', async () => {
  const a = await startServer({ ...COUNTED, ADAPTER: 'redis', REDIS_URL: redis.url, NODE_ID: 'sa' });
  const b = await startServer({ ...COUNTED, ADAPTER: 'redis', REDIS_URL: redis.url, NODE_ID: 'sb' });
  const clients: RawClient[] = [];
  try {
    await until(() => a.app.adapter.status().up && b.app.adapter.status().up, 'both nodes on Redis');
    for (let round = 0; round < 3; round++) {
      const channel = `stampede-${round}`;
      const joining: RawClient[] = [];
      for (let i = 0; i < 12; i++) joining.push((await RawClient.established((i % 2 === 0 ? a : b).port)).client);
      clients.push(...joining);
      await Promise.all(
        joining.map(async (client) => {
          client.send({ event: 'pusher:subscribe', data: { channel } });
          await client.next((f) => f.event === 'pusher_internal:subscription_succeeded' && f.channel === channel);
        }),
      );
      // Every count was published before this marker, on the channel's one ordered stream: each node has them all by then.
      await a.sdk().trigger(channel, 'marker', {});
      for (const client of joining) {
        await client.next((f) => f.event === 'marker' && f.channel === channel);
        const counts = client.frames
          .filter((f) => f.event === 'pusher_internal:subscription_count' && f.channel === channel)
          .map((f) => (f.data as { subscription_count: number }).subscription_count);
        // Before: a joiner got its own count from its join's answer, then older counts still in flight through Redis
        // (`12, 1, 2, …, 11`), and kept the last (found by an outside probe: every run of 12).
        assert.equal(counts.at(-1), 12, `a subscriber's counts: ${counts.join(',')}`);
      }
    }
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await Promise.all([a.close(), b.close()]);
  }
});

test('subscription_count webhooks are the cluster’s: each count goes out once, from the node whose change published it', async () => {
  const hooks = await startWebhookReceiver();
  // Each node's webhook carries its name in a header: the receiver tells which node sent each count.
  const env = (name: string) => ({
    ...COUNTED,
    ADAPTER: 'redis',
    REDIS_URL: redis.url,
    NODE_ID: `count-${name}`,
    APP_WEBHOOKS: JSON.stringify([{ url: hooks.url, eventTypes: ['subscription_count'], headers: { 'X-Node': name } }]),
    WEBHOOK_BATCH_MS: '5',
  });
  const nodes: TestServer[] = [];
  const sent = () =>
    hooks.requests.flatMap((r) =>
      r.body.events.map((e) => [r.headers['x-node'], e.name === 'subscription_count' ? e.subscription_count : e.name]),
    );
  // Each change's count has arrived before the next change is made.
  const change = async (what: string, make: () => Promise<unknown>) => {
    const before = sent().length;
    await make();
    await until(() => sent().length > before, `the count of ${what}`);
  };
  try {
    for (const name of ['a', 'b']) nodes.push(await startServer(env(name)));
    const [a, b] = nodes as [TestServer, TestServer];
    await until(() => a.app.adapter.status().up && b.app.adapter.status().up, 'both nodes on Redis');
    const [a1, a2, b1] = [a.client(), a.client(), b.client()];
    await change('a subscribe on A', () => subscribed(a1, 'tally'));
    await change('a subscribe on B', () => subscribed(b1, 'tally'));
    await change('another subscribe on A', () => subscribed(a2, 'tally'));
    await change('an unsubscribe on B', async () => b1.unsubscribe('tally'));
    await change('a connection closed on A', async () => a1.disconnect());
  } finally {
    await Promise.all(nodes.map((n) => n.close()));
    await hooks.close();
  }
  // The drain closed A's last client (the channel was vacated: no count) and sent whatever was queued: nothing else came.
  assert.deepEqual(sent(), [
    ['a', 1],
    ['b', 2],
    ['a', 3],
    ['b', 2],
    ['a', 1],
  ]);
});

test('a crashed node (SIGKILL) is reaped: its members get member_removed and leave the answers within the bound', async () => {
  const a = await node('a');
  const b = await spawnBeacon({ ADAPTER: 'redis', REDIS_URL: redis.url, NODE_ID: 'b-process' });
  const carol = localClient(b.port, APP.key, authOptions(a.sdk(), { presence: { user_id: 'carol', user_info: {} } }));
  try {
    const sdk = a.sdk();
    const alice = await subscribed<PresenceChannel>(
      a.client(authOptions(sdk, { presence: { user_id: 'alice', user_info: {} } })),
      'presence-room',
    );
    const removed: string[] = [];
    alice.bind('pusher:member_removed', (m: { id: string }) => removed.push(m.id));
    await subscribed(carol, 'presence-room');
    await until(() => alice.members.count === 2, 'alice sees carol');
    assert.deepEqual(await userIds(sdk, 'presence-room'), ['alice', 'carol']);
    const killedAt = Date.now();
    await b.stop('SIGKILL');
    carol.disconnect();
    // Node TTL 5 s, checked every 1.7 s: the survivor reaps within 7 s (docs/scaling.md); 9 s leaves room for a busy machine.
    await until(() => removed.length > 0, 'member_removed for the crashed node’s user', 9000);
    assert.ok(Date.now() - killedAt < 9000);
    assert.deepEqual(removed, ['carol']);
    assert.deepEqual(await userIds(sdk, 'presence-room'), ['alice']);
    // The reap's script publishes member_removed; its line is written once the reap is over (the node unlisted, its
    // indexes deleted), a few round trips later: waited for, not assumed already there.
    await until(() => a.logs.some((l) => l.event === 'node_reaped'), 'the node_reaped line');
    const reaped = a.logs.filter((l) => l.event === 'node_reaped');
    assert.equal(reaped.length, 1);
    assert.equal((reaped[0] as { members_removed?: number }).members_removed, 1);
  } finally {
    carol.disconnect();
    await b.stop('SIGKILL');
    await a.close();
  }
});

test('a node drained by SIGTERM records its clients’ leaves: member_removed and channel_vacated webhooks go out before it exits', async () => {
  const hooks = await startWebhookReceiver();
  const b = await spawnBeacon({ ADAPTER: 'redis', REDIS_URL: redis.url, NODE_ID: 'drained', APP_WEBHOOK_URL: hooks.url });
  const sdk = new Pusher({ appId: APP.id, key: APP.key, secret: APP.secret, host: '127.0.0.1', port: String(b.port), useTLS: false });
  const erin = localClient(b.port, APP.key, authOptions(sdk, { presence: { user_id: 'erin', user_info: {} } }));
  try {
    await subscribed(erin, 'presence-drain');
    await hooks.event((e) => e.name === 'member_added', 'member_added webhook');
    erin.connection.bind('state_change', (s: { current: string }) => {
      if (s.current === 'connecting') erin.disconnect();
    });
    assert.equal(await b.stop('SIGTERM'), 0);
    const names = hooks.events().map((e) => e.name).sort();
    assert.deepEqual(names, ['channel_occupied', 'channel_vacated', 'member_added', 'member_removed']);
  } finally {
    erin.disconnect();
    await b.stop('SIGKILL');
    await hooks.close();
  }
});

test('watchlist across nodes: online on a user’s first connection in the cluster, offline on its last; the sign-in list is the cluster’s', async () => {
  const a = await node('wa');
  const b = await node('wb');
  const signedIn = async (port: number, user: Record<string, unknown>): Promise<RawClient> => {
    const { client, socketId } = await RawClient.established(port);
    const userData = JSON.stringify(user);
    client.send({
      event: 'pusher:signin',
      data: { auth: `${APP.key}:${sign(APP.secret, userAuthString(socketId, userData))}`, user_data: userData },
    });
    await client.next('pusher:signin_success');
    return client;
  };
  const events = (client: RawClient): unknown[] =>
    client.all('pusher_internal:watchlist_events').map((f) => (f.data as { events: unknown[] }).events);
  try {
    const carol = await signedIn(b.port, { id: 'carol' });
    const alice = await signedIn(a.port, { id: 'alice', watchlist: ['bob', 'carol'] });
    await alice.next('pusher_internal:watchlist_events');
    const bobB = await signedIn(b.port, { id: 'bob' });
    await until(() => events(alice).length === 2, 'bob online');
    const bobA = await signedIn(a.port, { id: 'bob' }); // a second connection, on the other node: no event
    await bobB.close(); // bob is still signed in on node A
    await bobA.close(); // the last one: offline
    await until(() => events(alice).length === 3, 'bob offline');
    // If this fails with an early extra frame, the adapter lines say whether a node's engine went down around a sign-in.
    const adapterLines = (s: TestServer): unknown[] => s.logs.filter((l) => String(l.event).startsWith('adapter'));
    const context = `adapter lines: A ${JSON.stringify(adapterLines(a))}, B ${JSON.stringify(adapterLines(b))}`;
    assert.deepEqual(events(alice), [
      [
        { name: 'online', user_ids: ['carol'] },
        { name: 'offline', user_ids: ['bob'] },
      ],
      [{ name: 'online', user_ids: ['bob'] }],
      [{ name: 'offline', user_ids: ['bob'] }],
    ], context);
    await Promise.all([alice.close(), carol.close()]);
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});

test('user ids with |, :, spaces, braces and non-ASCII cross nodes: sendToUser, watchlist and terminate through Redis', async () => {
  const a = await node('ua');
  const b = await node('ub');
  try {
    const sdk = a.sdk();
    const ids = ['auth0|5f7c8ec7', 'user:42', 'a b', '{tag}x', 'ü😀'];
    // A watcher on node A; each user signs in with pusher-js on node B.
    const { client: watcher, socketId } = await RawClient.established(a.port);
    const userData = JSON.stringify({ id: 'watcher', watchlist: ids });
    watcher.send({
      event: 'pusher:signin',
      data: { auth: `${APP.key}:${sign(APP.secret, userAuthString(socketId, userData))}`, user_data: userData },
    });
    await watcher.next('pusher_internal:watchlist_events');
    const online = (): string[] =>
      watcher
        .all('pusher_internal:watchlist_events')
        .flatMap((f) => (f.data as { events: { name: string; user_ids: string[] }[] }).events)
        .filter((e) => e.name === 'online')
        .flatMap((e) => e.user_ids);
    for (const id of ids) {
      const client = b.client(authOptions(b.sdk(), { user: { id } }));
      await signedIn(client);
      await until(() => online().includes(id), `${id} online on node A`);
      const received = nextEvent(client.user, 'notice');
      assert.equal((await sdk.sendToUser(id, 'notice', { id })).status, 200, id);
      assert.deepEqual(await received, { id });
      const gone = nextEvent(client.connection, 'disconnected');
      assert.equal((await sdk.terminateUserConnections(id)).status, 200, id);
      await gone;
    }
    await watcher.close();
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});

test('APP_MAX_CONNECTIONS is the cluster’s: a second node refuses what the first would (4004); room again after a close', async () => {
  const a = await startServer({ ADAPTER: 'redis', REDIS_URL: redis.url, NODE_ID: 'qa', APP_MAX_CONNECTIONS: '2' });
  const b = await startServer({ ADAPTER: 'redis', REDIS_URL: redis.url, NODE_ID: 'qb', APP_MAX_CONNECTIONS: '2' });
  try {
    await until(() => a.app.adapter.status().up && b.app.adapter.status().up, 'both nodes on Redis');
    const first = await RawClient.established(a.port);
    const second = await RawClient.established(b.port);
    const third = await RawClient.connect(b.port);
    const error = await third.next('pusher:error');
    assert.equal((error.data as { code: number }).code, 4004);
    assert.equal((await third.waitClosed()).code, 4004);
    await first.client.close();
    // Room again once the cluster counted the close (the close is recorded in Redis asynchronously).
    const deadline = Date.now() + 3000;
    for (;;) {
      const again = await RawClient.connect(a.port);
      const frame = await again.next((f) => f.event === 'pusher:connection_established' || f.event === 'pusher:error');
      if (frame.event === 'pusher:connection_established') {
        await again.close();
        break;
      }
      await again.waitClosed();
      if (Date.now() > deadline) assert.fail('no room after a connection closed');
    }
    await second.client.close();
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});

test('Redis down: readiness 503 and the adapter down, publishes refused with 503 without crashing; Redis back: ready again', async () => {
  const own = await startRedis();
  const a = await node('a', own.url);
  try {
    assert.deepEqual(await readyz(a), { status: 200, up: true });
    await own.stop();
    await until(() => !a.app.adapter.status().up, 'adapter down');
    assert.deepEqual(await readyz(a), { status: 503, up: false });
    const refused = await a.sdk().trigger('news', 'lost', {}).then(
      (r) => r.status,
      (err: { status?: number }) => err.status,
    );
    assert.equal(refused, 503, 'the backend is told, instead of the event being dropped silently');
    assert.equal((await fetch(`http://127.0.0.1:${a.port}/healthz`)).status, 200);
    await own.start();
    await until(() => a.app.adapter.status().up, 'adapter up again', 10_000);
    assert.deepEqual(await readyz(a), { status: 200, up: true });
    const channel = await subscribed(a.client(), 'news');
    const event = nextEvent(channel, 'after');
    await a.sdk().trigger('news', 'after', { ok: true });
    assert.deepEqual(await within(event, 'event after the outage'), { ok: true });
    const events = a.logs.map((l) => l.event).filter((e) => e === 'adapter_up' || e === 'adapter_down');
    assert.deepEqual(events, ['adapter_up', 'adapter_down', 'adapter_up']);
  } finally {
    await a.close();
    await own.stop();
  }
});
