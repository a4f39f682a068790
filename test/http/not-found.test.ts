/**
 * Requests no route matches (src/http/not-found.ts): answered 404 with the API's body, and each one seen — counted under the
 * route `unmatched` (test/telemetry/inbound-metrics.test.ts reads that count on /metrics) and logged as `api_request` with
 * its path (never its query), at most 10 lines a second per node however many arrive.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { logLines } from '../helpers/logs.js';
import { startServer } from '../helpers/server.js';
import { exchange, parseResponse } from '../helpers/raw-http.js';
import { until } from '../helpers/wait.js';

test('a request to no route: 404, one api_request line with its path and no query; a flood is logged 10 times a second', async () => {
  const server = await startServer();
  try {
    const base = `http://127.0.0.1:${server.port}`;
    const typo = await fetch(`${base}/apps/app-id/evnts?auth_key=app-key&auth_signature=deadbeef`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    assert.equal(typo.status, 404);
    assert.deepEqual(await typo.json(), { error: 'Not found' });
    await until(() => logLines(server, { event: 'api_request', route: 'unmatched' }).length === 1, 'the 404 line');
    const [line] = logLines(server, { event: 'api_request', route: 'unmatched' });
    assert.equal(line?.path, '/apps/app-id/evnts');
    assert.equal(line?.method, 'POST');
    assert.equal(line?.status_code, 404);
    assert.equal(line?.level, 'info');
    assert.doesNotMatch(JSON.stringify(server.logs), /deadbeef/, 'the query (and its signature) is never logged');

    // A CORS preflight is answered by a route (@fastify/cors's `OPTIONS *`): not a request to no route. A 404 after it marks
    // the point by which its line would have been written (the log window is far from full yet).
    const preflight = await fetch(`${base}/anywhere`, {
      method: 'OPTIONS',
      headers: { origin: 'https://example.com', 'access-control-request-method': 'POST' },
    });
    assert.equal(preflight.status, 204);
    assert.equal((await fetch(`${base}/after-preflight`)).status, 404);
    await until(() => logLines(server, { event: 'api_request', path: '/after-preflight' }).length === 1, 'the marker line');
    assert.deepEqual(logLines(server, { event: 'api_request', method: 'OPTIONS' }), []);

    // A scanner: 100 requests as fast as they go. Every one is answered; the lines stay bounded.
    const started = Date.now();
    const answers = await Promise.all(Array.from({ length: 100 }, (_, i) => fetch(`${base}/scan-${i}.php`).then((r) => r.status)));
    const seconds = Math.ceil((Date.now() - started) / 1000) + 1;
    assert.deepEqual(new Set(answers), new Set([404]));
    const scanned = logLines(server, { event: 'api_request', route: 'unmatched' }).length - 2;
    assert.ok(scanned >= 1 && scanned <= 10 * seconds, `${scanned} lines for 100 requests in ${seconds} s`);
    assert.ok(scanned < 100, 'not one line per request');
  } finally {
    await server.close();
  }
});

test('a request to no route that declares a body is answered without reading it, and its connection closed', async () => {
  // The 404 waited for the whole body: one declared and never sent held the socket (and what had come of it) for good.
  const server = await startServer();
  try {
    // `json` is a malformed media type: fastify refuses it before any parser runs, in its own shape unless answered here.
    for (const type of ['application/json', 'application/octet-stream', 'json']) {
      const head = `POST /nope HTTP/1.1\r\nHost: x\r\nContent-Type: ${type}\r\nContent-Length: 1000000\r\n\r\n{"a":`;
      const answer = parseResponse(await exchange(server.port, head));
      assert.equal(answer.status, 'HTTP/1.1 404 Not Found', type);
      assert.equal(answer.headers.connection, 'close', type);
      assert.deepEqual(JSON.parse(answer.body), { error: 'Not found' }, type);
    }
  } finally {
    await server.close();
  }
});


test('preflights to the API (OPTIONS, never signed) are logged at most 10 times a second, with the caller, each one answered', async () => {
  // Every OPTIONS under /apps/… was answered 204 and logged as an accepted call: 3 000 from one client wrote 3 000 lines.
  const server = await startServer();
  try {
    const base = `http://127.0.0.1:${server.port}`;
    const preflight = (path: string) =>
      fetch(`${base}${path}`, { method: 'OPTIONS', headers: { origin: 'https://example.com', 'access-control-request-method': 'POST' } });
    assert.equal((await preflight('/apps/app-id/events')).status, 204);
    await until(() => logLines(server, { event: 'api_request', method: 'OPTIONS' }).length === 1, 'the first preflight logged');
    const [first] = logLines(server, { event: 'api_request', method: 'OPTIONS' });
    assert.equal(first?.status_code, 204);
    assert.equal(first?.remote_address, '127.0.0.1', 'an unsigned caller is named, as a refused one is');
    const started = Date.now();
    const answers = await Promise.all(Array.from({ length: 200 }, (_, i) => preflight(`/apps/app-${i}/events`).then((r) => r.status)));
    const seconds = Math.ceil((Date.now() - started) / 1000) + 1;
    assert.deepEqual(new Set(answers), new Set([204]));
    // A signed call after them marks the point by which their lines would have been written, and is logged whatever they
    // took of the window.
    assert.equal((await server.sdk().trigger('c', 'e', {})).status, 200);
    await until(() => logLines(server, { event: 'api_request', status_code: 200 }).length === 1, 'the accepted call logged');
    const logged = logLines(server, { event: 'api_request', method: 'OPTIONS' }).length - 1;
    assert.ok(logged >= 1 && logged <= 10 * seconds, `${logged} lines for 200 preflights in ${seconds} s`);
  } finally {
    await server.close();
  }
});
