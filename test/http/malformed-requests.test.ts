/**
 * Requests Node's HTTP parser refuses before any route sees them (src/http/client-errors.ts): each gets the error registry's
 * answer (`{"error": …}` with its status) and a closed connection, is counted under its reason and logged as
 * `request_malformed`, never at `error` level; the server goes on serving. The timeout branch is driven directly: Node's
 * request timeouts are checked every 30 s. So are requests the router refuses before any route (src/http/params.ts).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { connect, createServer, type Socket } from 'node:net';
import { test } from 'node:test';
import { clientErrorHandler, refusedRequests } from '../../src/http/client-errors.js';
import { loggedOnce, logLines } from '../helpers/logs.js';
import { connected } from '../helpers/pusher-events.js';
import { APP, startServer } from '../helpers/server.js';
import { exchange, parseResponse } from '../helpers/raw-http.js';
import { signedQuery } from '../helpers/signed-fetch.js';
import { capturedLogger, recordingMetrics } from '../helpers/unit.js';
import { until, within } from '../helpers/wait.js';

test('a malformed request and oversized headers: the registry answer, a closed connection, one request_malformed line each', async () => {
  const server = await startServer();
  try {
    const garbage = parseResponse(await exchange(server.port, 'NOT HTTP AT ALL\r\n\r\n'));
    assert.equal(garbage.status, 'HTTP/1.1 400 Bad Request');
    assert.equal(garbage.headers['content-type'], 'application/json; charset=utf-8');
    assert.deepEqual(JSON.parse(garbage.body), { error: 'Invalid request' });
    const line = await loggedOnce(server, { event: 'request_malformed', reason: 'bad_request' });
    assert.equal(line.level, 'info', "a client's fault, not the server's");
    assert.equal(line.code, 400);
    assert.match(String(line.error), /^HPE_/);
    assert.equal(line.remote_address, '127.0.0.1');

    // Headers over Node's 16 KiB, on an upgrade request: refused by the parser before ws or any route sees it.
    const big = `GET /app/${APP.key}?protocol=7 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nX-Pad: ${'a'.repeat(20_000)}\r\n\r\n`;
    const overflow = parseResponse(await exchange(server.port, big));
    assert.equal(overflow.status, 'HTTP/1.1 431 Request Header Fields Too Large');
    assert.deepEqual(JSON.parse(overflow.body), { error: 'Request headers too large' });
    await loggedOnce(server, { event: 'request_malformed', reason: 'header_overflow', code: 431 });

    assert.deepEqual(logLines(server, { level: 'error' }), []);
    assert.match(await connected(server.client()), /^\d+\.\d+$/, 'the server goes on serving');
  } finally {
    await server.close();
  }
});

test('a request cut by the server timeouts gets 408; a reset peer gets nothing and is not counted', async () => {
  const { metrics, calls } = recordingMetrics();
  const { logger, lines } = capturedLogger('info');
  const handle = clientErrorHandler(refusedRequests({ metrics, logger }));
  const accepted: Socket[] = [];
  // The server side reads what arrives, as Node's HTTP server has read a request before its parser gives up on it.
  const server = createServer((s) => {
    s.resume();
    accepted.push(s);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  try {
    const timedOut = Object.assign(new Error('Request timeout'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' });
    const answered = exchange(port, 'GET / HTTP/1.1\r\nHost: x\r\n');
    await within(new Promise<void>((resolve) => server.once('connection', () => setImmediate(resolve))), 'the connection');
    handle(timedOut, accepted[0]!);
    const response = parseResponse(await answered);
    assert.equal(response.status, 'HTTP/1.1 408 Request Timeout');
    assert.deepEqual(JSON.parse(response.body), { error: 'Request not received in time' });
    assert.deepEqual(calls, ['httpMalformed(timeout)']);
    assert.equal(lines.filter((l) => l.event === 'request_malformed' && l.reason === 'timeout' && l.code === 408).length, 1);

    const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
    const silent = connect(port, '127.0.0.1');
    silent.on('error', () => undefined);
    await within(new Promise<void>((resolve) => server.once('connection', () => setImmediate(resolve))), 'the second connection');
    let written = '';
    silent.on('data', (chunk: Buffer) => (written += chunk.toString('latin1')));
    handle(reset, accepted[1]!);
    // The socket is left as it was: still open, nothing written, nothing counted or logged.
    assert.equal(accepted[1]!.destroyed, false);
    assert.deepEqual(calls, ['httpMalformed(timeout)']);
    assert.equal(lines.filter((l) => l.event === 'request_malformed').length, 1);
    silent.destroy();
    await within(once(accepted[1]!, 'close'), 'the second connection to close');
    assert.equal(written, '');
  } finally {
    for (const s of accepted) s.destroy();
    await new Promise((resolve) => server.close(resolve));
  }
});

test('a path the router refuses: the registry answer, counted and logged; an upgrade to it gets its answer and a closed socket', async () => {
  const server = await startServer();
  try {
    // A malformed percent-encoding on an upgrade: fastify's reply left the socket open (one descriptor per attempt).
    const upgrade = [
      `GET /app/%zz?protocol=7 HTTP/1.1`,
      'Host: x',
      'Connection: Upgrade',
      'Upgrade: websocket',
      'Sec-WebSocket-Version: 13',
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
    ];
    const answer = parseResponse(await exchange(server.port, `${upgrade.join('\r\n')}\r\n\r\n`));
    assert.equal(answer.status, 'HTTP/1.1 400 Bad Request');
    assert.deepEqual(JSON.parse(answer.body), { error: 'Invalid URL' });
    const line = await loggedOnce(server, { event: 'request_malformed', reason: 'bad_url' });
    assert.equal(line.code, 400);
    assert.equal(line.error, 'FST_ERR_BAD_URL');

    // A path parameter over the longest channel name or user id, on a plain API call: answered, counted, logged.
    const long = await fetch(`http://127.0.0.1:${server.port}/apps/${APP.id}/users/${'u'.repeat(5000)}/terminate_connections`, {
      method: 'POST',
    });
    assert.equal(long.status, 400);
    assert.deepEqual(await long.json(), { error: 'Path parameter too long' });
    await loggedOnce(server, { event: 'request_malformed', reason: 'param_too_long', code: 400 });
    assert.deepEqual(logLines(server, { level: 'error' }), []);
    assert.match(await connected(server.client()), /^\d+\.\d+$/, 'the server goes on serving');
  } finally {
    await server.close();
  }
});

test('behind a trusted proxy, a path the router refuses is logged with the client the proxy names, cut as the client\'s words are', async () => {
  // A probe: fastify hands the router's refusals a request built without trustProxy, so `remote_address` was the proxy's.
  const server = await startServer({ TRUST_PROXY: 'loopback' });
  try {
    for (const path of ['/apps/%zz/events', '/app/%zz?protocol=7']) {
      const request = [`GET ${path} HTTP/1.1`, 'Host: x', 'X-Forwarded-For: 2001:db8::7', 'Connection: close'];
      assert.equal(parseResponse(await exchange(server.port, `${request.join('\r\n')}\r\n\r\n`)).status, 'HTTP/1.1 400 Bad Request');
    }
    await until(() => logLines(server, { event: 'request_malformed', reason: 'bad_url' }).length === 2, 'both refusals logged');
    assert.deepEqual(logLines(server, { event: 'request_malformed', reason: 'bad_url' }).map((l) => l.remote_address), ['2001:db8::7', '2001:db8::7']);
    // The address a proxy names is the client's text: 64 characters of it at most (a 12 KB one made a 12 KB line).
    const request = ['GET /apps/%zz/events HTTP/1.1', 'Host: x', `X-Forwarded-For: ${'a'.repeat(5000)}`, 'Connection: close'];
    await exchange(server.port, `${request.join('\r\n')}\r\n\r\n`);
    await until(() => logLines(server, { event: 'request_malformed', reason: 'bad_url' }).length === 3, 'the third refusal logged');
    assert.equal(logLines(server, { event: 'request_malformed', reason: 'bad_url' })[2]!.remote_address, `${'a'.repeat(64)}…`);
    // The refusals of a parsed request before fastify (an Expect it cannot meet, a CONNECT, a request without Host) name
    // the client the proxy names too: they named the proxy (a probe, on the 417).
    const refusedBeforeFastify: Array<[string, string, string]> = [
      ['expectation', 'HTTP/1.1 417 Expectation Failed', 'POST /apps/x/events HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\nContent-Length: 2'],
      ['bad_method', 'HTTP/1.1 405 Method Not Allowed', 'CONNECT x:443 HTTP/1.1\r\nHost: x'],
      ['no_host', 'HTTP/1.1 400 Bad Request', 'GET /healthz HTTP/1.1'],
    ];
    for (const [reason, status, head] of refusedBeforeFastify) {
      const answer = await exchange(server.port, `${head}\r\nX-Forwarded-For: 2001:db8::9\r\nConnection: close\r\n\r\n`);
      assert.equal(parseResponse(answer).status, status, reason);
      const line = await loggedOnce(server, { event: 'request_malformed', reason });
      assert.equal(line.remote_address, '2001:db8::9', reason);
    }
  } finally {
    await server.close();
  }
});

test('a signed API call whose body never comes is answered 408 after HTTP_REQUEST_TIMEOUT_MS, counted and logged', async () => {
  // fastify's requestTimeout is 0 (none) unless set: the socket was held for as long as the client liked.
  const server = await startServer({ HTTP_REQUEST_TIMEOUT_MS: '1000' });
  try {
    const path = `/apps/${APP.id}/events`;
    const body = JSON.stringify({ name: 'e', channel: 'c', data: '{}' });
    const head = [
      `POST ${path}?${signedQuery('POST', path, { body })} HTTP/1.1`,
      'Host: x',
      'Content-Type: application/json',
      `Content-Length: ${body.length}`,
    ];
    // Half the body, then nothing: within the timeout plus one check interval (a quarter of it) the server gives up.
    const started = Date.now();
    const answer = parseResponse(await exchange(server.port, `${head.join('\r\n')}\r\n\r\n${body.slice(0, 10)}`));
    assert.equal(answer.status, 'HTTP/1.1 408 Request Timeout');
    assert.deepEqual(JSON.parse(answer.body), { error: 'Request not received in time' });
    assert.ok(Date.now() - started >= 900, 'not before the timeout');
    await loggedOnce(server, { event: 'request_malformed', reason: 'timeout', code: 408 });
  } finally {
    await server.close();
  }
});


test('the default bound docs/errors.md gives API_PARAM_TOO_LONG is the router\'s: a segment that long is served, one more refused', async () => {
  // The doc said 201 while the router refused from 274 on (a probe of the docs as written).
  const doc = await readFile(new URL('../../docs/errors.md', import.meta.url), 'utf8');
  const bound = Number(/`API_PARAM_TOO_LONG`[\s\S]*?:\s+(\d+) by default/.exec(doc)?.[1]);
  assert.ok(bound > 0, 'docs/errors.md names the default bound');
  const server = await startServer();
  try {
    const at = await fetch(`http://127.0.0.1:${server.port}/nowhere/${'c'.repeat(bound)}`);
    assert.equal(at.status, 404);
    const over = await fetch(`http://127.0.0.1:${server.port}/nowhere/${'c'.repeat(bound + 1)}`);
    assert.equal(over.status, 400);
    assert.deepEqual(await over.json(), { error: 'Path parameter too long' });
  } finally {
    await server.close();
  }
});
