/**
 * The Redis engine against a secured Redis, as managed offerings and production set-ups run it, with real Beacon processes
 * (compiled, as `npm start` runs them), real pusher-js clients and the `pusher` SDK:
 * - a Redis Cluster whose nodes ask for a password and speak only TLS (clients and cluster bus), with a certificate from a
 *   private authority the nodes trust through `NODE_EXTRA_CA_CERTS` (`REDIS_PASSWORD`, `REDIS_TLS`);
 * - the same announcing host names, with a certificate that names the host and no address;
 * - a single TLS-only Redis with an ACL user (`rediss://`, `REDIS_USERNAME` / `REDIS_PASSWORD`);
 * - a master and a replica behind a Sentinel, all TLS-only and asking for a password, across a failover.
 * Until these settings existed a Redis Cluster could be reached only without a password and without TLS.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import Pusher from 'pusher';
import { spawnBeacon, type BeaconProcess } from '../helpers/beacon-process.js';
import { nextEvent, subscribed } from '../helpers/pusher-events.js';
import { localClient } from '../helpers/pusher-js.js';
import { startRedis } from '../helpers/redis.js';
import { startRedisCluster } from '../helpers/redis-cluster.js';
import { SENTINEL_MASTER, startRedisSentinel } from '../helpers/redis-sentinel.js';
import { APP } from '../helpers/server.js';
import { makeCertificates, type TlsFiles } from '../helpers/tls-certs.js';
import { eventually, until } from '../helpers/wait.js';

const PASSWORD = 'cluster-secret';

let byAddress: TlsFiles;
let byName: TlsFiles;
before(async () => {
  [byAddress, byName] = await Promise.all([makeCertificates(['IP:127.0.0.1']), makeCertificates(['DNS:localhost'])]);
});
after(() => {
  byAddress?.remove();
  byName?.remove();
});

function sdk(node: BeaconProcess): Pusher {
  return new Pusher({ appId: APP.id, key: APP.key, secret: APP.secret, host: '127.0.0.1', port: String(node.port), useTLS: false });
}

/** A publish through `from`'s API reaches a pusher-js client of `to`; `from` lists the channel (read from Redis). */
async function deliversAcross(from: BeaconProcess, to: BeaconProcess, channelName: string): Promise<void> {
  const subscriber = localClient(to.port, APP.key);
  try {
    const channel = await subscribed(subscriber, channelName);
    const event = nextEvent(channel, 'headline');
    await sdk(from).trigger(channelName, 'headline', { over: 'tls' });
    assert.deepEqual(await event, { over: 'tls' });
    const listed = (await (await sdk(from).get({ path: '/channels' })).json()) as { channels: Record<string, unknown> };
    assert.ok(channelName in listed.channels, `${channelName} listed by the publishing node`);
  } finally {
    subscriber.disconnect();
  }
}

/**
 * No line of `node` at warn or worse but the quick start's secret warning (and the events `expected`): no refusal by
 * Redis (AUTH, TLS), no loss.
 */
function noComplaint(node: BeaconProcess, expected: readonly string[] = []): void {
  const lines = node.logs.map((l) => JSON.parse(l) as { level: string; event: string });
  const allowed = new Set(['config_warning', ...expected]);
  const complaints = lines.filter((l) => l.level !== 'info' && l.level !== 'debug' && !allowed.has(l.event));
  assert.deepEqual(complaints, []);
}

test('a Redis Cluster asking for a password over TLS only: two nodes deliver each other’s publishes (REDIS_PASSWORD, REDIS_TLS)', async () => {
  const cluster = await startRedisCluster({}, { password: PASSWORD, tls: byAddress });
  const env = {
    ADAPTER: 'redis',
    REDIS_CLUSTER_NODES: cluster.env,
    REDIS_PASSWORD: PASSWORD,
    REDIS_TLS: 'true',
    NODE_EXTRA_CA_CERTS: byAddress.ca,
  };
  const nodes: BeaconProcess[] = [];
  try {
    // Ready (GET /readyz 200) only once the engine is connected and subscribed: on every master, through TLS.
    nodes.push(await spawnBeacon({ ...env, NODE_ID: 'tls-a' }, { compiled: true }));
    nodes.push(await spawnBeacon({ ...env, NODE_ID: 'tls-b' }, { compiled: true }));
    const [a, b] = nodes as [BeaconProcess, BeaconProcess];
    // Channels on each master: every shard's sharded subscriber and commands go through TLS with the password.
    for (const name of ['news-1', 'news-2', 'news-3', 'news-4', 'news-5', 'news-6']) await deliversAcross(a, b, name);
    await deliversAcross(b, a, 'news-back');
    for (const node of nodes) noComplaint(node);
  } finally {
    await Promise.all(nodes.map((n) => n.stop('SIGKILL')));
    await cluster.stop();
  }
});

test('a TLS Redis Cluster announcing host names, its certificate naming the host and no address: reached by name', async () => {
  // As managed clusters run: the slot map names hosts (`cluster-preferred-endpoint-type hostname`) and the certificate
  // names them. The client resolved each name to an address before connecting and checked the certificate against it.
  const cluster = await startRedisCluster({}, { password: PASSWORD, tls: byName, announceHostname: 'localhost' });
  let node: BeaconProcess | undefined;
  try {
    node = await spawnBeacon(
      { ADAPTER: 'redis', REDIS_CLUSTER_NODES: cluster.env, REDIS_PASSWORD: PASSWORD, REDIS_TLS: 'true', NODE_EXTRA_CA_CERTS: byName.ca },
      { compiled: true },
    );
    assert.match(cluster.env, /^localhost:\d+,localhost:\d+,localhost:\d+$/);
    for (const name of ['news-1', 'news-2', 'news-3']) await deliversAcross(node, node, name);
    noComplaint(node);
  } finally {
    await node?.stop('SIGKILL');
    await cluster.stop();
  }
});

test('a single TLS-only Redis with an ACL user: rediss:// with REDIS_USERNAME and REDIS_PASSWORD', async () => {
  const redis = await startRedis({
    tls: byAddress,
    args: ['--requirepass', 'admin-only', '--user', 'beacon', 'on', '>beacon-secret', '~*', '&*', '+@all'],
  });
  let node: BeaconProcess | undefined;
  try {
    node = await spawnBeacon(
      {
        ADAPTER: 'redis',
        REDIS_URL: `rediss://127.0.0.1:${redis.port}`,
        REDIS_USERNAME: 'beacon',
        REDIS_PASSWORD: 'beacon-secret',
        NODE_EXTRA_CA_CERTS: byAddress.ca,
      },
      { compiled: true },
    );
    await deliversAcross(node, node, 'news');
    noComplaint(node);
  } finally {
    await node?.stop('SIGKILL');
    await redis.stop();
  }
});

test('Redis behind a Sentinel, TLS and passwords everywhere: REDIS_SENTINELS with REDIS_TLS, REDIS_PASSWORD and REDIS_SENTINEL_PASSWORD, across a failover', async () => {
  const sentinels = await startRedisSentinel({ password: PASSWORD, tls: byAddress });
  let node: BeaconProcess | undefined;
  try {
    node = await spawnBeacon(
      {
        ADAPTER: 'redis',
        REDIS_SENTINELS: sentinels.env,
        REDIS_SENTINEL_MASTER: SENTINEL_MASTER,
        REDIS_SENTINEL_PASSWORD: PASSWORD,
        REDIS_PASSWORD: PASSWORD,
        REDIS_TLS: 'true',
        NODE_EXTRA_CA_CERTS: byAddress.ca,
      },
      { compiled: true },
    );
    await deliversAcross(node, node, 'news-before');
    const from = await sentinels.masterPort();
    await sentinels.failover();
    await sentinels.failedOverFrom(from);
    // Down for the switch (through TLS to the Sentinel), then up on the new master.
    const engine = node;
    await until(() => engine.logs.some((l) => l.includes('"event":"adapter_down"')), "the node's outage");
    await eventually(async () => (await fetch(`${engine.url}/readyz`)).status === 200, 'ready again', 15_000);
    await deliversAcross(node, node, 'news-after');
    noComplaint(node, ['adapter_down', 'adapter_still_down']);
  } finally {
    await node?.stop('SIGKILL');
    await sentinels.stop();
  }
});
