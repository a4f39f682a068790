/**
 * The Redis engine through Redis Sentinel (`REDIS_SENTINELS`, `REDIS_SENTINEL_MASTER`): a master with a replica and one
 * Sentinel (real `redis-server` processes), two Beacon nodes, pusher-js clients and the `pusher` SDK. The nodes reach the
 * master the Sentinel names; when it dies, or is demoted while still running, they move to the promoted replica and go on
 * delivering, presence kept (what the master had replicated).
 */
import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { afterEach, beforeEach, test } from 'node:test';
import { Redis } from 'ioredis';
import type Pusher from 'pusher';
import { authOptions } from '../helpers/auth.js';
import { nextEvent, subscribed } from '../helpers/pusher-events.js';
import type { PresenceChannel } from '../helpers/pusher-js.js';
import { SENTINEL_MASTER, startRedisSentinel, type RedisSentinelSet } from '../helpers/redis-sentinel.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { eventually, until } from '../helpers/wait.js';

let sentinel: RedisSentinelSet;
let nodes: TestServer[] = [];
/** A listed Sentinel that takes connections and never answers (a Sentinel's host frozen, a pod gone under its IP). */
let silent: { address: string; close(): Promise<void> };
beforeEach(async () => {
  sentinel = await startRedisSentinel();
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  silent = {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
});
afterEach(async () => {
  await Promise.all(nodes.map((n) => n.close()));
  nodes = [];
  await Promise.all([sentinel?.stop(), silent?.close()]);
});

/**
 * A node through the Sentinel, the silent one listed first: every lookup waits on it for the command timeout before it
 * asks the real one — the window in which ioredis' own failover listener, used at first, ended a reconnecting
 * connection for good (`end`, never retried) when the switch came.
 */
async function node(id: string): Promise<TestServer> {
  const server = await startServer({ ADAPTER: 'redis', REDIS_SENTINELS: `${silent.address},${sentinel.env}`, REDIS_SENTINEL_MASTER: SENTINEL_MASTER, NODE_ID: id });
  nodes.push(server);
  await until(() => server.app.adapter.status().up, `node ${id} connected through the Sentinel`, 10_000);
  return server;
}

async function userIds(sdk: Pusher, channel: string): Promise<string[]> {
  const body = (await (await sdk.get({ path: `/channels/${channel}/users` })).json()) as { users: { id: string }[] };
  return body.users.map((u) => u.id).sort();
}

/** Waits until the master has every write so far on its replica (`WAIT`): what a failover then keeps. */
async function replicated(port: number): Promise<void> {
  const master = new Redis({ host: '127.0.0.1', port });
  try {
    assert.equal(await master.wait(1, 5000), 1);
  } finally {
    master.disconnect();
  }
}

/** One round: a publish through A reaches B's subscriber, and a member joining on A is listed by B. */
async function deliversAndJoins(a: TestServer, b: TestServer, round: string): Promise<void> {
  const channel = await subscribed(b.client(), `news-${round}`);
  const headline = nextEvent(channel, 'headline');
  await a.sdk().trigger(`news-${round}`, 'headline', { round });
  assert.deepEqual(await headline, { round });
  const member = await subscribed<PresenceChannel>(a.client(authOptions(a.sdk(), { presence: { user_id: `u-${round}`, user_info: {} } })), 'presence-room');
  assert.ok(member.members.count >= 1);
  await eventually(async () => (await userIds(b.sdk(), 'presence-room')).includes(`u-${round}`), `u-${round} listed by B`);
}

test('through a Sentinel: two nodes deliver and share presence; the master killed, they move to the promoted replica and go on', async () => {
  const a = await node('sa');
  const b = await node('sb');
  await deliversAndJoins(a, b, 'before');
  const from = await sentinel.masterPort();
  await replicated(from);

  const old = sentinel.servers.find((s) => s.port === from)!;
  await old.stop();
  const to = await sentinel.failedOverFrom(from);
  assert.notEqual(to, from);
  await until(() => a.app.adapter.status().up && b.app.adapter.status().up, 'both nodes up again, on the promoted replica', 15_000);

  // What the master had replicated is kept; publishes and joins go to the new master.
  assert.deepEqual(await userIds(b.sdk(), 'presence-room'), ['u-before']);
  await deliversAndJoins(a, b, 'after');
  assert.deepEqual(await userIds(a.sdk(), 'presence-room'), ['u-after', 'u-before']);
  for (const server of [a, b]) {
    // Down once: the Sentinel's switch, announced after the nodes had reached the new master, left them there (it took
    // them down a second time: a probe).
    assert.equal(server.logs.filter((l) => l.event === 'adapter_down').length, 1, 'one outage for the failover');
    // Another server (its run id): read as a Redis back at an older state, the node's share recorded again and pruned.
    await until(() => server.logs.some((l) => l.event === 'node_share_pruned'), 'the share pruned after the failover', 10_000);
    assert.deepEqual(server.logs.filter((l) => l.level === 'error'), []);
  }
});

test('through a Sentinel: a master demoted while still running (SENTINEL FAILOVER) is left for the promoted one; joins, which write, go on', async () => {
  // Still reachable and answering, the old master refuses every write (READONLY) once it is a replica: a node that stayed
  // on it could publish (a replica takes PUBLISH, to no one) but join no one.
  const a = await node('da');
  const b = await node('db');
  await deliversAndJoins(a, b, 'before');
  const from = await sentinel.masterPort();
  await replicated(from);
  await sentinel.failover();
  const to = await sentinel.failedOverFrom(from);
  assert.notEqual(to, from);
  // Every connection of both nodes moves to the new master (CLIENT LIST names them: beacon-pub-…, beacon-sub-…), told by
  // the Sentinel's switch; meanwhile the API answers publishes 503, as while any engine is down.
  const promoted = new Redis({ host: '127.0.0.1', port: to });
  try {
    const named = async (): Promise<number> => ((await promoted.client('LIST')) as string).match(/name=beacon-(pub|sub)-/g)?.length ?? 0;
    await eventually(async () => (await named()) === 4, 'the four connections on the new master', 15_000);
  } finally {
    promoted.disconnect();
  }
  await until(() => a.app.adapter.status().up && b.app.adapter.status().up, 'both nodes up on the new master', 15_000);
  await deliversAndJoins(a, b, 'after');
  assert.deepEqual(await userIds(a.sdk(), 'presence-room'), ['u-after', 'u-before']);
  for (const server of [a, b]) assert.equal(server.logs.filter((l) => l.event === 'adapter_down').length, 1, 'one outage for the failover');
});
