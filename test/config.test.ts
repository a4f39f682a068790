import assert from 'node:assert/strict';
import { telemetryOptionsFromEnv } from '../otel/options.js';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { hostPort } from '../src/listen-address.js';
import { ConfigError, configWarnings, envWarnings, loadConfig } from '../src/config.js';

/** A fresh APPS_FILE holding `apps`; its path. */
function appsFile(apps: unknown[]): string {
  const file = join(mkdtempSync(join(tmpdir(), 'beacon-config-')), 'apps.json');
  writeFileSync(file, JSON.stringify({ apps }));
  return file;
}

test('defaults: port 6001, one app, activity timeout 120, client events off', () => {
  const c = loadConfig({});
  assert.equal(c.port, 6001);
  assert.equal(c.activityTimeoutSeconds, 120);
  assert.equal(c.maxPayloadBytes, 100_000);
  assert.equal(c.apps.length, 1);
  assert.deepEqual(
    { id: c.apps[0]?.id, key: c.apps[0]?.key, clientEvents: c.apps[0]?.enableClientEvents, rate: c.apps[0]?.clientEventsPerSecond },
    { id: 'app-id', key: 'app-key', clientEvents: false, rate: 10 },
  );
});

test('subscription_count is opt-in per app: off by default, APP_ENABLE_SUBSCRIPTION_COUNT or enableSubscriptionCount turn it on', () => {
  assert.equal(loadConfig({}).apps[0]?.enableSubscriptionCount, false);
  assert.equal(loadConfig({ APP_ENABLE_SUBSCRIPTION_COUNT: 'true' }).apps[0]?.enableSubscriptionCount, true);
  assert.throws(() => loadConfig({ APP_ENABLE_SUBSCRIPTION_COUNT: 'maybe' }), /APP_ENABLE_SUBSCRIPTION_COUNT/);
  const dir = mkdtempSync(join(tmpdir(), 'beacon-config-'));
  const file = join(dir, 'apps.json');
  writeFileSync(
    file,
    JSON.stringify({ apps: [{ id: 'a', key: 'ka', secret: 'sa', enableSubscriptionCount: true }, { id: 'b', key: 'kb', secret: 'sb' }] }),
  );
  assert.deepEqual(
    loadConfig({ APPS_FILE: file }).apps.map((a) => [a.id, a.enableSubscriptionCount]),
    [
      ['a', true],
      ['b', false],
    ],
  );
  writeFileSync(file, JSON.stringify({ apps: [{ id: 'a', key: 'ka', secret: 'sa', enableSubscriptionCount: 'yes' }] }));
  assert.throws(() => loadConfig({ APPS_FILE: file }), /enableSubscriptionCount/);
});

test('Redis credentials and TLS: REDIS_USERNAME needs REDIS_PASSWORD; credentials in REDIS_URL or in the variables, not both', () => {
  const plain = loadConfig({});
  assert.deepEqual([plain.redisUsername, plain.redisPassword, plain.redisTls], [undefined, undefined, false]);
  const cluster = loadConfig({ REDIS_CLUSTER_NODES: 'r1:7000', REDIS_USERNAME: 'beacon', REDIS_PASSWORD: 'p:w@', REDIS_TLS: 'true' });
  assert.deepEqual([cluster.redisUsername, cluster.redisPassword, cluster.redisTls], ['beacon', 'p:w@', true]);
  assert.equal(loadConfig({ REDIS_URL: 'rediss://r1:6380', REDIS_PASSWORD: 'secret' }).redisPassword, 'secret');
  assert.throws(() => loadConfig({ REDIS_USERNAME: 'beacon' }), /^ConfigError: REDIS_USERNAME: needs REDIS_PASSWORD/);
  assert.throws(() => loadConfig({ REDIS_URL: 'redis://:old@r1:6379', REDIS_PASSWORD: 'new' }), /REDIS_PASSWORD: REDIS_URL holds credentials already/);
  assert.throws(() => loadConfig({ REDIS_URL: 'redis://u:p@r1:6379', REDIS_USERNAME: 'u', REDIS_PASSWORD: 'p' }), /REDIS_PASSWORD: REDIS_URL holds/);
  // With REDIS_CLUSTER_NODES the URL is not used, its credentials with it.
  assert.equal(loadConfig({ REDIS_URL: 'redis://:old@r1:6379', REDIS_CLUSTER_NODES: 'r1:7000', REDIS_PASSWORD: 'new' }).redisPassword, 'new');
  assert.throws(() => loadConfig({ REDIS_TLS: 'sometimes' }), /REDIS_TLS/);
});

test('Redis Sentinel: REDIS_SENTINELS and REDIS_SENTINEL_MASTER, not with a Redis Cluster; the URL and its credentials unused', () => {
  const plain = loadConfig({});
  assert.deepEqual([plain.redisSentinels, plain.redisSentinelMaster, plain.redisSentinelPassword], [[], 'mymaster', undefined]);
  const sentinels = loadConfig({ REDIS_SENTINELS: 's1:26379, s2:26379', REDIS_SENTINEL_MASTER: 'beacon', REDIS_SENTINEL_PASSWORD: 'sp' });
  assert.deepEqual(sentinels.redisSentinels, [
    { host: 's1', port: 26379 },
    { host: 's2', port: 26379 },
  ]);
  assert.deepEqual([sentinels.redisSentinelMaster, sentinels.redisSentinelPassword], ['beacon', 'sp']);
  assert.throws(() => loadConfig({ REDIS_SENTINELS: 's1' }), /REDIS_SENTINELS: host:port/);
  assert.throws(() => loadConfig({ REDIS_SENTINEL_PASSWORD: 'sp' }), /REDIS_SENTINEL_PASSWORD: only with REDIS_SENTINELS/);
  // A master name without Sentinels would be ignored (the engine would use REDIS_URL): refused, as the password is.
  assert.throws(() => loadConfig({ REDIS_SENTINEL_MASTER: 'beacon' }), /REDIS_SENTINEL_MASTER: only with REDIS_SENTINELS/);
  assert.equal(loadConfig({ REDIS_SENTINELS: 's1:26379' }).redisSentinelMaster, 'mymaster');
  // The Sentinels' own ACL user: with its password, and only with Sentinels.
  const user = loadConfig({ REDIS_SENTINELS: 's1:26379', REDIS_SENTINEL_USERNAME: 'beacon-s', REDIS_SENTINEL_PASSWORD: 'sp' });
  assert.deepEqual([plain.redisSentinelUsername, user.redisSentinelUsername], [undefined, 'beacon-s']);
  assert.throws(() => loadConfig({ REDIS_SENTINELS: 's1:26379', REDIS_SENTINEL_USERNAME: 'beacon-s' }), /REDIS_SENTINEL_USERNAME: needs REDIS_SENTINEL_PASSWORD/);
  assert.throws(() => loadConfig({ REDIS_SENTINEL_USERNAME: 'beacon-s', REDIS_SENTINEL_PASSWORD: 'sp' }), /REDIS_SENTINEL_USERNAME: only with REDIS_SENTINELS/);
  assert.throws(() => loadConfig({ REDIS_SENTINELS: 's1:26379', REDIS_CLUSTER_NODES: 'r1:7000' }), /REDIS_SENTINELS: REDIS_CLUSTER_NODES is set too/);
  assert.equal(loadConfig({ REDIS_URL: 'redis://:old@r1:6379', REDIS_SENTINELS: 's1:26379', REDIS_PASSWORD: 'new' }).redisPassword, 'new');
});

test('an invalid value names its variable', () => {
  assert.throws(() => loadConfig({ PORT: 'eighty' }), (e: unknown) => e instanceof ConfigError && /PORT/.test(e.message));
  assert.throws(() => loadConfig({ APP_ENABLE_CLIENT_EVENTS: 'maybe' }), /APP_ENABLE_CLIENT_EVENTS/);
  assert.throws(() => loadConfig({ ACTIVITY_TIMEOUT: '0' }), /ACTIVITY_TIMEOUT/);
  assert.throws(() => loadConfig({ APP_KEY: 'has space' }), /APP_KEY/);
  assert.throws(() => loadConfig({ LOG_LEVEL: 'loud' }), /LOG_LEVEL/);
});

test('APPS_FILE gives several apps and is validated', () => {
  const dir = mkdtempSync(join(tmpdir(), 'beacon-config-'));
  const file = join(dir, 'apps.json');
  writeFileSync(
    file,
    JSON.stringify({
      apps: [
        { id: 'a', key: 'ka', secret: 'sa', enableClientEvents: true },
        { id: 'b', key: 'kb', secret: 'sb', enabled: false, maxConnections: 5 },
      ],
    }),
  );
  const c = loadConfig({ APPS_FILE: file });
  assert.deepEqual(
    c.apps.map((a) => [a.id, a.enabled, a.enableClientEvents, a.maxConnections]),
    [
      ['a', true, true, 0],
      ['b', false, false, 5],
    ],
  );
  writeFileSync(file, JSON.stringify({ apps: [{ id: 'a', key: 'k', secret: 's' }, { id: 'a', key: 'k2', secret: 's' }] }));
  assert.throws(() => loadConfig({ APPS_FILE: file }), /duplicate app id "a" \(apps\.0 and apps\.1\)/);
  // A misspelt setting is refused, naming it: ignored, it left the app without the quota it meant.
  writeFileSync(file, JSON.stringify({ apps: [{ id: 'a', key: 'k', secret: 's', maxConection: 5 }] }));
  assert.throws(() => loadConfig({ APPS_FILE: file }), /APPS_FILE.*maxConection/);
  writeFileSync(file, JSON.stringify({ apps: [{ id: 'a', key: 'k', secret: 's' }], webhook: 'x' }));
  assert.throws(() => loadConfig({ APPS_FILE: file }), /APPS_FILE.*webhook/);
  writeFileSync(file, JSON.stringify({ apps: [{ id: 'a', key: 'k' }] }));
  assert.throws(() => loadConfig({ APPS_FILE: file }), /APPS_FILE.*secret/);
  assert.throws(() => loadConfig({ APPS_FILE: join(dir, 'missing.json') }), /APPS_FILE: cannot read/);
});

test('webhooks: APP_WEBHOOK_URL is the all-types shorthand (but subscription_count), APP_WEBHOOKS and APPS_FILE give a list, both validated', () => {
  const all = ['channel_occupied', 'channel_vacated', 'member_added', 'member_removed', 'client_event', 'cache_miss'];
  const shorthand = loadConfig({ APP_WEBHOOK_URL: 'http://127.0.0.1:9/all' }).apps[0]?.webhooks;
  assert.deepEqual(shorthand, [
    { url: 'http://127.0.0.1:9/all', eventTypes: all, channelNameStartsWith: undefined, channelNameEndsWith: undefined, headers: {} },
  ]);
  assert.deepEqual(loadConfig({}).apps[0]?.webhooks, []);

  const listed = [
    {
      url: 'https://hooks.example.test/presence',
      eventTypes: ['member_added', 'member_removed'],
      filter: { channelNameStartsWith: 'presence-', channelNameEndsWith: '-team' },
      headers: { Authorization: 'Bearer t0ken' },
    },
  ];
  const both = loadConfig({ APP_WEBHOOK_URL: 'http://127.0.0.1:9/all', APP_WEBHOOKS: JSON.stringify(listed) }).apps[0]?.webhooks;
  assert.equal(both?.length, 2, 'the shorthand first, then the list');
  assert.deepEqual(both?.[1], {
    url: 'https://hooks.example.test/presence',
    eventTypes: ['member_added', 'member_removed'],
    channelNameStartsWith: 'presence-',
    channelNameEndsWith: '-team',
    headers: { Authorization: 'Bearer t0ken' },
  });

  const bad = (webhooks: unknown) => loadConfig({ APP_WEBHOOKS: JSON.stringify(webhooks) });
  assert.throws(() => loadConfig({ APP_WEBHOOKS: '[' }), /APP_WEBHOOKS: not JSON/);
  assert.throws(() => bad([{ url: 'http://x.test/', eventTypes: [] }]), /APP_WEBHOOKS\.0\.eventTypes/);
  assert.throws(() => bad([{ url: 'http://x.test/', eventTypes: ['channel_exploded'] }]), /APP_WEBHOOKS\.0\.eventTypes/);
  assert.throws(() => bad([{ url: 'ftp://x.test/', eventTypes: ['cache_miss'] }]), /APP_WEBHOOKS\.0\.url/);
  assert.throws(() => bad([{ url: 'http://x.test/', eventTypes: ['cache_miss'], headers: { 'X-Pusher-Signature': 'forged' } }]), /headers/);
  assert.throws(() => bad([{ url: 'http://x.test/', eventTypes: ['cache_miss'], headers: { 'X-A': 'one\r\nX-B: two' } }]), /headers/);
  assert.throws(() => bad([{ url: 'http://x.test/', eventTypes: ['cache_miss'], filter: { prefix: 'a' } }]), /filter/);
  // What Node's HTTP client would refuse or frame wrongly on every request: a control character or a character past
  // Latin-1 in a value, the message's framing headers.
  for (const headers of [{ 'X-A': '\u0001' }, { 'X-A': 'caf€' }, { 'Transfer-Encoding': 'chunked' }, { Connection: 'close' }]) {
    assert.throws(() => bad([{ url: 'http://x.test/', eventTypes: ['cache_miss'], headers }]), /APP_WEBHOOKS\.0\.headers/, JSON.stringify(headers));
  }
  assert.deepEqual(loadConfig({ APP_WEBHOOKS: JSON.stringify([{ url: 'http://x.test/', eventTypes: ['cache_miss'], headers: { 'X-A': 'café\tb' } }]) }).apps[0]?.webhooks[0]?.headers, {
    'X-A': 'café\tb',
  });
  // The shorthands take only what a webhook can be sent to, as the list does.
  assert.throws(() => loadConfig({ APP_WEBHOOK_URL: 'ftp://127.0.0.1:9/x' }), /APP_WEBHOOK_URL: an http:\/\/ or https:\/\/ URL/);
  // A queue must hold a whole batch: below it, events were dropped with the receiver healthy.
  assert.throws(() => loadConfig({ WEBHOOK_MAX_PENDING_EVENTS: '20' }), /WEBHOOK_MAX_PENDING_EVENTS: at least WEBHOOK_BATCH_MAX_EVENTS \(50\)/);
  assert.equal(loadConfig({ WEBHOOK_MAX_PENDING_EVENTS: '20', WEBHOOK_BATCH_MAX_EVENTS: '20' }).webhookMaxPendingEvents, 20);
  // And the largest client event: below it, every one of that size was dropped with the receiver healthy.
  assert.throws(
    () => loadConfig({ WEBHOOK_MAX_PENDING_BYTES: '100000' }),
    /WEBHOOK_MAX_PENDING_BYTES: at least MAX_PAYLOAD_BYTES \+ 1024 \(101024\)/,
  );
  assert.equal(loadConfig({}).webhookMaxPendingBytes, 64 * 1024 * 1024);
  assert.throws(() => bad(Array.from({ length: 11 }, () => ({ url: 'http://x.test/', eventTypes: ['cache_miss'] }))), /APP_WEBHOOKS/);

  const dir = mkdtempSync(join(tmpdir(), 'beacon-config-'));
  const file = join(dir, 'apps.json');
  writeFileSync(file, JSON.stringify({ apps: [{ id: 'a', key: 'ka', secret: 'sa', webhookUrl: 'http://127.0.0.1:9/a', webhooks: listed }] }));
  assert.deepEqual(
    loadConfig({ APPS_FILE: file }).apps[0]?.webhooks.map((w) => w.url),
    ['http://127.0.0.1:9/a', 'https://hooks.example.test/presence'],
  );
  writeFileSync(file, JSON.stringify({ apps: [{ id: 'a', key: 'ka', secret: 'sa', webhooks: [{ url: 'http://x.test/' }] }] }));
  assert.throws(() => loadConfig({ APPS_FILE: file }), /APPS_FILE.*webhooks\.0\.eventTypes/);
  writeFileSync(file, JSON.stringify({ apps: [{ id: 'a', key: 'ka', secret: 'sa', webhookUrl: 'ftp://127.0.0.1:9/a' }] }));
  assert.throws(() => loadConfig({ APPS_FILE: file }), /APPS_FILE.*webhookUrl: an http:\/\/ or https:\/\/ URL/);
});

test('webhooks: subscription_count is an event type a listed webhook may take; the APP_WEBHOOK_URL shorthand leaves it out', () => {
  const listed = [{ url: 'http://127.0.0.1:9/counts', eventTypes: ['subscription_count'] }];
  const webhooks = loadConfig({ APP_WEBHOOK_URL: 'http://127.0.0.1:9/all', APP_WEBHOOKS: JSON.stringify(listed) }).apps[0]?.webhooks;
  assert.deepEqual(webhooks?.[1]?.eventTypes, ['subscription_count']);
  // Only a webhook that asks for it: a receiver of the shorthand hears nothing new when its app turns counting on.
  assert.equal(webhooks?.[0]?.eventTypes.includes('subscription_count'), false);
});

test('values derived from settings are computed by the schema once: the API body limit, the Redis Cluster seed nodes', () => {
  // The longest valid request with every string escaped, and the envelope: a data byte takes up to six bytes in JSON
  // (`\u001f`), a name's character twelve (`\ud83d\ude00`), an ASCII one six (`\u0061`); a channel is at most a
  // `#server-to-user-` one of the longest user id (16 + 128 characters), or MAX_CHANNEL_NAME_LENGTH ASCII ones; each
  // written in quotes with a comma; each event has 128 bytes for its members' names and a socket_id.
  const channel = 16 * 6 + 128 * 12 + 3;
  const batchOf = (data: number, batch: number) => batch * (data * 6 + 200 * 12 + channel + 128);
  const publishOf = (data: number, channels: number) => data * 6 + 200 * 12 + channels * channel + 128;
  assert.equal(loadConfig({}).apiBodyLimitBytes, batchOf(100_000, 10) + 64 * 1024);
  assert.ok(batchOf(100_000, 10) > publishOf(100_000, 100));
  // A small batch: one event to MAX_CHANNELS_PER_PUBLISH (100) channels is the longer request.
  assert.equal(loadConfig({ MAX_PAYLOAD_BYTES: '2048', MAX_BATCH_SIZE: '3' }).apiBodyLimitBytes, publishOf(2048, 100) + 64 * 1024);
  assert.ok(publishOf(2048, 100) > batchOf(2048, 3));
  assert.deepEqual(loadConfig({}).redisClusterNodes, []);
  assert.deepEqual(loadConfig({ REDIS_CLUSTER_NODES: '10.0.0.1:7000, redis-b:7001' }).redisClusterNodes, [
    { host: '10.0.0.1', port: 7000 },
    { host: 'redis-b', port: 7001 },
  ]);
  assert.throws(() => loadConfig({ REDIS_CLUSTER_NODES: 'a:1,b' }), /^ConfigError: REDIS_CLUSTER_NODES: host:port/);
  // Several bad values: every one is named, each with what was expected.
  assert.throws(
    () => loadConfig({ PORT: '70000', MAX_BATCH_SIZE: 'ten' }),
    (e: unknown) => e instanceof ConfigError && /PORT: .*65535/.test(e.message) && /MAX_BATCH_SIZE: .*number/.test(e.message),
  );
});

test('HOST is checked as METRICS_HOST is: an IP address (IPv6 without brackets) or a host name; lines write IPv6 in brackets', () => {
  // A probe: HOST=[::1] passed the check and failed at listen (ENOTFOUND), where METRICS_HOST=[::1] was refused up front;
  // and `beacon listening on ::1:6001` read as the address ::1:6001.
  for (const good of ['0.0.0.0', '::', '::1', 'localhost', 'beacon_1', 'node.example.']) assert.equal(loadConfig({ HOST: good }).host, good);
  for (const bad of ['[::1]', '999.1.1.1', 'a b', '::1:6001:x']) {
    assert.throws(() => loadConfig({ HOST: bad }), /HOST: not an IP address or host name/, bad);
  }
  assert.equal(hostPort('::1', 6001), '[::1]:6001');
  assert.equal(hostPort('127.0.0.1', 6001), '127.0.0.1:6001');
  assert.equal(hostPort('localhost', 9464), 'localhost:9464');
});

test('TRUST_PROXY: false by default; true, or a list of addresses, CIDRs and named ranges; anything else names the variable', () => {
  assert.equal(loadConfig({}).trustProxy, false);
  assert.equal(loadConfig({ TRUST_PROXY: 'false' }).trustProxy, false);
  assert.equal(loadConfig({ TRUST_PROXY: 'true' }).trustProxy, true);
  assert.equal(loadConfig({ TRUST_PROXY: ' 10.0.0.0/8, loopback,::1 ,fd00::/8' }).trustProxy, '10.0.0.0/8,loopback,::1,fd00::/8');
  // A /0 (every address of a family) is its family's two halves: proxy-addr refuses a prefix of 0, and the process
  // stopped at start with a TypeError's stack.
  assert.equal(loadConfig({ TRUST_PROXY: '0.0.0.0/0' }).trustProxy, '0.0.0.0/1,128.0.0.0/1');
  assert.equal(loadConfig({ TRUST_PROXY: '10.0.0.0/8,::/00' }).trustProxy, '10.0.0.0/8,::/1,8000::/1');
  for (const bad of ['2', '10.0.0.0/33', 'proxy.internal', '10.0.0.1,', '::1/129']) {
    assert.throws(() => loadConfig({ TRUST_PROXY: bad }), /TRUST_PROXY/, bad);
  }
  // A hop count is refused, `1` included: it was read as `true` (every hop trusted), where Express and fastify read one
  // hop — an operator meaning "the load balancer" let every client name its own address.
  for (const hops of ['1', '2', '01']) {
    assert.throws(() => loadConfig({ TRUST_PROXY: hops }), /TRUST_PROXY.*hop count is not supported/, hops);
  }
  assert.equal(loadConfig({ TRUST_PROXY: '0' }).trustProxy, false);
  assert.equal(loadConfig({ TRUST_PROXY: 'yes' }).trustProxy, true);
});

test('OTEL_RESOURCE_ATTRIBUTES names the log lines as it names the telemetry resource: service.name, env, instance id', () => {
  // Before, `service.name=foo` there renamed the spans and target_info, while every log line still said "beacon".
  const named = loadConfig({
    OTEL_RESOURCE_ATTRIBUTES: 'service.name=chat%20rt,deployment.environment.name=prod,service.instance.id=n-7,team=x',
    DEPLOYMENT_ENV: 'staging',
    NODE_ID: 'n-1',
  });
  assert.deepEqual([named.serviceName, named.env, named.nodeId], ['chat rt', 'prod', 'n-7']);
  // OTEL_SERVICE_NAME wins over the attribute, as in the SDK; what the attributes leave out stays as configured.
  const both = loadConfig({ OTEL_SERVICE_NAME: 'svc', OTEL_RESOURCE_ATTRIBUTES: 'service.name=foo', DEPLOYMENT_ENV: 'staging' });
  assert.deepEqual([both.serviceName, both.env], ['svc', 'staging']);
  // One malformed entry and the SDK takes none of them: neither do the lines.
  const malformed = loadConfig({ OTEL_RESOURCE_ATTRIBUTES: 'service.name=foo,broken' });
  assert.equal(malformed.serviceName, 'beacon');
  // The telemetry resource is named the same way in each case (otel/options.ts: `defaultServiceName` is set when the
  // attributes name no service the SDK takes).
  assert.equal(telemetryOptionsFromEnv({ OTEL_RESOURCE_ATTRIBUTES: 'service.name=foo,broken' }).defaultServiceName, 'beacon');
  assert.equal(telemetryOptionsFromEnv({ OTEL_RESOURCE_ATTRIBUTES: 'service.name=foo' }).defaultServiceName, undefined);
  // A blank OTEL_SERVICE_NAME is unset, for the SDK and for the lines alike.
  assert.equal(loadConfig({ OTEL_SERVICE_NAME: ' ', OTEL_RESOURCE_ATTRIBUTES: 'service.name=foo' }).serviceName, 'foo');
});

test('a subscription cap not below the frame budget is said at start-up, not refused', () => {
  // pusher-js resubscribes every channel in one burst when it reconnects: past the budget those subscribes get 4301, not
  // an answer on their channels (a review raised the cap to 1 000 and sent them at once).
  assert.deepEqual(configWarnings(loadConfig({ APP_SECRET: 's3cret' })), []);
  assert.deepEqual(
    configWarnings(loadConfig({ APP_SECRET: 's3cret', FRAME_RATE_LIMIT_PER_SECOND: '0', MAX_SUBSCRIPTIONS_PER_CONNECTION: '5000' })),
    [],
  );
  const [warning, ...rest] = configWarnings(loadConfig({ APP_SECRET: 's3cret', FRAME_RATE_LIMIT_PER_SECOND: '100' }));
  assert.deepEqual(rest, []);
  assert.deepEqual(warning?.variables, ['MAX_SUBSCRIPTIONS_PER_CONNECTION', 'FRAME_RATE_LIMIT_PER_SECOND']);
  assert.match(warning?.message ?? '', /^MAX_SUBSCRIPTIONS_PER_CONNECTION \(100\) is not below FRAME_RATE_LIMIT_PER_SECOND \(100\)/);
});

test('a shutdown grace not below the shutdown deadline is said at start-up, not refused', () => {
  // A probe: SHUTDOWN_GRACE_MS=5000 with SHUTDOWN_TIMEOUT_MS=2000 started without a word, and every shutdown with a client
  // connected then exited 1 (timed out) although every client got 4200 and every accepted publish was delivered.
  const secret = { APP_SECRET: 's3cret' };
  assert.deepEqual(configWarnings(loadConfig({ ...secret, SHUTDOWN_GRACE_MS: '1999', SHUTDOWN_TIMEOUT_MS: '2000' })), []);
  const [warning, ...rest] = configWarnings(loadConfig({ ...secret, SHUTDOWN_GRACE_MS: '5000', SHUTDOWN_TIMEOUT_MS: '2000' }));
  assert.deepEqual(rest, []);
  assert.deepEqual(warning?.variables, ['SHUTDOWN_GRACE_MS', 'SHUTDOWN_TIMEOUT_MS']);
  assert.match(warning?.message ?? '', /^SHUTDOWN_GRACE_MS \(5000\) is not below SHUTDOWN_TIMEOUT_MS \(2000\)/);
});

test('the public default secret is said at start-up; a blank secret, node id or deployment name is refused, naming the variable', () => {
  // The quick start runs on app-secret; a deployment that forgot APP_SECRET, or filled it from an empty variable (empty is
  // unset), ran on it without a word, and APP_SECRET=" " started an app with a blank secret.
  for (const env of [{}, { APP_SECRET: '' }]) {
    const [warning, ...rest] = configWarnings(loadConfig(env));
    assert.deepEqual(rest, []);
    assert.deepEqual(warning?.variables, ['APP_SECRET']);
    assert.match(warning?.message ?? '', /^app app-id signs with the public default secret "app-secret" \(APP_SECRET unset or empty\)/);
  }
  // From APPS_FILE, the file is what to change (the review: the line named APP_SECRET, set or not), and which app.
  const file = appsFile([
    { id: 'one', key: 'one-key', secret: 's1' },
    { id: 'two', key: 'two-key', secret: 'app-secret' },
  ]);
  const [fromFile, ...others] = configWarnings(loadConfig({ APPS_FILE: file, APP_SECRET: 'ignored' }));
  assert.deepEqual(others, []);
  assert.deepEqual(fromFile?.variables, ['APPS_FILE']);
  assert.match(fromFile?.message ?? '', /^app two signs with the public default secret "app-secret" \(its secret in APPS_FILE\)/);
  assert.deepEqual(configWarnings(loadConfig({ APP_SECRET: 'app-secret-2' })), []);
  for (const blank of [' ', '\t \n']) {
    assert.throws(() => loadConfig({ APP_SECRET: blank }), (err: Error) => err instanceof ConfigError && /^APP_SECRET: blank$/.test(err.message));
  }
  // The node's and the deployment's names too: a blank one named every line, label and Redis key by a space.
  for (const variable of ['NODE_ID', 'DEPLOYMENT_ENV']) {
    assert.throws(() => loadConfig({ APP_SECRET: 's', [variable]: ' ' }), new RegExp(`^ConfigError: ${variable}: blank$`));
  }
  assert.throws(
    () => loadConfig({ APPS_FILE: appsFile([{ id: 'one', key: 'one-key', secret: '  ' }]) }),
    (err: Error) => err instanceof ConfigError && /APPS_FILE\.apps\.0\.secret: blank/.test(err.message),
  );
});

test('a number setting is whole decimal digits: blank, hexadecimal or exponent values are refused, naming the variable', () => {
  // A probe: FRAME_RATE_LIMIT_PER_SECOND=" " started with no frame limit (Number(" ") is 0), PORT=" " on any free port,
  // PORT=0x4BC9 on 19401 and PORT=1e4 on 10000.
  for (const [variable, value] of [
    ['FRAME_RATE_LIMIT_PER_SECOND', ' '],
    ['PORT', ' '],
    ['SHUTDOWN_GRACE_MS', '\t'],
    ['PORT', '0x4BC9'],
    ['PORT', '1e4'],
    ['MAX_PAYLOAD_BYTES', '2048.0'],
    ['ACTIVITY_TIMEOUT', '-5'],
  ] as const) {
    assert.throws(
      () => loadConfig({ [variable]: value }),
      (err: unknown) => err instanceof ConfigError && err.message === `${variable}: not a number`,
      `${variable}=${JSON.stringify(value)}`,
    );
  }
  // Spaces around the digits are read as the number; the bounds still apply.
  assert.equal(loadConfig({ FRAME_RATE_LIMIT_PER_SECOND: ' 50 ' }).frameRateLimitPerSecond, 50);
  assert.throws(() => loadConfig({ PORT: '65536' }), /^ConfigError: PORT: Too big/);
});

test('LOKI_URL is an http:// or https:// URL', () => {
  // A probe: LOKI_URL=ftp://… started, every push failed with a TypeError, and a shutdown waited its whole deadline.
  assert.throws(() => loadConfig({ LOKI_URL: 'ftp://127.0.0.1:3100' }), /LOKI_URL: an http:\/\/ or https:\/\/ URL/);
  assert.equal(loadConfig({ LOKI_URL: 'https://logs.example.com' }).lokiUrl, 'https://logs.example.com');
  // The push URL itself (as Alloy and Promtail are configured): every push went to …/push/loki/api/v1/push, 404.
  for (const url of ['http://loki:3100/loki/api/v1/push', 'http://loki:3100/loki/api/v1/push/']) {
    assert.throws(() => loadConfig({ LOKI_URL: url }), /LOKI_URL: Loki's base URL .*without \/loki\/api\/v1\/push/, url);
  }
  assert.equal(loadConfig({ LOKI_URL: 'https://gw.example.com/tenant-a' }).lokiUrl, 'https://gw.example.com/tenant-a');
  assert.throws(() => loadConfig({ LOKI_URL: 'http://[::1:3100' }), (e: unknown) => e instanceof ConfigError && /^LOKI_URL: /.test(e.message));
});

test('Loki settings every push would fail with are refused at start', () => {
  // A probe: each started, every push failed before a request was sent (retried until shutdown, counted as `shutdown`),
  // or went without the basic auth the README promises.
  assert.throws(() => loadConfig({ LOKI_URL: 'http://user:pass@127.0.0.1:3100' }), /LOKI_URL: no credentials in the URL/);
  // Not a URL: the URL check's own error, not a TypeError of the credentials check (the review).
  assert.throws(() => loadConfig({ LOKI_URL: 'not a url' }), (err: Error) => err.name === 'ConfigError' && /LOKI_URL/.test(err.message));
  assert.throws(() => loadConfig({ LOKI_TENANT_ID: 'tenant✓' }), /LOKI_TENANT_ID: one line of visible ASCII or Latin-1/);
  assert.throws(() => loadConfig({ LOKI_USERNAME: 'beacon' }), /LOKI_PASSWORD: LOKI_USERNAME and LOKI_PASSWORD go together/);
  assert.throws(() => loadConfig({ LOKI_PASSWORD: 'secret' }), /LOKI_USERNAME: LOKI_USERNAME and LOKI_PASSWORD go together/);
  assert.throws(() => loadConfig({ LOKI_USERNAME: 'a:b', LOKI_PASSWORD: 'secret' }), /LOKI_USERNAME: no colon/);
  const both = loadConfig({ LOKI_URL: 'http://127.0.0.1:3100', LOKI_USERNAME: 'beacon', LOKI_PASSWORD: 'p:w', LOKI_TENANT_ID: 'tenant-1' });
  assert.deepEqual([both.lokiUsername, both.lokiPassword, both.lokiTenantId], ['beacon', 'p:w', 'tenant-1']);
});

test('REDIS_URL names a database by number or none; REDIS_KEY_PREFIX keeps deployments on one Redis apart, a database does not', () => {
  // `redis://host/beacon` passed, and the engine's `SELECT NaN` failed after server_started: the process died with a stack.
  for (const url of ['redis://127.0.0.1:6379/beacon', 'redis://127.0.0.1:6379/1x', 'redis://127.0.0.1:6379/1/2', 'redis://h:6379?db=beacon']) {
    assert.throws(() => loadConfig({ REDIS_URL: url }), /^ConfigError: REDIS_URL: .*database number/, url);
  }
  // Not a URL at all: the URL check's own answer, not the database check's TypeError.
  for (const url of ['127.0.0.1:6379', 'redis://[::1:6379', 'redis://a b:6379']) {
    assert.throws(() => loadConfig({ REDIS_URL: url }), (e: unknown) => e instanceof ConfigError && /^REDIS_URL: /.test(e.message), url);
  }
  for (const url of ['redis://127.0.0.1:6379', 'redis://127.0.0.1:6379/', 'redis://127.0.0.1:6379/0', 'rediss://r:6380/15']) {
    assert.equal(loadConfig({ REDIS_URL: url }).redisUrl, url);
  }
  assert.equal(loadConfig({}).redisKeyPrefix, 'beacon');
  assert.equal(loadConfig({ REDIS_KEY_PREFIX: 'staging.beacon' }).redisKeyPrefix, 'staging.beacon');
  for (const prefix of ['a{b}', 'has space', 'x'.repeat(65)]) {
    assert.throws(() => loadConfig({ REDIS_KEY_PREFIX: prefix }), /^ConfigError: REDIS_KEY_PREFIX: /, prefix);
  }
  // Pub/sub is one namespace for all of a Redis server's databases: two deployments on databases 1 and 2 had each
  // other's publishes delivered. Said when a database is chosen and the prefix is the default.
  const secret = { APP_SECRET: 's3cret', ADAPTER: 'redis' };
  assert.deepEqual(configWarnings(loadConfig({ ...secret, REDIS_URL: 'redis://r:6379/0' })), []);
  const [warning, ...more] = configWarnings(loadConfig({ ...secret, REDIS_URL: 'redis://r:6379/2' }));
  assert.deepEqual([warning?.variables, more], [['REDIS_URL', 'REDIS_KEY_PREFIX'], []]);
  assert.match(warning!.message, /database 2.*pub\/sub.*REDIS_KEY_PREFIX/);
  assert.deepEqual(configWarnings(loadConfig({ ...secret, REDIS_URL: 'redis://r:6379/2', REDIS_KEY_PREFIX: 'staging' })), []);
  assert.match(configWarnings(loadConfig({ ...secret, REDIS_URL: 'redis://r:6379?db=4' }))[0]?.message ?? '', /database 4/);
  assert.deepEqual(configWarnings(loadConfig({ ...secret, REDIS_URL: 'redis://r:6379/2', REDIS_SENTINELS: 's:26379' })), [], 'URL unused');
  assert.deepEqual(configWarnings(loadConfig({ APP_SECRET: 's3cret', REDIS_URL: 'redis://r:6379/2' })), [], 'no Redis engine');
});

test('Redis Cluster seeds and Sentinels: ports from 1 to 65535, IPv6 addresses in brackets', () => {
  assert.throws(() => loadConfig({ REDIS_CLUSTER_NODES: 'r1:99999' }), /^ConfigError: REDIS_CLUSTER_NODES: .*65535/);
  assert.throws(() => loadConfig({ REDIS_SENTINELS: 'r1:0' }), /^ConfigError: REDIS_SENTINELS: .*65535/);
  assert.deepEqual(loadConfig({ REDIS_CLUSTER_NODES: '[::1]:7000, [fd00::5]:7001,r3:7002' }).redisClusterNodes, [
    { host: '::1', port: 7000 },
    { host: 'fd00::5', port: 7001 },
    { host: 'r3', port: 7002 },
  ]);
  assert.throws(() => loadConfig({ REDIS_CLUSTER_NODES: '::1:7000' }), /^ConfigError: REDIS_CLUSTER_NODES: host:port/);
});

test('API_TIMESTAMP_TOLERANCE_SECONDS is at most a day (600000, milliseconds meant, turned replay protection off), over an hour said', () => {
  assert.deepEqual(configWarnings(loadConfig({ APP_SECRET: 's3cret', API_TIMESTAMP_TOLERANCE_SECONDS: '3600' })), []);
  const [warning] = configWarnings(loadConfig({ APP_SECRET: 's3cret', API_TIMESTAMP_TOLERANCE_SECONDS: '86400' }));
  assert.deepEqual(warning?.variables, ['API_TIMESTAMP_TOLERANCE_SECONDS']);
  assert.match(warning!.message, /replayed/);
  assert.throws(() => loadConfig({ API_TIMESTAMP_TOLERANCE_SECONDS: '600000' }), /^ConfigError: API_TIMESTAMP_TOLERANCE_SECONDS: /);
});

test('APPS_FILE may start with a UTF-8 byte order mark (editors write one); NODE_ID and DEPLOYMENT_ENV are trimmed', () => {
  const file = join(mkdtempSync(join(tmpdir(), 'beacon-config-')), 'apps.json');
  writeFileSync(file, `\ufeff${JSON.stringify({ apps: [{ id: 'a', key: 'k', secret: 's' }] })}`);
  assert.deepEqual(loadConfig({ APPS_FILE: file }).apps.map((a) => a.id), ['a']);
  // Written untrimmed in every log line while the telemetry resource trimmed them: logs and metrics parted ways.
  const trimmed = loadConfig({ NODE_ID: ' node-a ', DEPLOYMENT_ENV: ' prod ' });
  assert.deepEqual([trimmed.nodeId, trimmed.env], ['node-a', 'prod']);
});

test('PORT and METRICS_PORT the same on overlapping hosts is refused, naming both; an unsupported metrics exporter is said', () => {
  const errors = (env: Record<string, string>) => telemetryOptionsFromEnv(env).errors;
  assert.match(errors({ PORT: '9464' })[0] ?? '', /^METRICS_PORT: 9464 is PORT's too/);
  assert.match(errors({ PORT: '7000', METRICS_PORT: '7000', HOST: '127.0.0.1' })[0] ?? '', /^METRICS_PORT: /);
  assert.match(errors({ METRICS_PORT: '6001', METRICS_HOST: '127.0.0.1' })[0] ?? '', /^METRICS_PORT: /, 'PORT 6001 by default, on every address');
  assert.deepEqual(errors({ PORT: '7000', METRICS_PORT: '7000', HOST: '127.0.0.1', METRICS_HOST: '127.0.0.2' }), []);
  assert.deepEqual(errors({ PORT: '7000', METRICS_PORT: '7000', HOST: '0.0.0.0', METRICS_HOST: '::1' }), [], 'IPv4 any and IPv6 loopback');
  assert.match(errors({ PORT: '7000', METRICS_PORT: '7000', HOST: '::', METRICS_HOST: '127.0.0.1' })[0] ?? '', /^METRICS_PORT: /, ':: takes IPv4 too');
  assert.deepEqual(errors({ PORT: '0', METRICS_PORT: '9464' }), []);
  assert.deepEqual(errors({ PORT: '9464', OTEL_SDK_DISABLED: 'true' }), [], 'no metrics server');
  assert.deepEqual(errors({ PORT: '9464', OTEL_METRICS_EXPORTER: 'none' }), [], 'no metrics server');
  assert.match(telemetryOptionsFromEnv({ OTEL_METRICS_EXPORTER: 'otlp' }).warnings.join(), /OTEL_METRICS_EXPORTER "otlp" is not supported/);
});

test('variables the configuration ignores are said at start-up: misspelt names, the default app\'s under APPS_FILE', () => {
  const said = (env: Record<string, string>) => envWarnings(env).map((w) => [w.variables, w.message]);
  assert.deepEqual(said({ LOG_LEVEL: 'info', HOME: '/root', HOSTNAME: 'h', NODE_ENV: 'production', PATH: '/bin', OTEL_FOO: 'x' }), []);
  // Other variables that happen to be near one of Beacon's: a short word swapped, not a misspelling.
  assert.deepEqual(said({ NODE_IP: '10.0.0.1', API_KEY: 'k', APP_KEYS: 'a,b', APP_UID: '1000', APP_GID: '1000', REDIS_PORT: 'tcp://r:6379' }), []);
  const typos = said({ LOGLEVEL: 'debug', MAX_CONECTIONS: '10', APP_SECRETS: 'x' });
  assert.deepEqual(typos.map(([variables]) => variables), [['LOGLEVEL'], ['MAX_CONECTIONS'], ['APP_SECRETS']]);
  assert.match(String(typos[0]![1]), /LOGLEVEL is not a Beacon variable.*LOG_LEVEL/);
  const file = appsFile([{ id: 'a', key: 'k', secret: 's' }]);
  const ignored = said({ APPS_FILE: file, APP_SECRET: 'x', APP_MAX_CONNECTIONS: '5', APP_ID: '' });
  assert.deepEqual(ignored.map(([variables]) => variables), [['APP_SECRET', 'APP_MAX_CONNECTIONS']]);
  assert.match(String(ignored[0]![1]), /APPS_FILE/);
});

test('METRICS_HOST and METRICS_PORT blank are refused like any invalid value (they started on the defaults)', () => {
  for (const env of [{ METRICS_PORT: ' ' }, { METRICS_HOST: '  ' }]) {
    const options = telemetryOptionsFromEnv(env);
    assert.equal(options.errors.length, 1, JSON.stringify(env));
    assert.match(options.errors[0]!, /^METRICS_(PORT|HOST): /);
  }
  assert.deepEqual(telemetryOptionsFromEnv({ METRICS_PORT: '', METRICS_HOST: '' }).errors, [], 'empty is unset');
});

test('config warnings: a secret with whitespace at either end (a newline from a file) is named', () => {
  assert.deepEqual(configWarnings(loadConfig({ APP_SECRET: 's3cret' })), []);
  const [warning, ...rest] = configWarnings(loadConfig({ APP_SECRET: 's3cret\n' }));
  assert.deepEqual(rest, []);
  assert.deepEqual(warning?.variables, ['APP_SECRET']);
  assert.match(warning!.message, /app app-id starts or ends with whitespace/);
});

test('config warnings: Redis settings without ADAPTER=redis are named as ignored (not REDIS_URL, which compose sets)', () => {
  const secret = { APP_SECRET: 's3cret' };
  assert.deepEqual(configWarnings(loadConfig({ ...secret, REDIS_URL: 'redis://r:6379' })), []);
  assert.deepEqual(configWarnings(loadConfig({ ...secret, ADAPTER: 'redis', REDIS_SENTINELS: 'r:26379' })), []);
  const [warning, ...rest] = configWarnings(loadConfig({ ...secret, REDIS_SENTINELS: '10.1.2.3:26379', REDIS_PASSWORD: 'pw' }));
  assert.deepEqual(rest, []);
  assert.deepEqual(warning?.variables, ['ADAPTER', 'REDIS_SENTINELS', 'REDIS_PASSWORD']);
  assert.match(warning!.message, /REDIS_SENTINELS, REDIS_PASSWORD are set, but ADAPTER is local: ignored/);
});
