/**
 * The contract of src/adapters/adapter.ts as a suite every adapter implementation runs (local and Redis).
 * `make` builds an adapter over a hub with the given clock, ready to use; the suite never looks inside the implementation.
 * Delivery may be asynchronous (a cluster engine goes through the network), so deliveries are awaited with a bound.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Adapter } from '../../src/adapters/adapter.js';
import type { Envelope } from '../../src/adapters/envelope.js';
import type { AppConfig } from '../../src/config.js';
import { Hub } from '../../src/realtime/hub.js';
import type { Connection } from '../../src/transport/connection.js';
import { until, within } from '../helpers/wait.js';

export interface AdapterFactory {
  (hub: Hub, clock: { now: () => number }, cacheTtlMs: number): Adapter | Promise<Adapter>;
}

const APP: AppConfig = {
  id: 'a1',
  key: 'k1',
  secret: 's1',
  enabled: true,
  enableClientEvents: false,
  maxConnections: 0,
  clientEventsPerSecond: 10,
  userAuthenticationRequired: false,
  webhookUrl: undefined,
  webhooks: [],
};

/** The least of a Connection the hub needs for bookkeeping. */
function fakeConnection(socketId: string): Connection {
  return { app: APP, socketId, subscriptions: new Map(), userId: undefined, watchlist: [] } as unknown as Connection;
}

function envelope(channel: string, n: number): Envelope {
  return {
    appId: APP.id,
    channel,
    event: 'e',
    data: String(n),
    userId: undefined,
    excludeSocketId: undefined,
    kind: 'channel_event',
    traceparent: undefined,
    publishedAt: 0,
  };
}

export function adapterContract(name: string, make: AdapterFactory): void {
  const setup = async (ttl = 1000) => {
    const clock = { t: 1_000_000, now: () => clock.t };
    const hub = new Hub([APP]);
    const adapter = await make(hub, clock, ttl);
    return { hub, adapter, clock };
  };

  test(`${name}: publish reaches the envelope handler once each, in order`, async () => {
    const { adapter } = await setup();
    const seen: string[] = [];
    adapter.onEnvelope((e) => seen.push(`${e.channel}:${e.data}`));
    for (let n = 0; n < 5; n++) adapter.publish(envelope('c', n));
    await until(() => seen.length >= 5, 'five envelopes');
    assert.deepEqual(seen, ['c:0', 'c:1', 'c:2', 'c:3', 'c:4']);
    await adapter.close();
  });

  test(`${name}: flush resolves once every earlier publish has reached the envelope handler`, async () => {
    const { adapter } = await setup();
    const seen: string[] = [];
    adapter.onEnvelope((e) => seen.push(e.data));
    for (let n = 0; n < 50; n++) adapter.publish(envelope(`c${n % 3}`, n));
    await within(adapter.flush(), 'the flush');
    // No waiting beyond the flush itself: the graceful drain closes connections right after it.
    assert.equal(seen.length, 50);
    await adapter.close();
  });

  test(`${name}: channel, channels and members answer from the subscriptions`, async () => {
    const { hub, adapter } = await setup();
    const a = fakeConnection('1.1');
    const b = fakeConnection('1.2');
    hub.addConnection(a);
    hub.addConnection(b);
    hub.join(a, 'presence-room', { userId: 'u1', signedUserId: 'u1', userInfo: { n: 1 } });
    hub.join(b, 'presence-room', { userId: 'u1', signedUserId: 'u1', userInfo: { n: 1 } });
    hub.join(b, 'news', null);
    assert.deepEqual(await adapter.channel(APP.id, 'presence-room'), { subscriptionCount: 2, userCount: 1 });
    assert.deepEqual(await adapter.channel(APP.id, 'empty'), { subscriptionCount: 0, userCount: 0 });
    assert.deepEqual([...(await adapter.channels(APP.id)).keys()].sort(), ['news', 'presence-room']);
    assert.deepEqual([...(await adapter.members(APP.id, 'presence-room'))], [['u1', { n: 1 }]]);
    hub.removeConnection(a);
    hub.removeConnection(b);
    assert.equal((await adapter.channels(APP.id)).size, 0);
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
