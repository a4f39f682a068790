/**
 * A `pusher:subscribe` repeated for a channel the connection already holds (or is still joining): answered again each
 * time, as the first was, but it is no new subscription — counted as `ok` and logged as `subscribed` once, however often
 * a client repeats it (up to its frame budget, 200 a second by default). Its signature is not checked again (the first
 * one authorized the channel); a repeat refused as its first was (a full presence channel) is counted as any refusal.
 * A repeat sent while the first is still being recorded cluster-wide is answered after it, with its outcome; an unsubscribe
 * meanwhile cancels the join and a subscribe after that takes it up again (one join, nothing taken back) — unless it
 * subscribes as another presence member: then the cancelled join is taken back out and the new member joins after it.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Envelope } from '../../src/adapters/envelope.js';
import { createFanout } from '../../src/realtime/fanout.js';
import { gateMemberEvents } from '../../src/realtime/member-delivery.js';
import { subscribe, unsubscribe } from '../../src/realtime/subscribe.js';
import { plainSubscribe, signedSubscribe, slowJoins, unitWorld } from '../helpers/unit.js';
import { until } from '../helpers/wait.js';

describe('a repeated subscribe', () => {
  test('is answered every time but counted and logged once; after an unsubscribe it is a new subscription again', async () => {
    const world = unitWorld();
    const { connection, socket } = world.connect();
    for (let i = 0; i < 50; i++) await subscribe(world.deps, connection, plainSubscribe('news'));
    assert.equal(socket.frames().filter((f) => f.event === 'pusher_internal:subscription_succeeded').length, 50);
    assert.equal(world.count('subscription('), 1);
    assert.equal(world.count('subscription(app-id, public, ok)'), 1);
    assert.deepEqual(world.logged('subscribed').map((l) => l.channel), ['news']);
    assert.deepEqual(world.webhooks.map((w) => w.name), ['channel_occupied']);
    assert.equal(connection.subscriptions.size, 1);

    unsubscribe(world.deps, connection, { event: 'pusher:unsubscribe', channel: 'news' });
    await subscribe(world.deps, connection, plainSubscribe('news'));
    assert.equal(world.count('subscription(app-id, public, ok)'), 2);
    assert.equal(world.logged('subscribed').length, 2);
  });

  test('while the first is still joining: both answered, one subscription counted and logged', async () => {
    const world = unitWorld();
    const { connection, socket } = world.connect();
    await Promise.all([subscribe(world.deps, connection, plainSubscribe('news')), subscribe(world.deps, connection, plainSubscribe('news'))]);
    assert.equal(socket.frames().filter((f) => f.event === 'pusher_internal:subscription_succeeded').length, 2);
    assert.equal(world.count('subscription(app-id, public, ok)'), 1);
    assert.equal(world.logged('subscribed').length, 1);
  });

  test('presence: the member list is sent again, one subscription and one member_added', async () => {
    const world = unitWorld();
    const { connection, socket } = world.connect();
    const data = JSON.stringify({ user_id: 'u1' });
    for (let i = 0; i < 3; i++) await subscribe(world.deps, connection, signedSubscribe(world, connection, 'presence-room', data));
    const answers = socket.data('pusher_internal:subscription_succeeded') as { presence: { ids: string[] } }[];
    assert.deepEqual(answers.map((a) => a.presence.ids), [['u1'], ['u1'], ['u1']]);
    assert.equal(world.count('subscription(app-id, presence, ok)'), 1);
    assert.equal(world.logged('subscribed').length, 1);
    assert.equal(world.webhooks.filter((w) => w.name === 'member_added').length, 1);
  });

  test('subscribe, unsubscribe, subscribe while the join is under way: one join, held on the node and in the cluster', async () => {
    const world = unitWorld();
    const slow = slowJoins(world);
    const { connection, socket } = world.connect();
    const first = subscribe(world.deps, connection, plainSubscribe('news'));
    unsubscribe(world.deps, connection, { event: 'pusher:unsubscribe', channel: 'news' });
    const again = subscribe(world.deps, connection, plainSubscribe('news'));
    slow.release();
    await Promise.all([first, again]);
    await world.deps.adapter.settle();
    // Before: the second join's entry was taken by the first's answer, so the second's answer took the subscription
    // back out of the cluster while the node kept it (the channel unoccupied, its subscriber still fed locally).
    assert.equal(slow.joins(), 1);
    assert.equal(slow.leaves(), 0);
    assert.equal(connection.subscriptions.has('news'), true);
    assert.deepEqual(await world.deps.adapter.channel(world.app.id, 'news'), { subscriptionCount: 1, userCount: 0 });
    assert.equal(socket.frames().filter((f) => f.event === 'pusher_internal:subscription_succeeded').length, 2);
    assert.equal(world.count('subscription(app-id, public, ok)'), 1);
    assert.deepEqual(world.webhooks.map((w) => w.name), ['channel_occupied']);
  });

  test('subscribe then unsubscribe while the join is under way: taken back out, nothing answered', async () => {
    const world = unitWorld();
    const slow = slowJoins(world);
    const { connection, socket } = world.connect();
    const first = subscribe(world.deps, connection, plainSubscribe('news'));
    unsubscribe(world.deps, connection, { event: 'pusher:unsubscribe', channel: 'news' });
    slow.release();
    await first;
    await world.deps.adapter.settle();
    assert.equal(connection.subscriptions.has('news'), false);
    assert.equal(slow.leaves(), 1);
    assert.equal((await world.deps.adapter.channel(world.app.id, 'news')).subscriptionCount, 0);
    assert.deepEqual(socket.frames().map((f) => f.event), []);
  });

  test('presence: a repeat sent before the join is answered gets the member list with the joiner in it', async () => {
    const world = unitWorld();
    const slow = slowJoins(world);
    const { connection, socket } = world.connect();
    const data = JSON.stringify({ user_id: 'u1' });
    const message = signedSubscribe(world, connection, 'presence-room', data);
    const both = Promise.all([subscribe(world.deps, connection, message), subscribe(world.deps, connection, message)]);
    slow.release();
    await both;
    // Before: the repeat was answered at once with the members before the join (without u1); pusher-js takes `me` from
    // the first answer it gets.
    const answers = socket.data('pusher_internal:subscription_succeeded') as { presence: { ids: string[] } }[];
    assert.deepEqual(answers.map((a) => a.presence.ids), [['u1'], ['u1']]);
    assert.equal(slow.joins(), 1);
  });

  test('presence: a repeat of a subscribe the full channel refuses is refused too, never answered as a success', async () => {
    const world = unitWorld(undefined, { maxPresenceMembers: 1 });
    const other = world.connect();
    await subscribe(world.deps, other.connection, signedSubscribe(world, other.connection, 'presence-room', JSON.stringify({ user_id: 'u0' })));
    const slow = slowJoins(world);
    const { connection, socket } = world.connect();
    const message = signedSubscribe(world, connection, 'presence-room', JSON.stringify({ user_id: 'u1' }));
    const both = Promise.all([subscribe(world.deps, connection, message), subscribe(world.deps, connection, message)]);
    slow.release();
    await both;
    assert.deepEqual(socket.frames().map((f) => f.event), ['pusher:subscription_error', 'pusher:subscription_error']);
    assert.equal(connection.subscriptions.has('presence-room'), false);
  });

  test('a repeat of a held or joining channel is answered whatever its signature; after an unsubscribe it is checked', async () => {
    // pusher-js sends the subscribe its backend signed for the socket before a reconnect once that answer arrives: before,
    // it was refused 401 (Echo's .error()) while the channel, subscribed again on the new socket, went on delivering.
    const world = unitWorld();
    const { connection, socket } = world.connect();
    const stale = { ...signedSubscribe(world, connection, 'private-a'), auth: `${world.app.key}:${'0'.repeat(64)}` };
    await subscribe(world.deps, connection, signedSubscribe(world, connection, 'private-a'));
    await subscribe(world.deps, connection, stale);
    const slow = slowJoins(world);
    const joining = subscribe(world.deps, connection, signedSubscribe(world, connection, 'private-b'));
    const repeated = subscribe(world.deps, connection, { ...stale, channel: 'private-b' });
    slow.release();
    await Promise.all([joining, repeated]);
    assert.deepEqual(
      socket.frames().map((f) => `${f.event} ${f.channel}`),
      ['a', 'a', 'b', 'b'].map((c) => `pusher_internal:subscription_succeeded private-${c}`),
    );
    assert.equal(world.count('subscription(app-id, private, auth_failed)'), 0);
    assert.equal(world.logged('auth_failed').length, 0);

    // Unsubscribed: the next subscribe is a new one, and its signature is checked (also while the leave's join is
    // still under way: a cancelled join is not taken up again by a bad signature).
    unsubscribe(world.deps, connection, { event: 'pusher:unsubscribe', channel: 'private-a' });
    await subscribe(world.deps, connection, stale);
    assert.deepEqual(socket.data('pusher:subscription_error').map((d) => (d as { status: number }).status), [401]);
    assert.equal(connection.subscriptions.has('private-a'), false);
  });

  test('a cancelled join holds no place under the subscription cap; taking it up again needs one', async () => {
    const world = unitWorld(undefined, { maxSubscriptionsPerConnection: 1 });
    const slow = slowJoins(world);
    const { connection, socket } = world.connect();
    const a = subscribe(world.deps, connection, plainSubscribe('a'));
    unsubscribe(world.deps, connection, { event: 'pusher:unsubscribe', channel: 'a' });
    const b = subscribe(world.deps, connection, plainSubscribe('b'));
    // At the cap with b: a's cancelled join cannot be taken up again.
    await subscribe(world.deps, connection, plainSubscribe('a'));
    slow.release();
    await Promise.all([a, b]);
    await world.deps.adapter.settle();
    assert.deepEqual([...connection.subscriptions.keys()], ['b']);
    assert.deepEqual(
      socket.frames().map((f) => `${f.event} ${f.channel}`),
      ['pusher:subscription_error a', 'pusher_internal:subscription_succeeded b'],
    );
    assert.equal(slow.leaves(), 1, "a's join taken back out");
  });
  test('presence: a repeat whose member list is still being read when the client unsubscribes is not answered', async () => {
    // Answered after the unsubscribe and the next subscribe as w, its list (v's, or none) came first: a client taking it
    // for w's answer had a list without itself (a review).
    const world = unitWorld();
    const { connection, socket } = world.connect();
    const as = (user: string) => signedSubscribe(world, connection, 'presence-room', JSON.stringify({ user_id: user }));
    await subscribe(world.deps, connection, as('v'));
    const adapter = world.deps.adapter;
    const { members } = adapter;
    let open: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (open = resolve));
    adapter.members = (...args) => gate.then(() => members.apply(adapter, args));
    const repeat = subscribe(world.deps, connection, as('v'));
    unsubscribe(world.deps, connection, { event: 'pusher:unsubscribe', channel: 'presence-room' });
    const next = subscribe(world.deps, connection, as('w'));
    await next;
    open();
    await repeat;
    const answers = socket.data('pusher_internal:subscription_succeeded') as { presence: { ids: string[] } }[];
    assert.deepEqual(answers.map((a) => a.presence.ids), [['v'], ['w']]);
  });

  describe('presence: subscribe, unsubscribe, subscribe as another member while the first join is under way', () => {
    /**
     * Plays frames of one connection on `presence-room` while the cluster's joins wait, then lets them through: a user id
     * subscribes as that member, `-` unsubscribes, `other` subscribes to a public channel of that name.
     */
    async function play(frames: string[], limits?: Parameters<typeof unitWorld>[1]) {
      const world = unitWorld(undefined, limits);
      const slow = slowJoins(world);
      const { connection, socket } = world.connect();
      const running = frames.map((frame) => {
        if (frame === '-') return unsubscribe(world.deps, connection, { event: 'pusher:unsubscribe', channel: 'presence-room' });
        if (frame === 'other') return subscribe(world.deps, connection, plainSubscribe('other'));
        return subscribe(world.deps, connection, signedSubscribe(world, connection, 'presence-room', JSON.stringify({ user_id: frame })));
      });
      slow.release();
      await Promise.all(running);
      await world.deps.adapter.settle();
      const lists = (socket.data('pusher_internal:subscription_succeeded') as { presence?: { ids: string[] } }[]).flatMap((a) =>
        a.presence === undefined ? [] : [a.presence.ids],
      );
      const memberEvents = world.webhooks
        .filter((w) => w.name.startsWith('member_'))
        .map((w) => `${w.name} ${(w as { user_id: string }).user_id}`);
      return { world, connection, socket, slow, lists, memberEvents, member: connection.subscriptions.get('presence-room')?.userId };
    }

    test('the first member is taken back out and the second joins: the client is answered with its own list', async () => {
      const { world, slow, lists, memberEvents, member } = await play(['v', '-', 'w']);
      // Before: the cancelled join was taken up again as v, and w's subscribe was answered with v's list.
      assert.deepEqual(lists, [['w']]);
      assert.deepEqual([...(await world.deps.adapter.members(world.app.id, 'presence-room')).keys()], ['w']);
      assert.equal(member, 'w');
      assert.deepEqual(memberEvents, ['member_added v', 'member_removed v', 'member_added w']);
      assert.deepEqual([slow.joins(), slow.leaves()], [2, 1]);
    });

    test('an unsubscribe after it cancels it too: nothing joined, nothing answered', async () => {
      const { world, connection, socket, slow } = await play(['v', '-', 'w', '-']);
      assert.deepEqual(socket.frames(), []);
      assert.equal(connection.subscriptions.has('presence-room'), false);
      assert.equal((await world.deps.adapter.members(world.app.id, 'presence-room')).size, 0);
      assert.deepEqual([slow.joins(), slow.leaves()], [1, 1]);
    });

    test('a repeat while it waits is answered after it, as a repeat, whoever it names: the member stays the second', async () => {
      // Before (a review): the repeat took the wait's turn, the first subscribe dropped out unanswered, and a repeat as v
      // took v's join up again.
      for (const repeatAs of ['w', 'v']) {
        const { world, lists, member } = await play(['v', '-', 'w', repeatAs]);
        assert.deepEqual(lists, [['w'], ['w']], `repeat as ${repeatAs}`);
        assert.equal(member, 'w');
        assert.equal(world.count('subscription(app-id, presence, ok)'), 1);
      }
    });

    test('while it waits it holds its place under the subscription cap: a later subscribe of another channel is refused', async () => {
      // Before (a review): the wait held no place, the later channel took it, and the switch was refused at its end.
      const { world, connection, socket } = await play(['v', '-', 'w', 'other'], { maxSubscriptionsPerConnection: 1 });
      assert.deepEqual([...connection.subscriptions.keys()], ['presence-room']);
      assert.deepEqual(
        socket.frames().map((f) => `${f.event} ${f.channel}`),
        ['pusher:subscription_error other', 'pusher_internal:subscription_succeeded presence-room'],
      );
      assert.equal(world.deps.hub.joiningCount(connection), 0, 'no place left held');
    });

    test('switches replacing one another hold one place under the cap between them, given back when the join is taken up', async () => {
      // Each switch held one more place until the first join ended (a second review): at a cap of 2 the channel's own last
      // subscribe, or another channel's, was refused.
      const switches = await play(['v', '-', 'w', '-', 'w', '-', 'w'], { maxSubscriptionsPerConnection: 2 });
      assert.deepEqual([switches.member, switches.lists], ['w', [['w']]]);
      for (const [frames, member] of [
        [['v', '-', 'w', '-', 'v', 'other'], 'v'],
        [['v', '-', 'w', '-', 'x', 'other'], 'x'],
      ] as const) {
        const { connection, socket, world } = await play([...frames], { maxSubscriptionsPerConnection: 2 });
        assert.deepEqual([...connection.subscriptions.keys()].sort(), ['other', 'presence-room'], frames.join(','));
        assert.equal(connection.subscriptions.get('presence-room')?.userId, member);
        assert.deepEqual(socket.data('pusher:subscription_error'), []);
        assert.equal(world.deps.hub.joiningCount(connection), 0);
      }
    });

    test('a subscribe as the first member after an unsubscribe takes the first join up again: the later frame decides', async () => {
      const { slow, lists, memberEvents, member } = await play(['v', '-', 'w', '-', 'v']);
      assert.deepEqual(lists, [['v'], ['v']]);
      assert.equal(member, 'v');
      assert.deepEqual(memberEvents, ['member_added v']);
      assert.deepEqual([slow.joins(), slow.leaves()], [1, 0]);
    });
  });
});

describe('presence on an engine that numbers member changes (Redis): a repeat’s list and the member events around it', () => {
  /**
   * W subscribed to presence-room as `w` at `seq` 1; the engine's reads of the list wait for `answer(members, seq)`, and
   * member events reach the node through the `seq` gate (`deliver`), as Redis's list reply and its pub/sub messages come
   * over two connections, in either order.
   */
  async function numbered() {
    const world = unitWorld();
    const adapter = world.deps.adapter;
    const join = adapter.join.bind(adapter);
    adapter.join = async (...args) => ({ ...(await join(...args)), seq: 1 });
    const { connection, socket } = world.connect();
    const as = (user: string) => signedSubscribe(world, connection, 'presence-room', JSON.stringify({ user_id: user }));
    await subscribe(world.deps, connection, as('w'));
    const reads: ((snapshot: { members: Map<string, unknown>; seq: number }) => void)[] = [];
    let latest = new Map<string, unknown>([['w', null]]);
    adapter.membersChangedSince = () => new Promise((resolve) => reads.push(resolve));
    // An engine without the numbered read answers with what it holds now.
    adapter.members = async () => latest;
    const deliver = gateMemberEvents(world.deps.hub, world.deps.metrics, createFanout({ hub: world.deps.hub, metrics: world.deps.metrics }));
    const memberAdded = (user: string, seq: number): Envelope => ({
      appId: 'app-id',
      channel: 'presence-room',
      event: 'pusher_internal:member_added',
      data: JSON.stringify({ user_id: user }),
      userId: undefined,
      excludeSocketId: undefined,
      kind: 'presence',
      trace: undefined,
      publishedAt: 0,
      seq,
    });
    const events = () => socket.frames().filter((f) => f.channel === 'presence-room').map((f) => f.event);
    const lists = () => (socket.data('pusher_internal:subscription_succeeded') as { presence: { ids: string[] } }[]).map((a) => a.presence.ids);
    const answered = async (members: string[], seq: number) => {
      await until(() => reads.length > 0, 'a read of the list');
      latest = new Map(members.map((id) => [id, null]));
      reads.shift()!({ members: latest, seq });
    };
    const setLatest = (members: string[]) => void (latest = new Map(members.map((id) => [id, null])));
    return { world, connection, as, deliver, memberAdded, events, lists, answered, reads, setLatest };
  }

  test('a list read before a member_added already sent is read again: the member is in the answer', async () => {
    const t = await numbered();
    const repeat = subscribe(t.world.deps, t.connection, t.as('w'));
    t.deliver(t.memberAdded('x', 2));
    // The list as Redis had it before x joined, its reply behind x's member_added. (Before, the engine's unnumbered list,
    // [w], answered at once.)
    const settled = repeat.then(() => true);
    if (!(await Promise.race([settled, until(() => t.reads.length > 0, 'a read of the list').then(() => false)]))) {
      await t.answered(['w'], 1);
      await t.answered(['w', 'x'], 2);
    }
    await repeat;
    assert.deepEqual(t.lists(), [['w'], ['w', 'x']], 'the repeat’s list has x (before: [w], x gone for the client)');
  });

  test('a member_added the list already had is not sent after it', async () => {
    const t = await numbered();
    const repeat = subscribe(t.world.deps, t.connection, t.as('w'));
    const settled = repeat.then(() => true);
    // (Before, the engine's unnumbered list answered at once: the list with x, then x's member_added again.)
    t.setLatest(['w', 'x']);
    if (!(await Promise.race([settled, until(() => t.reads.length > 0, 'a read of the list').then(() => false)]))) await t.answered(['w', 'x'], 2);
    await repeat;
    t.deliver(t.memberAdded('x', 2));
    t.deliver(t.memberAdded('y', 3));
    assert.deepEqual(t.lists(), [['w'], ['w', 'x']]);
    assert.deepEqual(
      t.events(),
      ['pusher_internal:subscription_succeeded', 'pusher_internal:subscription_succeeded', 'pusher_internal:member_added'],
      'y’s member_added only (before: x announced twice)',
    );
  });
});
