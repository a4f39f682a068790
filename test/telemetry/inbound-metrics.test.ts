/**
 * The inbound budget's refusals and the cache's evictions as a real process exposes them on /metrics: each refusal under
 * its `reason`, the frame budget under `scope="frames"`, the subscription cap as `result="limit"`, and CACHE_MAX_BYTES
 * evicting (least recently used first) with `websocket_cache_evictions_total` counting it; and a broken WebSocket handshake
 * (ws refuses it before any connection exists) under `websocket_connections_rejected_total{reason="bad_handshake"}`, and a
 * request the HTTP parser refuses under `websocket_http_malformed_requests_total{reason="bad_request"}` (the other reasons
 * exported at 0), and a request to no route under `http_server_request_duration_seconds{http_route="unmatched"}`.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import Pusher from 'pusher';
import { spawnBeacon, type BeaconProcess } from '../helpers/beacon-process.js';
import { parseExposition, sumOf } from '../helpers/exposition.js';
import { pollUntil } from '../helpers/prometheus.js';
import { RawClient } from '../helpers/raw-client.js';
import { APP } from '../helpers/server.js';
import { exchange } from '../helpers/raw-http.js';
import { silentSocket } from '../helpers/silent-socket.js';
import { within } from '../helpers/wait.js';

let beacon: BeaconProcess;
before(async () => {
  beacon = await spawnBeacon({
    CACHE_MAX_BYTES: '4096',
    FRAME_RATE_LIMIT_PER_SECOND: '10',
    MAX_SUBSCRIPTIONS_PER_CONNECTION: '2',
  });
});
after(async () => {
  await beacon?.stop();
});

async function scrape(): Promise<ReturnType<typeof parseExposition>> {
  return parseExposition(await (await fetch(`http://127.0.0.1:${beacon.metricsPort}/metrics`)).text());
}

test('refusals of the inbound budget, cache evictions, a broken handshake, a malformed request, one without Host, pipelined ones past the bound and one to no route are counted with their reasons', async () => {
  const sdk = new Pusher({ appId: APP.id, key: APP.key, secret: APP.secret, host: '127.0.0.1', port: String(beacon.port), useTLS: false });
  // Eight 1000-byte events on eight cache channels: at most four fit in 4096 bytes.
  for (let i = 0; i < 8; i++) await sdk.trigger(`cache-c${i}`, 'e', { pad: 'x'.repeat(1000) });

  const { client } = await RawClient.established(beacon.port);
  client.send(`{"event":"client-x","channel":"private-a","data":${'['.repeat(100)}${']'.repeat(100)}}`);
  await client.next('pusher:error');
  // The oldest cache channel was evicted: it misses; the newest replays.
  client.send({ event: 'pusher:subscribe', data: { channel: 'cache-c0' } });
  client.send({ event: 'pusher:subscribe', data: { channel: 'cache-c7' } });
  client.send({ event: 'pusher:subscribe', data: { channel: 'third' } });
  await client.next((f) => f.event === 'pusher:cache_miss' && f.channel === 'cache-c0');
  await client.next((f) => f.event === 'e' && f.channel === 'cache-c7');
  await client.next((f) => f.event === 'pusher:subscription_error' && f.channel === 'third');
  for (let i = 0; i < 20; i++) client.send({ event: 'pusher:ping', data: {} });
  await client.next((f) => f.event === 'pusher:error' && (f.data as { code: number | null }).code === 4301);
  await client.close();

  const utf8 = await RawClient.established(beacon.port);
  utf8.client.ws.send(Buffer.from([0xff]), { binary: false });
  assert.equal((await utf8.client.waitClosed()).code, 1007);

  const broken = await silentSocket(beacon.port, `/app/${APP.key}?protocol=7`, { 'Sec-WebSocket-Key': 'not-a-key' });
  await within(broken.ended, 'the server to close the refused handshake');
  assert.match(broken.received().toString('latin1'), /^HTTP\/1\.1 400 /);
  assert.match(await exchange(beacon.port, 'NOT HTTP AT ALL\r\n\r\n'), /^HTTP\/1\.1 400 /);
  assert.equal((await fetch(`${beacon.url}/apps/${APP.id}/channels/%zz`)).status, 400);
  assert.equal((await fetch(`${beacon.url}/apps/${APP.id}/evnts`, { method: 'POST' })).status, 404);
  // Methods outside HTTP's own set (Node's parser takes 33, WebDAV's among them) are one label value, `_OTHER`, as the
  // semantic conventions say: each was a series of its own.
  for (const method of ['PROPFIND', 'MKCOL', 'LOCK']) {
    assert.match(await exchange(beacon.port, `${method} /apps/${APP.id}/events HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`), /^HTTP\/1\.1 404 /);
  }
  assert.match(await exchange(beacon.port, 'GET /healthz HTTP/1.1\r\n\r\n'), /^HTTP\/1\.1 400 /);
  // 16 answered, the 17th refused with the 429, the three after it refused unserved: four counted.
  assert.match(await exchange(beacon.port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(20)), /HTTP\/1\.1 429 /);

  const expected: [string, Record<string, string>][] = [
    ['websocket_message_errors_total', { reason: 'too_deep' }],
    ['websocket_message_errors_total', { reason: 'too_many_subscriptions' }],
    ['websocket_message_errors_total', { reason: 'frame_rate_limited' }],
    ['websocket_message_errors_total', { reason: 'invalid_utf8' }],
    ['websocket_rate_limit_triggered_total', { scope: 'frames' }],
    ['websocket_subscriptions_total', { result: 'limit' }],
    ['websocket_cache_evictions_total', { app_id: APP.id }],
    ['websocket_connections_rejected_total', { reason: 'bad_handshake' }],
    ['websocket_http_malformed_requests_total', { reason: 'bad_request' }],
    ['websocket_http_malformed_requests_total', { reason: 'bad_url' }],
    ['websocket_http_malformed_requests_total', { reason: 'no_host' }],
    ['websocket_http_malformed_requests_total', { reason: 'pipelined' }],
    ['http_server_request_duration_seconds_count', { http_route: 'unmatched', http_response_status_code: '404' }],
    ['http_server_request_duration_seconds_count', { http_route: 'unmatched', http_request_method: '_OTHER' }],
  ];
  let missing: string[] = [];
  await pollUntil(
    async () => {
      const m = await scrape();
      missing = expected.filter(([name, labels]) => sumOf(m, name, labels) < 1).map(([n, l]) => `${n}${JSON.stringify(l)}`);
      return missing.length === 0;
    },
    5000,
    100,
    () => `missing ${missing.join(', ')}`,
  );
  const m = await scrape();
  const methods = new Set((m.get('http_server_request_duration_seconds_count')?.samples ?? []).map((s) => s.labels.http_request_method));
  assert.deepEqual([...methods].filter((method) => !['GET', 'POST', '_OTHER'].includes(method!)), []);
  assert.equal(sumOf(m, 'http_server_request_duration_seconds_count', { http_request_method: '_OTHER' }), 3);
  assert.ok(sumOf(m, 'websocket_cache_evictions_total') >= 4, 'at least four of eight evicted');
  // The other reasons are exported from start, at 0.
  const malformed = m.get('websocket_http_malformed_requests_total')?.samples ?? [];
  assert.equal(sumOf(m, 'websocket_http_malformed_requests_total', { reason: 'pipelined' }), 4);
  for (const reason of ['header_overflow', 'timeout', 'param_too_long', 'bad_method', 'expectation']) {
    assert.deepEqual(malformed.filter((s) => s.labels.reason === reason).map((s) => s.value), [0], reason);
  }
  // No error-level line anywhere.
  assert.deepEqual(beacon.logs.filter((l) => /"level":"(error|fatal)"/.test(l)), []);
});
