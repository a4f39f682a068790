/**
 * The contract of src/adapters/adapter.ts as a suite every adapter implementation runs (local and Redis).
 * `make` builds an adapter over a hub with the given clock, ready to use; the suite never looks inside the implementation.
 * Delivery may be asynchronous (a cluster engine goes through the network), so deliveries are awaited with a bound.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Adapter } from '../../src/adapters/adapter.js';
import type { Envelope } from '../../src/adapters/envelope.js';
import { unitApp } from '../helpers/unit.js';
import { until, within } from '../helpers/wait.js';

export interface AdapterFactory {
  /** `countsSubscriptions` is the adapter option of that name; undefined: left out (the adapter's default). */
  (clock: { now: () => number }, cacheTtlMs: number, countsSubscriptions?: (appId: string) => boolean): Adapter | Promise<Adapter>;
}

const APP = unitApp({ id: 'a1', key: 'k1', secret: 's1' });

function envelope(channel: string, n: number, appId = APP.id): Envelope {
  return {
    appId,
    channel,
    event: 'e',
    data: String(n),
    userId: undefined,
    excludeSocketId: undefined,
    kind: 'channel_event',
    trace: undefined,
    publishedAt: 0,
  };
}

export function adapterContract(name: string, make: AdapterFactory): void {
  const setup = async (ttl = 1000, countsSubscriptions?: (appId: string) => boolean) => {
    const clock = { t: 1_000_000, now: () => clock.t };
    const adapter = await make(clock, ttl, countsSubscriptions);
    return { adapter, clock };
  };

  test(`${name}: publish reaches the envelope handler once each, in order, once the channel has a subscription`, async () => {
    const { adapter } = await setup();
    const seen: string[] = [];
    await adapter.join(APP.id, 'c', '1.1', null, 0);
    adapter.onEnvelope((e) => {
      if (e.event === 'e') seen.push(`${e.channel}:${e.data}`);
    });
    for (let n = 0; n < 5; n++) adapter.publish(envelope('c', n));
    await until(() => seen.length >= 5, 'five envelopes');
    assert.deepEqual(seen, ['c:0', 'c:1', 'c:2', 'c:3', 'c:4']);
    await adapter.close();
  });

  test(`${name}: flush resolves once every earlier publish has reached the envelope handler`, async () => {
    const { adapter } = await setup();
    const seen: string[] = [];
    for (let c = 0; c < 3; c++) await adapter.join(APP.id, `c${c}`, '1.1', null, 0);
    adapter.onEnvelope((e) => {
      if (e.event === 'e') seen.push(e.data);
    });
    try {
      for (let n = 0; n < 50; n++) adapter.publish(envelope(`c${n % 3}`, n));
      await within(adapter.flush(), 'the flush');
      // No waiting beyond the flush itself: the graceful drain closes connections right after it.
      assert.equal(seen.length, 50);
    } finally {
      await adapter.close();
    }
  });

  test(`${name}: join and leave decide occupancy and presence once for the cluster; queries answer from them`, async () => {
    const { adapter } = await setup();
    const seen: Envelope[] = [];
    adapter.onEnvelope((e) => seen.push(e));
    const u1 = { userId: 'u1', userInfo: { n: 1 } };
    const first = await adapter.join(APP.id, 'presence-room', '1.1', u1, 0);
    assert.deepEqual(
      { ...first, seq: 0 },
      { admitted: true, occupied: true, memberAdded: true, members: new Map([['u1', { n: 1 }]]), seq: 0, count: undefined, heldCount: undefined },
    );
    const second = await adapter.join(APP.id, 'presence-room', '1.2', u1, 0);
    assert.equal(second.occupied, false);
    assert.equal(second.memberAdded, false, 'a second connection of the same user adds no member');
    assert.equal(second.seq, first.seq, 'nothing changed in the member list');
    const news = await adapter.join(APP.id, 'news', '1.2', null, 0);
    assert.equal(news.occupied, true);
    assert.equal(news.count, 1, 'the count the join published, for the joiner');
    assert.deepEqual(await adapter.channel(APP.id, 'presence-room'), { subscriptionCount: 2, userCount: 1 });
    assert.deepEqual(await adapter.channel(APP.id, 'empty'), { subscriptionCount: 0, userCount: 0 });
    assert.deepEqual([...(await adapter.channels(APP.id)).keys()].sort(), ['news', 'presence-room']);
    assert.deepEqual([...(await adapter.members(APP.id, 'presence-room'))], [['u1', { n: 1 }]]);
    assert.deepEqual(
      await Promise.all([adapter.hasMember(APP.id, 'presence-room', 'u1'), adapter.hasMember(APP.id, 'presence-room', 'u2'), adapter.hasMember(APP.id, 'news', 'u1')]),
      [true, false, false],
    );

    assert.deepEqual(await adapter.leave(APP.id, 'presence-room', '1.1', u1), { memberRemoved: false, vacated: false, count: undefined });
    assert.equal(await adapter.hasMember(APP.id, 'presence-room', 'u1'), true, 'one of its connections is still there');
    assert.deepEqual(await adapter.leave(APP.id, 'presence-room', '1.2', u1), { memberRemoved: true, vacated: true, count: undefined, removedUserId: 'u1' });
    assert.equal(await adapter.hasMember(APP.id, 'presence-room', 'u1'), false);
    // An empty channel gets no count (its channel_vacated says it).
    assert.deepEqual(await adapter.leave(APP.id, 'news', '1.2', null), { memberRemoved: false, vacated: true, count: undefined });
    assert.equal((await adapter.channels(APP.id)).size, 0);
    assert.deepEqual(await adapter.members(APP.id, 'presence-room'), new Map());

    // The engine published the member events (with a growing seq, the joiner excluded) and the count of `news`.
    await until(() => seen.length >= 3, 'the member and count events');
    const members = seen.filter((e) => e.channel === 'presence-room');
    assert.deepEqual(
      members.map((e) => [e.event, e.data, e.excludeSocketId]),
      [
        ['pusher_internal:member_added', JSON.stringify({ user_id: 'u1', user_info: { n: 1 } }), '1.1'],
        ['pusher_internal:member_removed', JSON.stringify({ user_id: 'u1' }), undefined],
      ],
    );
    assert.equal(members[0]?.seq, first.seq);
    assert.ok((members[1]?.seq ?? 0) > first.seq);
    assert.deepEqual(
      seen.filter((e) => e.channel === 'news').map((e) => [e.event, e.data, e.excludeSocketId]),
      [['pusher_internal:subscription_count', JSON.stringify({ subscription_count: 1 }), '1.2']],
    );
    await adapter.close();
  });

  test(`${name}: an app without subscription counting gets no subscription_count on join or leave; an app with it does`, async () => {
    const COUNTED = 'a2';
    const { adapter } = await setup(1000, (appId) => appId === COUNTED);
    const seen: Envelope[] = [];
    adapter.onEnvelope((e) => seen.push(e));
    try {
      const first = await adapter.join(APP.id, 'news', '1.1', null, 0);
      const second = await adapter.join(APP.id, 'news', '1.2', null, 0);
      assert.equal(first.count, undefined, 'no count for the joiner either');
      assert.equal(second.count, undefined);
      assert.deepEqual(await adapter.leave(APP.id, 'news', '1.1', null), { memberRemoved: false, vacated: false, count: undefined });
      // Presence events do not depend on the setting.
      const member = await adapter.join(APP.id, 'presence-room', '1.3', { userId: 'u1', userInfo: null }, 0);
      assert.equal(member.memberAdded, true);
      // The app that opted in still gets every change (the joiner's count in the outcome, the others' by the engine).
      const counted = await adapter.join(COUNTED, 'news', '2.1', null, 0);
      assert.equal(counted.count, 1);
      // Engine events of a channel arrive before a later publish on it: once the markers are in, nothing else is coming.
      adapter.publish(envelope('news', 0));
      adapter.publish(envelope('news', 1, COUNTED));
      await until(() => seen.filter((e) => e.event === 'e').length >= 2, 'the markers');
      assert.deepEqual(
        seen.filter((e) => e.event !== 'e').map((e) => [e.appId, e.channel, e.event, e.data]),
        [
          [APP.id, 'presence-room', 'pusher_internal:member_added', JSON.stringify({ user_id: 'u1', user_info: null })],
          [COUNTED, 'news', 'pusher_internal:subscription_count', JSON.stringify({ subscription_count: 1 })],
        ],
      );
    } finally {
      await adapter.close();
    }
  });

  test(`${name}: each count published is reported once: a join's and a leave's in their outcomes, not to onCountPublished`, async () => {
    // The node whose change published a count emits its subscription_count webhook (src/realtime/membership.ts): the
    // outcome says which count that was, and nothing reports it a second time.
    const { adapter } = await setup();
    const published: number[] = [];
    const markers: string[] = [];
    const reported: number[] = [];
    adapter.onEnvelope((e) => {
      if (e.event === 'pusher_internal:subscription_count') published.push((JSON.parse(e.data) as { subscription_count: number }).subscription_count);
      if (e.event === 'e') markers.push(e.data);
    });
    try {
      adapter.onCountPublished((_appId, _channel, count) => reported.push(count));
      const outcomes: (number | undefined)[] = [];
      for (const socketId of ['1.1', '1.2', '1.3']) outcomes.push((await adapter.join(APP.id, 'room', socketId, null, 0)).count);
      outcomes.push((await adapter.leave(APP.id, 'room', '1.2', null)).count);
      outcomes.push((await adapter.leave(APP.id, 'room', '1.1', null)).count);
      assert.deepEqual(outcomes, [1, 2, 3, 2, 1]);
      // Engine events of a channel arrive before a later publish on it (1.3 still holds the channel here).
      adapter.publish(envelope('room', 0));
      await until(() => markers.length > 0, 'the marker');
      assert.deepEqual(published, outcomes, 'the outcomes carry exactly the counts the engine published');
      assert.deepEqual(reported, [], 'none of them reported again');
      // The last one out vacates the channel: no count for an empty channel.
      assert.deepEqual(await adapter.leave(APP.id, 'room', '1.3', null), { memberRemoved: false, vacated: true, count: undefined });
    } finally {
      await adapter.close();
    }
  });

  test(`${name}: a big channel's count held back by the throttle goes out once the interval ends (the trailing count), reported`, async () => {
    // Pusher sends subscription_count at most every 5 s above 100 subscribers; the changes in between must not be lost:
    // the count as it is at the end of the interval goes out then, once. No change's outcome carries it: the engine
    // reports it to onCountPublished, once, on the node that published it (its webhook goes out from there).
    const { adapter } = await setup();
    const counts: number[] = [];
    const markers: string[] = [];
    const reported: [string, string, number][] = [];
    adapter.onEnvelope((e) => {
      if (e.event === 'pusher_internal:subscription_count') counts.push((JSON.parse(e.data) as { subscription_count: number }).subscription_count);
      if (e.event === 'e') markers.push(e.data);
    });
    try {
      adapter.onCountPublished((appId, channel, count) => reported.push([appId, channel, count]));
      const outcomes: (number | undefined)[] = [];
      for (let i = 1; i <= 100; i++) outcomes.push((await adapter.join(APP.id, 'big', `1.${i}`, null, 0)).count);
      assert.deepEqual(outcomes, Array.from({ length: 100 }, (_, i) => i + 1), 'every join up to 100 published its count');
      await until(() => counts.length === 100, 'a count per change up to 100 subscribers');
      // Within the interval after the count of 100 went out: held back, each of them.
      for (let i = 101; i <= 103; i++) assert.equal((await adapter.join(APP.id, 'big', `1.${i}`, null, 0)).count, undefined);
      assert.equal((await adapter.leave(APP.id, 'big', '1.101', null)).count, undefined, 'the leave held back too');
      assert.deepEqual(await adapter.channel(APP.id, 'big'), { subscriptionCount: 102, userCount: 0 });
      await until(() => counts.length > 100 && reported.length > 0, 'the trailing count, published and reported', 9000);
      assert.deepEqual(counts.slice(100), [102], 'one count, the channel as it is at the end of the interval');
      // Nothing else was armed: a publish on the channel arrives after it with no other count before it.
      adapter.publish(envelope('big', 0));
      await until(() => markers.length > 0, 'the marker');
      assert.deepEqual(counts.slice(100), [102]);
      assert.deepEqual(reported, [[APP.id, 'big', 102]], 'the trailing count reported once; the others were in outcomes');
    } finally {
      await adapter.close();
    }
  });

  test(`${name}: a full presence channel refuses a new user and changes nothing; a present user still joins`, async () => {
    const { adapter } = await setup();
    await adapter.join(APP.id, 'presence-full', '1.1', { userId: 'a', userInfo: null }, 2);
    await adapter.join(APP.id, 'presence-full', '1.2', { userId: 'b', userInfo: null }, 2);
    const refused = await adapter.join(APP.id, 'presence-full', '1.3', { userId: 'c', userInfo: null }, 2);
    assert.equal(refused.admitted, false);
    assert.deepEqual(await adapter.channel(APP.id, 'presence-full'), { subscriptionCount: 2, userCount: 2 });
    const again = await adapter.join(APP.id, 'presence-full', '1.4', { userId: 'a', userInfo: null }, 2);
    assert.equal(again.admitted, true);
    assert.deepEqual(await adapter.channel(APP.id, 'presence-full'), { subscriptionCount: 3, userCount: 2 });
    await adapter.close();
  });

  test(`${name}: the connection quota counts reservations up to the maximum; a release makes room`, async () => {
    const { adapter } = await setup();
    assert.equal(await adapter.reserveConnection(APP.id, 2, '1.1'), true);
    assert.equal(await adapter.reserveConnection(APP.id, 2, '1.2'), true);
    assert.equal(await adapter.reserveConnection(APP.id, 2, '1.3'), false);
    assert.equal(await adapter.reserveConnection('other-app', 2, '2.1'), true, 'quotas are per app');
    adapter.releaseConnection(APP.id, '1.1');
    // A release may be recorded asynchronously: ask again (bounded) until the room shows.
    let room = false;
    for (let i = 0; i < 100 && !room; i++) {
      room = await adapter.reserveConnection(APP.id, 2, '1.4');
      if (!room) await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.equal(room, true, 'room after the release');
    assert.equal(await adapter.reserveConnection(APP.id, 2, '1.5'), false);
    await adapter.close();
  });

  test(`${name}: signed-in users: every node hears a user's first and last node, usersOnline answers`, async () => {
    const { adapter } = await setup();
    const heard: string[] = [];
    adapter.onUserPresence((app, user, online) => heard.push(`${app}/${user}/${online ? 'online' : 'offline'}`));
    adapter.userPresence(APP.id, 'w1', true);
    await until(() => heard.length >= 1, 'online');
    assert.deepEqual(await adapter.usersOnline(APP.id, ['w1', 'w2']), new Set(['w1']));
    adapter.userPresence(APP.id, 'w1', false);
    await until(() => heard.length >= 2, 'offline');
    assert.deepEqual(heard, ['a1/w1/online', 'a1/w1/offline']);
    assert.deepEqual(await adapter.usersOnline(APP.id, ['w1']), new Set());
    await adapter.close();
  });

  test(`${name}: the cache keeps the last event per channel until its TTL`, async () => {
    const { adapter, clock } = await setup(1000);
    assert.equal(await adapter.cacheGet(APP.id, 'cache-x'), undefined);
    adapter.cacheSet(APP.id, 'cache-x', { event: 'e', data: '1' });
    adapter.cacheSet(APP.id, 'cache-x', { event: 'e', data: '2' });
    assert.deepEqual(await adapter.cacheGet(APP.id, 'cache-x'), { event: 'e', data: '2' });
    assert.equal(await adapter.cacheGet('other-app', 'cache-x'), undefined);
    clock.t += 1001;
    assert.equal(await adapter.cacheGet(APP.id, 'cache-x'), undefined);
    await adapter.close();
  });

  test(`${name}: a published event is cached with its envelope; cacheReplay answers after every envelope before it`, async () => {
    const { adapter } = await setup(60_000);
    const seen: string[] = [];
    await adapter.join(APP.id, 'cache-y', '1.1', null, 0);
    adapter.onEnvelope((e) => {
      if (e.event === 'e') seen.push(e.data);
    });
    try {
      assert.equal(await adapter.cacheReplay(APP.id, 'cache-y'), undefined);
      for (let n = 0; n < 20; n++) adapter.publish(envelope('cache-y', n), { event: 'e', data: String(n) });
      const cached = await adapter.cacheReplay(APP.id, 'cache-y');
      // The read came after the twenty publishes: the last is cached, and every envelope is in before it answers.
      assert.deepEqual(cached, { event: 'e', data: '19' });
      assert.equal(seen.length, 20);
      assert.deepEqual(await adapter.cacheGet(APP.id, 'cache-y'), { event: 'e', data: '19' });
    } finally {
      await adapter.close();
    }
  });

  test(`${name}: a user channel and user id with |, :, spaces, braces and non-ASCII: join, publish, counts, users, terminate`, async () => {
    const { adapter } = await setup();
    const ids = ['auth0|5f7c8ec7', 'user:42', 'a b', '{tag}x', 'y}z{', 'ü😀'];
    const seen: string[] = [];
    const terminated: string[] = [];
    adapter.onEnvelope((e) => {
      if (e.event === 'e') seen.push(e.channel);
    });
    adapter.onTerminateUser((_app, user) => terminated.push(user));
    try {
      for (const id of ids) {
        const channel = `#server-to-user-${id}`;
        await adapter.join(APP.id, channel, '1.1', null, 0);
        assert.equal((await adapter.channel(APP.id, channel)).subscriptionCount, 1, id);
        adapter.publish(envelope(channel, 0));
        await adapter.userPresence(APP.id, id, true);
        adapter.terminateUser(APP.id, id);
      }
      await until(() => seen.length >= ids.length && terminated.length >= ids.length, 'every envelope and terminate');
      // One channel each, so no order between them (a cluster engine may carry them through different shards).
      assert.deepEqual(seen.sort(), ids.map((id) => `#server-to-user-${id}`).sort());
      assert.deepEqual(terminated.sort(), [...ids].sort());
      // Each sign-in was awaited: recorded for the cluster, so the watchlist's question answers it at once.
      assert.deepEqual(await adapter.usersOnline(APP.id, ids), new Set(ids));
    } finally {
      await adapter.close();
    }
  });

  test(`${name}: terminateUser reaches the terminate handler; status says up`, async () => {
    const { adapter } = await setup();
    const terminated: string[] = [];
    adapter.onTerminateUser((app, user) => terminated.push(`${app}/${user}`));
    adapter.terminateUser(APP.id, 'u9');
    await until(() => terminated.length >= 1, 'the terminate handler');
    assert.deepEqual(terminated, ['a1/u9']);
    assert.equal(adapter.status().up, true);
    await adapter.close();
  });
}
