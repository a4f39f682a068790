/**
 * The HTTP API's refusals by reason (`websocket_api_refusals_total`, docs/telemetry.md), on the /metrics of a real exporter
 * fed by the in-process server's metrics: every reason exported from start at 0; bad JSON, a 415, a 413, each validation
 * error, a disabled app and a publish while the cluster engine is down counted once each under the registry error they
 * were answered with; an accepted call, a refused signature, the rate limit and a path to no route (counted by their own
 * metrics) leave it alone. A channel query a real Redis fails while the engine is up is refused and counted as one while
 * it is down is, never answered as an empty channel.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect } from 'node:net';
import { test } from 'node:test';
import type { Adapter } from '../../src/adapters/adapter.js';
import { createLocalAdapter } from '../../src/adapters/local-adapter.js';
import type { Metrics } from '../../src/telemetry/metrics.js';
import { channelAuthString, sign } from '../../src/protocol/signatures.js';
import { sumOf, type Family } from '../helpers/exposition.js';
import { exportedMetrics, type ExportedMetrics } from '../helpers/exported-metrics.js';
import { logLines } from '../helpers/logs.js';
import { RawClient } from '../helpers/raw-client.js';
import { startRedis } from '../helpers/redis.js';
import { APP, startServer, startServerWithApps } from '../helpers/server.js';
import { exchange } from '../helpers/raw-http.js';
import { signedFetch, signedQuery } from '../helpers/signed-fetch.js';
import { eventually, until, within } from '../helpers/wait.js';

const REFUSALS = 'websocket_api_refusals_total';
const API = `/apps/${APP.id}`;

/** The contract's reasons (docs/telemetry.md), written out here: a reason renamed or dropped fails this test. */
const REASONS = [
  'invalid_request',
  'invalid_json',
  'unsupported_media_type',
  'unsupported_encoding',
  'body_too_large',
  'body_not_object',
  'event_name_invalid',
  'event_name_too_long',
  'event_name_reserved',
  'data_not_string',
  'data_too_large',
  'channel_not_string',
  'channel_or_channels',
  'channels_empty',
  'too_many_channels',
  'invalid_channel_name',
  'encrypted_not_alone',
  'invalid_socket_id',
  'unknown_info',
  'batch_not_array',
  'batch_too_large',
  'user_count_needs_prefix',
  'user_count_not_presence',
  'cache_not_cache_channel',
  'users_not_presence',
  'app_disabled',
  'shutting_down',
  'engine_unavailable',
];

/** Beacon's metrics on a meter provider of the test's own, exported as otel/sdk.ts exports them, on a loopback /metrics. */
const observedMetrics = (): Promise<ExportedMetrics> => exportedMetrics();

/** The refusal counter's value per reason. */
function refusals(families: Map<string, Family>): Record<string, number> {
  const samples = families.get(REFUSALS)?.samples ?? [];
  return Object.fromEntries(samples.map((s) => [s.labels.reason ?? '', s.value]));
}

/** Every reason at 0 but `counts`. */
function expected(counts: Record<string, number> = {}): Record<string, number> {
  return Object.fromEntries(REASONS.map((reason) => [reason, counts[reason] ?? 0]));
}

const publishBody = (fields: Record<string, unknown>): string => JSON.stringify({ name: 'ev', data: '{}', channel: 'news', ...fields });

test('every reason is exported from start at 0; accepted calls, refused signatures and paths to no route leave it there', async () => {
  const observed = await observedMetrics();
  const server = await startServer({}, { metrics: observed.metrics });
  try {
    const start = await observed.scrape();
    assert.equal(start.get(REFUSALS)?.type, 'counter', `${REFUSALS} is exported`);
    assert.deepEqual(refusals(start), expected());

    const sdk = server.sdk();
    assert.equal((await sdk.trigger('news', 'update', { a: 1 })).status, 200);
    assert.equal((await sdk.triggerBatch([{ channel: 'news', name: 'update', data: '{}' }])).status, 200);
    assert.equal((await sdk.get({ path: '/channels' })).status, 200);
    assert.equal((await sdk.get({ path: '/channels/news', params: { info: 'subscription_count' } })).status, 200);

    // Counted in websocket_api_auth_failures_total: a wrong secret, a body that is not the signed one, an unknown app.
    const body = publishBody({});
    assert.equal((await signedFetch(server, 'POST', `${API}/events`, { body, sign: { secret: 'wrong' } })).status, 401);
    assert.equal((await signedFetch(server, 'POST', `${API}/events`, { body, sign: { bodyMd5: '0'.repeat(32) } })).status, 401);
    assert.equal((await signedFetch(server, 'GET', '/apps/nope/channels')).status, 401);
    // Counted under http_route="unmatched".
    assert.equal((await fetch(`http://127.0.0.1:${server.port}${API}/evnts`, { method: 'POST' })).status, 404);

    const after = await observed.scrape();
    assert.deepEqual(refusals(after), expected());
    assert.equal(sumOf(after, 'websocket_api_auth_failures_total'), 3);
    assert.equal(sumOf(after, 'websocket_events_published_total', { source: 'http_api' }), 2);
  } finally {
    await server.close();
    await observed.close();
  }
});

test('a call over the API rate limit is counted as a rate limit, not as a refusal', async () => {
  const observed = await observedMetrics();
  const server = await startServer({ API_RATE_LIMIT_PER_SECOND: '1' }, { metrics: observed.metrics });
  try {
    // One call a second: the second of two calls in the same second is refused (a new second may start between them).
    let answer = await signedFetch(server, 'GET', `${API}/channels`);
    for (let i = 0; i < 20 && answer.status !== 429; i++) answer = await signedFetch(server, 'GET', `${API}/channels`);
    assert.equal(answer.status, 429);
    // When to come back, as every 503 says it: the rate is per second.
    assert.equal(answer.headers.get('retry-after'), '1');
    const after = await observed.scrape();
    assert.ok(sumOf(after, 'websocket_rate_limit_triggered_total', { scope: 'http_api' }) >= 1);
    assert.deepEqual(refusals(after), expected());
  } finally {
    await server.close();
    await observed.close();
  }
});

test('each refusal is counted once, under the registry error it was answered with', async () => {
  const observed = await observedMetrics();
  // A cluster engine that can be taken down: the local adapter, its status overridden.
  let engineDown = false;
  let engineCongested = false;
  const adapter = (_hub: unknown, metrics: Metrics): Adapter => {
    const local = createLocalAdapter({ metrics, cacheTtlMs: 60_000, cacheMaxBytes: 1_000_000 });
    const status = local.status.bind(local);
    return Object.assign(local, { status: () => ({ ...status(), up: !engineDown, congested: engineCongested }) });
  };
  const server = await startServerWithApps(
    [
      { id: APP.id, key: APP.key, secret: APP.secret },
      { id: 'off-id', key: 'off-key', secret: 'off-secret', enabled: false },
    ],
    // Bodies longer than any valid request (here one event to 100 channels, every string escaped: ~238 KB) are refused
    // before they are read (API_BODY_TOO_LARGE).
    { MAX_PAYLOAD_BYTES: '1024', MAX_BATCH_SIZE: '1' },
    { metrics: observed.metrics, adapter },
  );
  try {
    const answers: Array<[string, number, unknown]> = [];
    const post = async (what: string, body: string, headers: Record<string, string> = {}, path = `${API}/events`): Promise<void> => {
      const answer = await signedFetch(server, 'POST', path, { body, headers });
      answers.push([what, answer.status, answer.body]);
    };
    const get = async (what: string, path: string, params: Record<string, string> = {}): Promise<void> => {
      const answer = await signedFetch(server, 'GET', path, { params });
      answers.push([what, answer.status, answer.body]);
    };

    await post('not JSON', '{"name":');
    await post('not JSON again', '{"name": "ev", ');
    await post('XML', '<event/>', { 'content-type': 'application/xml' });
    // The API decodes nothing: a compressed body is refused unread, not answered as JSON or an MD5 that does not match.
    await post('a gzip body', publishBody({}), { 'content-encoding': 'gzip' });
    await post('an identity body', publishBody({}), { 'content-encoding': 'Identity' });
    // Nothing to decode without a body (the review: refused 415 too).
    answers.push(['a GET saying gzip', (await signedFetch(server, 'GET', `${API}/channels`, { headers: { 'content-encoding': 'gzip' } })).status, {}]);
    await post('a body over the limit', publishBody({ data: 'x'.repeat(250_000) }));
    await post('an empty event name', publishBody({ name: '' }));
    await post('a reserved event name', publishBody({ name: 'pusher_internal:member_added' }));
    await post('data over MAX_PAYLOAD_BYTES', publishBody({ data: 'x'.repeat(2000) }));
    await post('a batch over MAX_BATCH_SIZE', JSON.stringify({ batch: [{ name: 'a', data: '{}', channel: 'c' }, { name: 'b', data: '{}', channel: 'c' }] }), {}, `${API}/batch_events`);
    await get('an invalid channel name', `${API}/channels/bad%20name!`);
    await get('an unknown info attribute', `${API}/channels`, { info: 'bogus' });
    // Refused before the signature is checked: a parameter named twice.
    const twice = await fetch(`http://127.0.0.1:${server.port}${API}/channels?auth_key=a&auth_key=b`);
    answers.push(['a parameter named twice', twice.status, await twice.json()]);
    const off = await signedFetch(server, 'POST', '/apps/off-id/events', { body: publishBody({}), sign: { key: 'off-key', secret: 'off-secret' } });
    answers.push(['a disabled app', off.status, off.body]);
    engineDown = true;
    await post('a publish while the engine is down', publishBody({}));
    await get('a channel query while the engine is down', `${API}/channels`);
    engineDown = false;
    // Reachable, but it has not taken what was sent before (a stalled Redis): refused too, not accepted and lost.
    engineCongested = true;
    await post('a publish while the engine is congested', publishBody({}));
    engineCongested = false;

    assert.deepEqual(answers, [
      ['not JSON', 400, { error: 'Body is not valid JSON' }],
      ['not JSON again', 400, { error: 'Body is not valid JSON' }],
      ['XML', 415, { error: 'Unsupported content type: send application/json' }],
      ['a gzip body', 415, { error: 'Unsupported Content-Encoding: send the body uncompressed' }],
      ['an identity body', 200, {}],
      ['a GET saying gzip', 200, {}],
      ['a body over the limit', 413, { error: 'Request body too large' }],
      ['an empty event name', 400, { error: '"name" must be a non-empty string' }],
      ['a reserved event name', 400, { error: '"name" begins with pusher: or pusher_internal:, reserved for the protocol' }],
      ['data over MAX_PAYLOAD_BYTES', 413, { error: '"data" over 1024 bytes' }],
      ['a batch over MAX_BATCH_SIZE', 400, { error: 'Batch of 2 events is over the limit of 1' }],
      ['an invalid channel name', 400, { error: 'Invalid channel name: bad name!' }],
      ['an unknown info attribute', 400, { error: 'Unknown info attribute: bogus' }],
      ['a parameter named twice', 400, { error: 'Invalid request' }],
      ['a disabled app', 403, { error: 'App is disabled' }],
      ['a publish while the engine is down', 503, { error: 'Cluster engine unavailable; retry' }],
      ['a channel query while the engine is down', 503, { error: 'Cluster engine unavailable; retry' }],
      ['a publish while the engine is congested', 503, { error: 'Cluster engine unavailable; retry' }],
    ]);

    const after = await observed.scrape();
    assert.deepEqual(
      refusals(after),
      expected({
        invalid_json: 2,
        unsupported_media_type: 1,
        unsupported_encoding: 1,
        body_too_large: 1,
        event_name_invalid: 1,
        event_name_reserved: 1,
        data_too_large: 1,
        batch_too_large: 1,
        invalid_channel_name: 1,
        unknown_info: 1,
        invalid_request: 1,
        app_disabled: 1,
        engine_unavailable: 3,
      }),
    );
    assert.equal(sumOf(after, 'websocket_api_auth_failures_total'), 0);

    // An accepted publish does not move it.
    assert.equal((await server.sdk().trigger('news', 'update', {})).status, 200);
    assert.deepEqual(refusals(await observed.scrape()), refusals(after));
  } finally {
    await server.close();
    await observed.close();
  }
});

/** The status codes of every response in `text`, in order. */
const statuses = (text: string): string[] => [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => m[1]!);

test('a request the parser refuses after a pipelined publish is answered after it: the publish gets its 200, then the 400', async () => {
  const observed = await observedMetrics();
  const server = await startServer({}, { metrics: observed.metrics });
  try {
    const body = publishBody({});
    const path = `${API}/events`;
    const publish = `POST ${path}?${signedQuery('POST', path, { body })} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
    const answered = await exchange(server.port, `${publish}\x01 junk\r\n\r\n`);
    // Before: the 400 was written at once and the socket closed, the publish's 200 never written (a delivered event that
    // its backend would send again).
    assert.deepEqual(statuses(answered), ['200', '400']);
    // The same when the refused bytes are the body of the next request (a malformed chunk size).
    const chunked = `POST ${path}?${signedQuery('POST', path)} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n`;
    assert.deepEqual(statuses(await exchange(server.port, `${publish}${chunked}`)), ['200', '400']);
    const m = await observed.scrape();
    assert.equal(sumOf(m, 'websocket_events_published_total', { source: 'http_api' }), 2);
    assert.equal(sumOf(m, 'websocket_http_malformed_requests_total', { reason: 'bad_request' }), 2);
    assert.deepEqual(refusals(m), expected());
  } finally {
    await server.close();
    await observed.close();
  }
});

test('a body that breaks off is one refusal, counted once as the parser refused it, not also as the API invalid_request', async () => {
  const observed = await observedMetrics();
  const server = await startServer({}, { metrics: observed.metrics });
  try {
    const body = 'a'.repeat(1000);
    const path = `${API}/events`;
    const head = `POST ${path}?${signedQuery('POST', path, { body })} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n`;
    // Ten bytes of the thousand, then the client's end of the stream.
    const socket = connect(server.port, '127.0.0.1');
    let answered = '';
    socket.on('data', (chunk: Buffer) => (answered += chunk.toString('latin1')));
    socket.on('error', () => undefined);
    await once(socket, 'connect');
    socket.end(head + body.slice(0, 10));
    await within(once(socket, 'close'), 'the server to close the connection');
    assert.deepEqual(statuses(answered), ['400']);
    await eventually(
      async () => sumOf(await observed.scrape(), 'websocket_http_malformed_requests_total', { reason: 'bad_request' }) === 1,
      'the parser refusal counted',
    );
    // Before: its read also failed in the API's handler, counted as invalid_request though nobody got that answer.
    assert.deepEqual(refusals(await observed.scrape()), expected());

    // A reset mid-body: counted once too.
    // With `Expect: 100-continue`: once the server says so, its handler is reading the body.
    const reset = connect(server.port, '127.0.0.1');
    reset.on('error', () => undefined);
    await once(reset, 'connect');
    const continued = new Promise<void>((resolve) => reset.on('data', (chunk: Buffer) => chunk.toString('latin1').includes(' 100 ') && resolve()));
    reset.write(head.replace('\r\n\r\n', '\r\nExpect: 100-continue\r\n\r\n'));
    await within(continued, '100 Continue');
    reset.write(body.slice(0, 10));
    reset.resetAndDestroy();
    // Node's parser sees the reset as an end mid-body or as ECONNRESET (which it does not refuse), as the timing falls:
    // either way the request is counted once, by the parser or by the API.
    const counted = async (): Promise<number> => {
      const m = await observed.scrape();
      return sumOf(m, 'websocket_http_malformed_requests_total') - 1 + (refusals(m).invalid_request ?? 0);
    };
    await eventually(async () => (await counted()) >= 1, 'the reset counted');
    assert.equal(await counted(), 1);
  } finally {
    await server.close();
    await observed.close();
  }
});

test('a channel query Redis fails while the engine is up answers 503 engine_unavailable, counted and logged, never empty', async () => {
  const redis = await startRedis();
  const observed = await observedMetrics();
  const server = await startServer({ ADAPTER: 'redis', REDIS_URL: redis.url, NODE_ID: 'query' }, { metrics: observed.metrics });
  try {
    await until(() => server.app.adapter.status().up, 'the cluster engine up');
    // Someone is there: an empty answer would be wrong, not merely stale.
    const { client, socketId } = await RawClient.established(server.port);
    const member = JSON.stringify({ user_id: 'u1', user_info: {} });
    const presence = {
      event: 'pusher:subscribe',
      data: { channel: 'presence-room', auth: `${APP.key}:${sign(APP.secret, channelAuthString(socketId, 'presence-room', member))}`, channel_data: member },
    };
    client.send({ event: 'pusher:subscribe', data: { channel: 'news' } });
    client.send(presence);
    await client.next((f) => f.event === 'pusher_internal:subscription_succeeded' && f.channel === 'news');
    await client.next((f) => f.event === 'pusher_internal:subscription_succeeded' && f.channel === 'presence-room');
    const before = await signedFetch(server, 'GET', `${API}/channels`);
    assert.deepEqual([before.status, before.body], [200, { channels: { news: {}, 'presence-room': {} } }]);

    // A frozen Redis: the connections stay up (the engine is not down), and every command times out after 1 s.
    const queries: Array<[string, Record<string, string>]> = [
      [`${API}/channels`, {}],
      [`${API}/channels/news`, { info: 'subscription_count' }],
      [`${API}/channels/presence-room/users`, {}],
    ];
    const body = JSON.stringify({ name: 'ev', channel: 'news', data: '{}', info: 'subscription_count' });
    const framesBefore = client.frames.length;
    redis.freeze(true);
    let upThroughout = server.app.adapter.status().up;
    // A repeated presence subscribe is answered with the members as they are now (its answer is the next presence-room frame).
    client.send(presence);
    const [answers, published, resubscribed] = await Promise.all([
      Promise.all(queries.map(([path, params]) => signedFetch(server, 'GET', path, { params }))),
      signedFetch(server, 'POST', `${API}/events`, { body }),
      client.next((f) => f.channel === 'presence-room' && client.frames.indexOf(f) >= framesBefore),
    ]).finally(() => {
      upThroughout &&= server.app.adapter.status().up;
      redis.freeze(false);
    });
    // Not the engine-down answer of the API's hook: the engine was up, its queries failed.
    assert.equal(upThroughout, true, 'the engine up while Redis was frozen');
    const error = { error: 'Cluster engine unavailable; retry' };
    assert.deepEqual(
      answers.map((a) => [a.status, a.body, a.headers.get('retry-after')]),
      queries.map(() => [503, error, '1']),
    );
    // The publish was accepted and handed on: 200 (a 503 would have it sent twice), its count left out rather than 0.
    assert.deepEqual([published.status, published.body], [200, { channels: { news: {} } }]);
    // The repeated subscribe is refused as a join the engine could not record is, not answered with no members.
    assert.deepEqual(
      [resubscribed.event, resubscribed.data],
      ['pusher:subscription_error', { type: 'ServiceUnavailable', error: 'The cluster engine is unavailable; retry', status: 503 }],
    );

    assert.deepEqual(refusals(await observed.scrape()), expected({ engine_unavailable: 3 }));
    // One warn line for the period (not one per query), with Redis' cause.
    const failed = logLines(server, { event: 'adapter_request_failed' });
    assert.equal(failed.length, 1, JSON.stringify(failed));
    assert.equal(failed[0]!.level, 'warn');
    assert.equal(failed[0]!.error, 'Command timed out');

    // Redis reads again: the queries answer, and the publish went out once.
    await client.next((f) => f.event === 'ev' && f.channel === 'news');
    await eventually(async () => (await signedFetch(server, 'GET', `${API}/channels/presence-room/users`)).status === 200, 'queries answered again');
    const after = await signedFetch(server, 'GET', `${API}/channels/presence-room/users`);
    assert.deepEqual([after.status, after.body], [200, { users: [{ id: 'u1' }] }]);
    assert.equal(client.all('ev').length, 1);
    await client.close();
  } finally {
    await server.close();
    await observed.close();
    await redis.stop();
  }
});
