/**
 * Webhooks end to end: a real Beacon with APP_WEBHOOK_URL pointing at a receiver on 127.0.0.1, real pusher-js clients
 * producing channel_occupied, member_added, client_event, member_removed, channel_vacated and cache_miss (and, for an app
 * that counts subscriptions, subscription_count to the webhooks that list it); every request checked as a receiver would
 * (body shape, `X-Pusher-Key`, `X-Pusher-Signature` under the app secret).
 * Short configured delays keep it fast; the test awaits the receiver's requests, and the server's drain (which sends
 * held-back events at once) proves what was or was not still pending.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { authOptions } from '../helpers/auth.js';
import { connected, nextEvent, signedIn, subscribed } from '../helpers/pusher-events.js';
import type { PresenceChannel } from '../helpers/pusher-js.js';
import { APP, startServer, startServerWithApps, type TestServer } from '../helpers/server.js';
import { until } from '../helpers/wait.js';
import { signatureValid, startWebhookReceiver, type WebhookReceiver } from '../helpers/webhook-receiver.js';
import type { WebhookEvent } from '../../src/webhooks/webhook-event.js';

const ROOM = 'presence-room';

function env(receiver: WebhookReceiver): Record<string, string> {
  return {
    APP_WEBHOOK_URL: receiver.url,
    APP_ENABLE_CLIENT_EVENTS: 'true',
    WEBHOOK_BATCH_MS: '10',
    WEBHOOK_VACATE_DELAY_MS: '100',
    WEBHOOK_RETRY_BASE_MS: '20',
  };
}

const is = (expected: WebhookEvent) => (e: WebhookEvent) => JSON.stringify(e) === JSON.stringify(expected);

test('presence, client event and cache channel produce every webhook, signed with the app secret', async () => {
  const receiver = await startWebhookReceiver();
  const server = await startServer(env(receiver));
  try {
    const sdk = server.sdk();
    const started = Date.now();

    const aliceClient = server.client(authOptions(sdk, { presence: { user_id: 'alice', user_info: { name: 'A' } } }));
    await subscribed<PresenceChannel>(aliceClient, ROOM);
    await receiver.event(is({ name: 'channel_occupied', channel: ROOM }), 'channel_occupied');
    await receiver.event(is({ name: 'member_added', channel: ROOM, user_id: 'alice' }), 'member_added alice');

    const bobClient = server.client(authOptions(sdk, { presence: { user_id: 'bob', user_info: { name: 'B' } } }));
    const bob = await subscribed<PresenceChannel>(bobClient, ROOM);
    await receiver.event(is({ name: 'member_added', channel: ROOM, user_id: 'bob' }), 'member_added bob');
    const bobSocket = await connected(bobClient);

    assert.equal(bob.trigger('client-typing', { who: 'bob' }), true);
    const { event: clientEvent } = await receiver.event((e) => e.name === 'client_event', 'client_event');
    assert.deepEqual(clientEvent, {
      name: 'client_event',
      channel: ROOM,
      event: 'client-typing',
      data: JSON.stringify({ who: 'bob' }),
      socket_id: bobSocket,
      user_id: 'bob',
    });

    // Bob's connection closes: member_removed after the delay; Alice unsubscribes: member_removed, then the room is empty.
    bobClient.disconnect();
    await receiver.event(is({ name: 'member_removed', channel: ROOM, user_id: 'bob' }), 'member_removed bob');
    aliceClient.unsubscribe(ROOM);
    await receiver.event(is({ name: 'member_removed', channel: ROOM, user_id: 'alice' }), 'member_removed alice');
    await receiver.event(is({ name: 'channel_vacated', channel: ROOM }), 'channel_vacated');

    const cacheClient = server.client();
    const cacheChannel = cacheClient.subscribe('cache-weather');
    await nextEvent(cacheChannel, 'pusher:cache_miss');
    await receiver.event(is({ name: 'cache_miss', channel: 'cache-weather' }), 'cache_miss');

    assert.deepEqual(
      receiver.events().filter((e) => e.channel === ROOM).map((e) => e.name),
      ['channel_occupied', 'member_added', 'member_added', 'client_event', 'member_removed', 'member_removed', 'channel_vacated'],
    );
    for (const request of receiver.requests) {
      assert.equal(request.headers['content-type'], 'application/json');
      assert.equal(request.headers['x-pusher-key'], APP.key);
      assert.ok(signatureValid(request, APP.secret), `signature of ${request.raw}`);
      assert.equal(Object.keys(request.body).join(','), 'time_ms,events');
      assert.ok(request.body.time_ms >= started && request.body.time_ms <= Date.now(), 'time_ms is unix milliseconds');
      assert.ok(request.body.events.length >= 1);
    }
  } finally {
    await server.close();
    await receiver.close();
  }
});

test('unsubscribe and resubscribe within the delay: no channel_vacated, no second channel_occupied', async () => {
  const receiver = await startWebhookReceiver();
  const server = await startServer({ ...env(receiver), WEBHOOK_VACATE_DELAY_MS: '10000' });
  try {
    const client = server.client();
    await subscribed(client, 'news');
    await receiver.event(is({ name: 'channel_occupied', channel: 'news' }), 'channel_occupied');
    client.unsubscribe('news');
    await subscribed(client, 'news');
  } finally {
    // The drain closes the client and sends held-back events at once, so a vacate not cancelled would be here too.
    await server.close();
    await receiver.close();
  }
  assert.deepEqual(
    receiver.events().map((e) => e.name),
    ['channel_occupied', 'channel_vacated'],
    'one occupy, and the vacate of the drain only',
  );
});

test('a receiver answering 500 gets the same signed request again', async () => {
  const receiver = await startWebhookReceiver();
  receiver.respondWith(500);
  const server = await startServer(env(receiver));
  try {
    await subscribed(server.client(), 'retry-me');
    const second = await receiver.request(2);
    const first = await receiver.request(1);
    assert.equal(second.raw, first.raw);
    assert.equal(second.headers['x-pusher-signature'], first.headers['x-pusher-signature']);
    assert.ok(signatureValid(second, APP.secret));
  } finally {
    await server.close();
    await receiver.close();
  }
});

test('two webhooks with different event types and channel filters each receive exactly their share', async () => {
  const occupancy = await startWebhookReceiver();
  const team = await startWebhookReceiver();
  const webhooks = [
    { url: occupancy.url, eventTypes: ['channel_occupied', 'channel_vacated'], filter: { channelNameStartsWith: 'private-' } },
    {
      url: team.url,
      eventTypes: ['member_added', 'member_removed', 'client_event'],
      filter: { channelNameEndsWith: '-team' },
      headers: { 'X-Webhook-Token': 'team-token' },
    },
  ];
  const server = await startServer({ ...env(occupancy), APP_WEBHOOK_URL: '', APP_WEBHOOKS: JSON.stringify(webhooks) });
  let bobSocket = '';
  try {
    const sdk = server.sdk();
    const ops = server.client(authOptions(sdk));
    await subscribed(ops, 'private-orders');
    await subscribed(ops, 'private-ops-team');
    await subscribed(ops, 'news');
    const alice = server.client(authOptions(sdk, { presence: { user_id: 'alice' } }));
    await subscribed(alice, 'presence-red-team');
    await subscribed(alice, 'presence-blue');
    // A backend with integer ids: the webhook carries the id as the backend signed it.
    const bobClient = server.client(authOptions(sdk, { presence: { user_id: 2 as unknown as string } }));
    const bob = await subscribed<PresenceChannel>(bobClient, 'presence-red-team');
    bobSocket = await connected(bobClient);
    assert.equal(bob.trigger('client-typing', { on: 'red' }), true);
    await team.event((e) => e.name === 'client_event', 'client_event');
    ops.unsubscribe('private-orders');
    await occupancy.event(is({ name: 'channel_vacated', channel: 'private-orders' }), 'channel_vacated private-orders');
  } finally {
    // The drain closes every client and sends held-back events at once: the rest of each share arrives now.
    await server.close();
    await occupancy.close();
    await team.close();
  }
  const sorted = (events: WebhookEvent[]) => events.map((e) => JSON.stringify(e)).sort();
  assert.deepEqual(
    sorted(occupancy.events()),
    sorted([
      { name: 'channel_occupied', channel: 'private-orders' },
      { name: 'channel_occupied', channel: 'private-ops-team' },
      { name: 'channel_vacated', channel: 'private-orders' },
      { name: 'channel_vacated', channel: 'private-ops-team' },
    ]),
  );
  assert.deepEqual(
    sorted(team.events()),
    sorted([
      { name: 'member_added', channel: 'presence-red-team', user_id: 'alice' },
      { name: 'member_added', channel: 'presence-red-team', user_id: 2 } as unknown as WebhookEvent,
      {
        name: 'client_event',
        channel: 'presence-red-team',
        event: 'client-typing',
        data: JSON.stringify({ on: 'red' }),
        socket_id: bobSocket,
        user_id: '2',
      },
      { name: 'member_removed', channel: 'presence-red-team', user_id: 'alice' },
      { name: 'member_removed', channel: 'presence-red-team', user_id: 2 } as unknown as WebhookEvent,
    ]),
  );
  for (const request of [...occupancy.requests, ...team.requests]) {
    assert.equal(request.headers['x-pusher-key'], APP.key);
    assert.ok(signatureValid(request, APP.secret), `signature of ${request.raw}`);
  }
  assert.ok(team.requests.every((r) => r.headers['x-webhook-token'] === 'team-token'));
  assert.ok(occupancy.requests.every((r) => r.headers['x-webhook-token'] === undefined));
});

/** Every event a receiver got, in the order of its requests' `time_ms` (requests may overlap; docs/webhooks.md). */
function inOrder(receiver: WebhookReceiver): WebhookEvent[] {
  return [...receiver.requests].sort((x, y) => x.body.time_ms - y.body.time_ms).flatMap((r) => r.body.events);
}

test('subscription_count: each count a counting app publishes goes to the webhooks that list it; not for presence, the shorthand or an app without counting', async () => {
  const counted = await startWebhookReceiver();
  const shorthand = await startWebhookReceiver();
  const uncounted = await startWebhookReceiver();
  const COUNTING = { appId: 'counting', key: 'counting-key', secret: 'counting-secret' };
  const PLAIN = { appId: 'plain', key: 'plain-key', secret: 'plain-secret' };
  const eventTypes = ['channel_occupied', 'channel_vacated', 'subscription_count'];
  const app = (a: typeof COUNTING) => ({ id: a.appId, key: a.key, secret: a.secret });
  let server: TestServer | undefined;
  const counts = () => counted.events().filter((e) => e.name === 'subscription_count').length;
  // Each change's count has arrived before the next change is made: their order is the order of the changes.
  const change = async (what: string, make: () => Promise<unknown>) => {
    const before = counts();
    await make();
    await until(() => counts() > before, `the count of ${what}`);
  };
  try {
    const beacon = await startServerWithApps(
      [
        { ...app(COUNTING), enableSubscriptionCount: true, webhookUrl: shorthand.url, webhooks: [{ url: counted.url, eventTypes }] },
        { ...app(PLAIN), webhooks: [{ url: uncounted.url, eventTypes }] },
      ],
      { WEBHOOK_BATCH_MS: '10', WEBHOOK_VACATE_DELAY_MS: '0' },
    );
    server = beacon;
    const client = (key: string) => beacon.client({}, key);
    const [a, b, c] = [client(COUNTING.key), client(COUNTING.key), client(COUNTING.key)];
    await change('the first subscribe', () => subscribed(a, 'news'));
    await change('the second subscribe', () => subscribed(b, 'news'));
    await change('the third subscribe', () => subscribed(c, 'news'));
    await change('an unsubscribe', async () => b.unsubscribe('news'));
    await change('a closed connection', async () => c.disconnect());
    // The last one out: channel_vacated, and no count of 0 (as in Pusher).
    a.unsubscribe('news');
    await counted.event(is({ name: 'channel_vacated', channel: 'news' }), 'channel_vacated news');
    // A presence channel of the same app: occupancy, no count (its subscribers get member events instead).
    const sdk = beacon.sdk(COUNTING);
    const member = beacon.client(authOptions(sdk, { presence: { user_id: 'ann' } }), COUNTING.key);
    await subscribed(member, ROOM);
    member.unsubscribe(ROOM);
    await counted.event(is({ name: 'channel_vacated', channel: ROOM }), 'channel_vacated of the presence channel');
    // The app that does not count subscriptions: the same changes, occupancy only.
    const [x, y] = [client(PLAIN.key), client(PLAIN.key)];
    await subscribed(x, 'news');
    await subscribed(y, 'news');
    y.unsubscribe('news');
    x.unsubscribe('news');
    await uncounted.event(is({ name: 'channel_vacated', channel: 'news' }), 'channel_vacated news of the other app');
  } finally {
    // The drain sends whatever is still queued: an event emitted at all is in the receivers' lists below.
    await server?.close();
    await Promise.all([counted.close(), shorthand.close(), uncounted.close()]);
  }
  const count = (n: number): WebhookEvent => ({ name: 'subscription_count', channel: 'news', subscription_count: n });
  assert.deepEqual(inOrder(counted), [
    { name: 'channel_occupied', channel: 'news' },
    count(1),
    count(2),
    count(3),
    count(2),
    count(1),
    { name: 'channel_vacated', channel: 'news' },
    { name: 'channel_occupied', channel: ROOM },
    { name: 'channel_vacated', channel: ROOM },
  ]);
  // APP_WEBHOOK_URL takes every event type but this one: only a webhook that lists it gets it.
  assert.deepEqual(inOrder(shorthand), [
    { name: 'channel_occupied', channel: 'news' },
    { name: 'channel_vacated', channel: 'news' },
    { name: 'channel_occupied', channel: ROOM },
    { name: 'member_added', channel: ROOM, user_id: 'ann' },
    { name: 'member_removed', channel: ROOM, user_id: 'ann' },
    { name: 'channel_vacated', channel: ROOM },
  ]);
  assert.deepEqual(inOrder(uncounted), [
    { name: 'channel_occupied', channel: 'news' },
    { name: 'channel_vacated', channel: 'news' },
  ]);
  for (const request of counted.requests) assert.ok(signatureValid(request, COUNTING.secret), `signature of ${request.raw}`);
});

test("a user's own #server-to-user- channel sends no webhook and no subscription count: it is no channel of the app's", async () => {
  // A probe: signing in sent channel_occupied, subscription_count and channel_vacated webhooks for #server-to-user-{id},
  // and its clients got subscription_count frames on it.
  const receiver = await startWebhookReceiver();
  const server = await startServer({ ...env(receiver), APP_ENABLE_SUBSCRIPTION_COUNT: 'true' });
  try {
    const sdk = server.sdk();
    const tabs = [1, 2].map(() => server.client(authOptions(sdk, { user: { id: 'u-1' } })));
    for (const tab of tabs) await signedIn(tab);
    // The app's own channel, occupied and vacated after the sign-ins: its webhooks come after any of theirs.
    await subscribed(tabs[0]!, 'news');
    tabs[0]!.unsubscribe('news');
    await receiver.event(is({ name: 'channel_vacated', channel: 'news' }), 'channel_vacated news');
    for (const tab of tabs) tab.disconnect();
    await server.close();
    assert.deepEqual(
      receiver.events().filter((e) => e.channel.startsWith('#')),
      [],
    );
    assert.deepEqual(receiver.events().map((e) => `${e.name} ${e.channel}`).filter((e) => e.startsWith('channel_')), ['channel_occupied news', 'channel_vacated news']);
  } finally {
    await server.close();
    await receiver.close();
  }
});
