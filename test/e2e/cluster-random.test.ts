/**
 * A randomized cluster run: 3 real Beacon processes on one real redis-server, pusher-js clients joining and leaving
 * presence and public channels on random nodes (the same user on several nodes), one node SIGKILLed mid-run. A ground
 * truth is kept by the test; after each step (and after the crash is reaped) every observer's member events, every
 * client's member list, the webhooks, the HTTP API and the survivors' gauges must equal it exactly.
 *
 * Each channel is one lane whose steps run one after the other (so its truth is exact); the lanes run concurrently.
 * The seed is printed; CLUSTER_SEED=<n> replays a run.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import Pusher from 'pusher';
import { authOptions } from '../helpers/auth.js';
import { spawnBeacon, type BeaconProcess } from '../helpers/beacon-process.js';
import { parseExposition, sumOf } from '../helpers/exposition.js';
import { subscribed } from '../helpers/pusher-events.js';
import { PusherClient, type PresenceChannel } from '../helpers/pusher-js.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';
import { startRedisCluster } from '../helpers/redis-cluster.js';
import { APP } from '../helpers/server.js';
import { eventually, until } from '../helpers/wait.js';
import { startWebhookReceiver, type WebhookReceiver } from '../helpers/webhook-receiver.js';

const SEED = Number(process.env.CLUSTER_SEED ?? Math.floor(Math.random() * 1_000_000));
const PRESENCE = ['presence-r0', 'presence-r1'];
const PUBLIC = ['pub-0', 'pub-1'];
const USERS = ['u0', 'u1', 'u2', 'u3'];
const STEPS_PER_LANE = 14;
/** Node TTL 5 s + one 1.7 s check + the scripts (docs/scaling.md); room for a busy 2-core machine. */
const REAP_BOUND_MS = 10_000;

/** mulberry32: a small seeded generator, so a failing run can be replayed. */
function generator(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Sub {
  client: PusherClient;
  node: number;
  channel: string;
  user: string | undefined;
  live: boolean;
}

interface Observer {
  channel: string;
  node: number;
  presence: PresenceChannel;
  /** Member events as seen, `+user` / `-user`. */
  log: string[];
  /** Index into the channel's transitions from which this observer must see them. */
  from: number;
  live: boolean;
}

/** A transition of the ground truth; `batch` groups the ones of one crash, whose order among themselves is free. */
interface Transition {
  change: string;
  batch: number;
}

let redis: RedisServer;
before(async () => {
  redis = await startRedis();
});
after(async () => {
  await redis?.stop();
});

test(`randomized cluster run on one Redis (seed ${SEED}): members, events, webhooks and gauges equal the truth, across a SIGKILL`, { timeout: 55_000 }, async () => {
  const hooks = await startWebhookReceiver();
  try {
    await randomRun(hooks, { REDIS_URL: redis.url });
  } finally {
    await hooks.close();
  }
});

test(`randomized cluster run on a 3-master Redis Cluster (seed ${SEED}): the same truth`, { timeout: 55_000 }, async () => {
  const hooks = await startWebhookReceiver();
  const cluster = await startRedisCluster();
  try {
    await randomRun(hooks, { REDIS_CLUSTER_NODES: cluster.env });
  } finally {
    await hooks.close();
    await cluster.stop();
  }
});

async function randomRun(hooks: WebhookReceiver, redisEnv: Record<string, string>): Promise<void> {
  const random = generator(SEED);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const env = {
    ADAPTER: 'redis',
    ...redisEnv,
    APP_WEBHOOK_URL: hooks.url,
    WEBHOOK_VACATE_DELAY_MS: '0',
    WEBHOOK_BATCH_MS: '5',
  };
  // One after the other: three TypeScript start-ups at once can starve a loaded 2-core machine past the ready bound.
  const nodes: BeaconProcess[] = [];
  for (const i of [0, 1, 2]) nodes.push(await spawnBeacon({ ...env, NODE_ID: `rand-${i}` }));
  const alive = [true, true, true];
  const sdk = new Pusher({ appId: APP.id, key: APP.key, secret: APP.secret, host: '127.0.0.1', port: String(nodes[0]?.port), useTLS: false });
  const subs: Sub[] = [];
  const observers: Observer[] = [];
  /** Every client made, with the node it is connected to. */
  const clients = new Map<PusherClient, number>();
  const users = new Map<string, Map<string, number>>(PRESENCE.map((c) => [c, new Map()]));
  const totals = new Map<string, number>([...PRESENCE, ...PUBLIC].map((c) => [c, 0]));
  const transitions = new Map<string, Transition[]>(PRESENCE.map((c) => [c, []]));
  const hooksWanted = new Map<string, number>();
  let batch = 0;

  const want = (key: string): void => {
    hooksWanted.set(key, (hooksWanted.get(key) ?? 0) + 1);
  };
  const client = (node: number, user?: string): PusherClient => {
    const c = new PusherClient(APP.key, {
      cluster: 'mt1',
      wsHost: '127.0.0.1',
      wsPort: nodes[node]?.port,
      forceTLS: false,
      enabledTransports: ['ws'],
      disableStats: true,
      ...authOptions(sdk, user === undefined ? {} : { presence: { user_id: user, user_info: { name: user } } }),
    });
    clients.set(c, node);
    return c;
  };
  /** The truth after one more (+1) or one fewer (-1) subscription; `b` is the transition batch. */
  const count = (channel: string, user: string | undefined, delta: 1 | -1, b: number): void => {
    const total = (totals.get(channel) ?? 0) + delta;
    totals.set(channel, total);
    if (delta === 1 && total === 1) want(`channel_occupied ${channel}`);
    if (delta === -1 && total === 0) want(`channel_vacated ${channel}`);
    if (user === undefined) return;
    const members = users.get(channel) as Map<string, number>;
    const n = (members.get(user) ?? 0) + delta;
    if (n === 0) members.delete(user);
    else members.set(user, n);
    if ((delta === 1 && n === 1) || (delta === -1 && n === 0)) {
      transitions.get(channel)?.push({ change: `${delta === 1 ? '+' : '-'}${user}`, batch: b });
      want(`${delta === 1 ? 'member_added' : 'member_removed'} ${channel} ${user}`);
    }
  };
  const liveNode = (): number => pick([0, 1, 2].filter((i) => alive[i]));
  const api = async (channel: string): Promise<number> => {
    const node = nodes[liveNode()] as BeaconProcess;
    const s = new Pusher({ appId: APP.id, key: APP.key, secret: APP.secret, host: '127.0.0.1', port: String(node.port), useTLS: false });
    const res = await s.get({ path: `/channels/${channel}`, params: { info: 'subscription_count' } });
    return ((await res.json()) as { subscription_count: number }).subscription_count;
  };
  /** The expected log of an observer: its channel's transitions since it joined, crash batches in the order seen. */
  const expected = (o: Observer): string[] => {
    const list = (transitions.get(o.channel) ?? []).slice(o.from);
    const out: string[] = [];
    let i = 0;
    while (i < list.length) {
      let j = i;
      while (j < list.length && list[j]?.batch === list[i]?.batch) j++;
      const group = list.slice(i, j).map((t) => t.change);
      const seen = o.log.slice(out.length, out.length + group.length);
      // Within one crash the reaper removes users in any order: accept the observed order if it is the same set.
      out.push(...(group.length > 1 && [...seen].sort().join() === [...group].sort().join() ? seen : group));
      i = j;
    }
    return out;
  };
  /** Waits until the observers and the HTTP API agree with the truth of `channel`. */
  const settle = async (channel: string, timeoutMs = 5000): Promise<void> => {
    const watching = observers.filter((o) => o.live && o.channel === channel);
    await until(() => watching.every((o) => o.log.length >= expected(o).length), `observers of ${channel} (seed ${SEED})`, timeoutMs);
    await eventually(
      async () => (await api(channel)) === totals.get(channel),
      `subscription_count of ${channel} to reach ${totals.get(channel)} (seed ${SEED})`,
      timeoutMs,
      20,
    );
  };

  const lane = async (channel: string): Promise<void> => {
    const presence = channel.startsWith('presence-');
    for (let step = 0; step < STEPS_PER_LANE; step++) {
      const mine = subs.filter((s) => s.live && s.channel === channel);
      if (mine.length === 0 || random() < 0.6) {
        const node = liveNode();
        const user = presence ? pick(USERS) : undefined;
        const c = client(node, user);
        await subscribed(c, channel);
        subs.push({ client: c, node, channel, user, live: true });
        count(channel, user, 1, ++batch);
      } else {
        const s = pick(mine);
        s.live = false;
        if (random() < 0.5) s.client.unsubscribe(channel);
        else s.client.disconnect();
        count(channel, s.user, -1, ++batch);
      }
      await settle(channel);
    }
  };

  try {
    // One observer per node per presence channel, there for the whole run (the one on the killed node dies with it).
    for (const channel of PRESENCE) {
      for (const node of [0, 1, 2]) {
        const user = `obs-${node}`;
        const presence = await subscribed<PresenceChannel>(client(node, user), channel);
        count(channel, user, 1, ++batch);
        const o: Observer = { channel, node, presence, log: [], from: transitions.get(channel)?.length ?? 0, live: true };
        presence.bind('pusher:member_added', (m: { id: string }) => o.log.push(`+${m.id}`));
        presence.bind('pusher:member_removed', (m: { id: string }) => o.log.push(`-${m.id}`));
        observers.push(o);
        await settle(channel);
      }
    }
    await Promise.all([...PRESENCE, ...PUBLIC].map(lane));

    // Mid-run crash: node 2 dies with its subscribers; a survivor must reap it.
    const killed = 2;
    const webhooksBefore = hooks.events().length;
    await until(() => webhooksMatch(hooks, hooksWanted), `webhooks before the crash (seed ${SEED})`, 5000);
    await nodes[killed]?.stop('SIGKILL');
    alive[killed] = false;
    const crash = ++batch;
    for (const s of subs.filter((x) => x.live && x.node === killed)) {
      s.live = false;
      count(s.channel, s.user, -1, crash);
    }
    for (const o of observers.filter((x) => x.node === killed)) {
      o.live = false;
      count(o.channel, `obs-${killed}`, -1, crash);
    }
    // Their pusher-js clients would retry the dead port forever.
    for (const [c, node] of clients) if (node === killed) c.disconnect();
    for (const channel of [...PRESENCE, ...PUBLIC]) await settle(channel, REAP_BOUND_MS);
    const reaped = (): string[] =>
      [0, 1].flatMap((i) => (nodes[i] as BeaconProcess).logs.filter((l) => l.includes('"event":"node_reaped"')));
    // The reaper's line follows the reap on its stdout within one log batch (≤ 100 ms, telemetry/logger.ts).
    await until(() => reaped().length > 0, `a survivor's node_reaped line (seed ${SEED})`, 2000);
    assert.equal(reaped().length, 1, 'exactly one survivor reaped the dead node');
    assert.ok(webhooksBefore <= hooks.events().length);

    // The run goes on after the crash, on the survivors.
    await Promise.all([...PRESENCE, ...PUBLIC].map(lane));

    for (const o of observers.filter((x) => x.live)) assert.deepEqual(o.log, expected(o), `observer obs-${o.node} of ${o.channel} (seed ${SEED})`);
    for (const channel of PRESENCE) {
      const truth = [...(users.get(channel)?.keys() ?? [])].sort();
      const holders = [
        ...observers.filter((o) => o.live && o.channel === channel).map((o) => o.presence),
        ...subs.filter((s) => s.live && s.channel === channel).map((s) => s.client.channel(channel) as PresenceChannel),
      ];
      for (const p of holders) {
        const ids: string[] = [];
        p.members.each((m: { id: string }) => ids.push(m.id));
        assert.deepEqual(ids.sort(), truth, `members of ${channel} (seed ${SEED})`);
      }
    }
    await until(() => webhooksMatch(hooks, hooksWanted), `webhooks equal to the truth (seed ${SEED})`, 5000);
    assert.deepEqual(tallyWebhooks(hooks), Object.fromEntries([...hooksWanted].sort()));

    // The survivors' gauges add up to the truth.
    const families = await Promise.all([0, 1].map(async (i) => parseExposition(await (await fetch(`http://127.0.0.1:${nodes[i]?.metricsPort}/metrics`)).text())));
    const gauge = (name: string): number => families.reduce((n, f) => n + sumOf(f, name), 0);
    assert.equal(gauge('websocket_subscriptions'), [...totals.values()].reduce((a, b) => a + b, 0));
  } finally {
    for (const c of clients.keys()) c.disconnect();
    await Promise.all(nodes.map((n) => n.stop('SIGKILL')));
  }
}

/** Webhook events received, as `name channel [user]` → how many times. */
function tallyWebhooks(hooks: WebhookReceiver): Record<string, number> {
  const out = new Map<string, number>();
  for (const e of hooks.events()) {
    const key = 'user_id' in e && e.name !== 'client_event' ? `${e.name} ${e.channel} ${e.user_id}` : `${e.name} ${e.channel}`;
    out.set(key, (out.get(key) ?? 0) + 1);
  }
  return Object.fromEntries([...out].sort());
}

function webhooksMatch(hooks: WebhookReceiver, wanted: Map<string, number>): boolean {
  return JSON.stringify(tallyWebhooks(hooks)) === JSON.stringify(Object.fromEntries([...wanted].sort()));
}
