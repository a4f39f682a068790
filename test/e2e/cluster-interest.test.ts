/**
 * Interest routing on 3 real Beacon processes sharing one redis-server: each node serves a disjoint set of channels, a
 * backend publishes on all of them through node 0, and each node's websocket_adapter_messages_total{direction="received"}
 * grows by exactly the publications of its own channels (with one pub/sub channel per app, every node received all).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import Pusher from 'pusher';
import { spawnBeacon, type BeaconProcess } from '../helpers/beacon-process.js';
import { parseExposition, sumOf } from '../helpers/exposition.js';
import { subscribed } from '../helpers/pusher-events.js';
import { localClient, type PusherClient } from '../helpers/pusher-js.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';
import { APP } from '../helpers/server.js';
import { eventually, until } from '../helpers/wait.js';

let redis: RedisServer;
before(async () => {
  redis = await startRedis();
});
after(async () => {
  await redis?.stop();
});

const CHANNELS_PER_NODE = 4;
const EVENTS_PER_CHANNEL = 5;

async function received(node: BeaconProcess): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${node.metricsPort}/metrics`)).text();
  return sumOf(parseExposition(text), 'websocket_adapter_messages_total', { direction: 'received' });
}

test('3 nodes with disjoint channels: each node receives only its own channels’ publications', { timeout: 45_000 }, async () => {
  const nodes: BeaconProcess[] = [];
  const clients: PusherClient[] = [];
  try {
    for (const i of [0, 1, 2]) nodes.push(await spawnBeacon({ ADAPTER: 'redis', REDIS_URL: redis.url, NODE_ID: `interest-${i}`, APP_ENABLE_SUBSCRIPTION_COUNT: 'true' }));
    const got = new Map<string, number>();
    for (const [i, node] of nodes.entries()) {
      const client = localClient(node.port, APP.key);
      clients.push(client);
      for (let k = 0; k < CHANNELS_PER_NODE; k++) {
        const name = `sparse-user-${i}-${k}`;
        const channel = await subscribed(client, name);
        channel.bind('tick', () => got.set(name, (got.get(name) ?? 0) + 1));
      }
    }
    // Each join published its channel's subscription_count (the app opted in): each node receives its own 4 and nobody else's.
    let baseline: number[] = [];
    await eventually(async () => {
      baseline = await Promise.all(nodes.map(received));
      return baseline.every((v) => v === CHANNELS_PER_NODE);
    }, 'each node receiving its own subscription counts', 5000, 20).catch(() => undefined);
    assert.deepEqual(baseline, [CHANNELS_PER_NODE, CHANNELS_PER_NODE, CHANNELS_PER_NODE]);
    const sdk = new Pusher({ appId: APP.id, key: APP.key, secret: APP.secret, host: '127.0.0.1', port: String(nodes[0]?.port), useTLS: false });
    for (let n = 0; n < EVENTS_PER_CHANNEL; n++) {
      for (const i of [0, 1, 2]) {
        const names = Array.from({ length: CHANNELS_PER_NODE }, (_, k) => `sparse-user-${i}-${k}`);
        await sdk.trigger(names, 'tick', { n });
      }
    }
    const all = 3 * CHANNELS_PER_NODE * EVENTS_PER_CHANNEL;
    await until(() => [...got.values()].reduce((a, b) => a + b, 0) === all, 'every publication delivered', 10_000);
    const deltas = (await Promise.all(nodes.map(received))).map((v, i) => v - (baseline[i] ?? 0));
    assert.deepEqual(deltas, [0, 1, 2].map(() => CHANNELS_PER_NODE * EVENTS_PER_CHANNEL));
  } finally {
    for (const c of clients) c.disconnect();
    await Promise.all(nodes.map((n) => n.stop('SIGKILL')));
  }
});
