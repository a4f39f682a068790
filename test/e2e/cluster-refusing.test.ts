/**
 * A real 3-master Redis Cluster with its default `cluster-require-full-coverage yes` (and a short `cluster-node-timeout`)
 * loses a master that has no replica: once the cluster marks it failed it answers CLUSTERDOWN for every slot, the other
 * shards' too. Beacon (ADAPTER=redis, REDIS_CLUSTER_NODES) then reads its engine as down — `adapter_down` with the
 * refusal as its reason, `/readyz` 503, every API publish refused 503 — instead of answering 200 for publishes the
 * cluster can only refuse; once the master is back and the cluster serves again, `adapter_up`, and publishes are
 * accepted and delivered.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { logLines } from '../helpers/logs.js';
import { RawClient } from '../helpers/raw-client.js';
import { slotMasters, startRedisCluster, type RedisClusterServer } from '../helpers/redis-cluster.js';
import { APP, startServer } from '../helpers/server.js';
import { signedFetch } from '../helpers/signed-fetch.js';
import { until } from '../helpers/wait.js';

const run = promisify(execFile);
const EVENTS = `/apps/${APP.id}/events`;
const UNAVAILABLE = { error: 'Cluster engine unavailable; retry' };

let cluster: RedisClusterServer;
before(async () => {
  cluster = await startRedisCluster();
  // A master is marked failed 1 s after it stops answering (15 s by default), and the cluster then refuses every slot.
  for (const { port } of cluster.nodes) await run('redis-cli', ['-p', String(port), 'config', 'set', 'cluster-node-timeout', '1000']);
});
after(async () => {
  await cluster?.stop();
});

const body = (value: unknown): { body: string } => ({ body: JSON.stringify(value) });

test('a cluster that refuses every slot (CLUSTERDOWN) is an engine down: /readyz 503, publishes 503; serving again, up', { timeout: 60_000 }, async () => {
  const server = await startServer({ ADAPTER: 'redis', REDIS_CLUSTER_NODES: cluster.env, NODE_ID: 'refusing' });
  let restarted: ChildProcess | undefined;
  try {
    await until(() => server.app.adapter.status().up, 'the cluster engine up', 10_000);
    const admin = new Redis(cluster.nodes[0]!);
    const { masterOf } = await slotMasters(admin).finally(() => admin.disconnect());
    // The victim holds neither the node list nor the channel: its loss alone makes the cluster refuse them.
    const victim = cluster.nodes.map((n) => `${n.host}:${n.port}`).find((m) => m !== masterOf('beacon:nodes'))!;
    let channel = '';
    for (let i = 0; channel === '' || masterOf(`beacon:{${APP.id}:${channel}}:ev`) === victim; i++) channel = `kept-${i}`;

    const { client } = await RawClient.established(server.port);
    client.answerPings();
    client.send({ event: 'pusher:subscribe', data: { channel } });
    await client.next((f) => f.event === 'pusher_internal:subscription_succeeded' && f.channel === channel);
    assert.equal((await signedFetch(server, 'POST', EVENTS, body({ name: 'before', channel, data: '{}' }))).status, 200);
    await client.next((f) => f.event === 'before');

    const victimPort = victim.split(':')[1]!;
    const info = (await run('redis-cli', ['-p', victimPort, 'info', 'server'])).stdout;
    const dir = (await run('redis-cli', ['-p', victimPort, '--raw', 'config', 'get', 'dir'])).stdout.split('\n')[1]!;
    process.kill(Number(/process_id:(\d+)/.exec(info)?.[1]), 'SIGKILL');

    // The cluster marks the master failed and refuses every slot; the node's next command (its heartbeat) reads it.
    await until(() => logLines(server, { event: 'adapter_down' }).length > 0, 'adapter_down', 15_000);
    const [down] = logLines(server, { event: 'adapter_down' });
    assert.match(String(down!.reason), /^CLUSTERDOWN/);
    assert.equal(server.app.adapter.status().up, false);
    assert.equal((await fetch(`http://127.0.0.1:${server.port}/readyz`)).status, 503);
    // A channel of a master that still runs: refused, not accepted and lost.
    const refused = await signedFetch(server, 'POST', EVENTS, body({ name: 'lost', channel, data: '{}' }));
    assert.deepEqual([refused.status, refused.body], [503, UNAVAILABLE]);

    // The master restarts (empty, same node id and slots from its nodes.conf); the cluster serves again.
    restarted = spawn(
      'redis-server',
      ['--port', victimPort, '--bind', '127.0.0.1', '--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${victimPort}.conf`,
        '--save', '', '--appendonly', 'no', '--dir', dir, '--cluster-node-timeout', '1000'],
      { stdio: 'ignore' },
    );
    // The second `adapter_up` (the first was at start).
    await until(() => logLines(server, { event: 'adapter_up' }).length === 2, 'adapter_up again', 15_000);
    assert.equal((await fetch(`http://127.0.0.1:${server.port}/readyz`)).status, 200);
    // Published until one is delivered, each accepted (the node's subscriber may still be reconnecting; bounded).
    let delivered = false;
    for (let i = 0; i < 40 && !delivered; i++) {
      const again = await signedFetch(server, 'POST', EVENTS, body({ name: 'again', channel, data: '{}' }));
      assert.deepEqual([again.status, again.body], [200, {}]);
      delivered = await client.next((f) => f.event === 'again', 500).then(() => true, () => false);
    }
    assert.ok(delivered, 'a publish after the cluster serves again was delivered');
    assert.equal(client.all('lost').length, 0);
    await client.close();
  } finally {
    await server.close();
    if (restarted !== undefined && restarted.exitCode === null && restarted.signalCode === null) {
      const exited = once(restarted, 'exit');
      restarted.kill('SIGKILL');
      await exited;
    }
  }
});
