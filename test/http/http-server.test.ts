/**
 * What Node's HTTP server would answer or do on its own, answered from the registry instead (src/http/http-server.ts):
 * requests pipelined ahead of their answers past MAX_REQUESTS_AHEAD, an HTTP/1.1 request without Host, an unsupported
 * Expect, CONNECT. Each gets the registry's `{"error": …}` and a closed connection and is logged as `request_malformed`
 * under its reason (the counts are checked on a live scrape in test/telemetry/inbound-metrics.test.ts).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect } from 'node:net';
import { test } from 'node:test';
import { MAX_REQUESTS_AHEAD } from '../../src/http/http-server.js';
import { loggedOnce, logLines } from '../helpers/logs.js';
import { openSockets, startServer } from '../helpers/server.js';
import { exchange, parseResponse } from '../helpers/raw-http.js';
import { eventually, until, within } from '../helpers/wait.js';

const HEALTHZ = 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n';

/** The status lines of every response in `text`, in order. */
function statuses(text: string): string[] {
  return [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => m[1]!);
}

test('requests pipelined past the bound: the ones before it answered, then one 429 and the connection closed', async () => {
  const server = await startServer();
  try {
    const answered = await exchange(server.port, HEALTHZ.repeat(MAX_REQUESTS_AHEAD + 24));
    assert.deepEqual(statuses(answered), [...Array<string>(MAX_REQUESTS_AHEAD).fill('200'), '429']);
    const refusal = parseResponse(answered.slice(answered.lastIndexOf('HTTP/1.1 429')));
    assert.equal(refusal.headers.connection, 'close');
    assert.deepEqual(JSON.parse(refusal.body), { error: `More than ${MAX_REQUESTS_AHEAD} requests sent ahead of their answers` });
    const line = await loggedOnce(server, { event: 'request_malformed', reason: 'pipelined' });
    assert.equal(line.level, 'info', "a client's fault, not the server's");
    assert.equal(line.code, 429);
    assert.equal(logLines(server, { event: 'request_malformed' }).length, 1, 'one line for the connection, not one per request');
    assert.equal((await fetch(`http://127.0.0.1:${server.port}/healthz`)).status, 200, 'the server goes on serving');
  } finally {
    await server.close();
  }
});

test('up to the bound pipelined, and any number sent one after another on a keep-alive connection, are all served', async () => {
  const server = await startServer();
  const socket = connect(server.port, '127.0.0.1');
  try {
    await once(socket, 'connect');
    let received = '';
    socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
    socket.write(HEALTHZ.repeat(MAX_REQUESTS_AHEAD));
    await until(() => statuses(received).length === MAX_REQUESTS_AHEAD, 'the pipelined answers');
    for (let i = 1; i <= 3 * MAX_REQUESTS_AHEAD; i++) {
      socket.write(HEALTHZ);
      await until(() => statuses(received).length === MAX_REQUESTS_AHEAD + i, `answer ${i}`);
    }
    assert.deepEqual(new Set(statuses(received)), new Set(['200']));
    assert.equal(socket.destroyed, false, 'the connection stays open');
    assert.deepEqual(logLines(server, { event: 'request_malformed' }), []);
  } finally {
    socket.destroy();
    await server.close();
  }
});

test('a client that pipelines thousands of requests and never reads: its socket is closed after the 429, not served to the end', async () => {
  const server = await startServer();
  const socket = connect(server.port, '127.0.0.1');
  socket.on('error', () => undefined);
  try {
    await once(socket, 'connect');
    socket.pause();
    socket.write(HEALTHZ.repeat(20_000));
    // The client reads nothing, yet the server lets go of the connection.
    await eventually(async () => (await openSockets(server)) === 0, 'the server to close the socket', 5000);
    // What it was sent before: the answers ahead of the bound and the 429, from the client's receive buffer.
    let received = '';
    socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
    const ended = once(socket, 'end');
    socket.resume();
    await within(ended, 'the end of what the server wrote');
    assert.deepEqual(statuses(received), [...Array<string>(MAX_REQUESTS_AHEAD).fill('200'), '429']);
  } finally {
    socket.destroy();
    await server.close();
  }
});


test('an HTTP/1.1 request without Host: 400 API_HOST_REQUIRED; HTTP/1.0 needs none', async () => {
  const server = await startServer();
  try {
    const response = parseResponse(await exchange(server.port, 'GET /healthz HTTP/1.1\r\n\r\n'));
    assert.equal(response.status, 'HTTP/1.1 400 Bad Request');
    assert.equal(response.headers['content-type'], 'application/json; charset=utf-8');
    assert.deepEqual(JSON.parse(response.body), { error: 'An HTTP/1.1 request needs a Host header' });
    await loggedOnce(server, { event: 'request_malformed', reason: 'no_host', code: 400, error: 'API_HOST_REQUIRED' });
    assert.equal(parseResponse(await exchange(server.port, 'GET /healthz HTTP/1.0\r\n\r\n')).status, 'HTTP/1.1 200 OK');
  } finally {
    await server.close();
  }
});

test('Expect other than 100-continue: 417 API_EXPECTATION_FAILED and closed; 100-continue is honoured', async () => {
  const server = await startServer();
  try {
    const refused = await exchange(server.port, 'POST /apps/app-id/events HTTP/1.1\r\nHost: x\r\nExpect: x-later\r\nContent-Length: 2\r\n\r\n');
    const response = parseResponse(refused);
    assert.equal(response.status, 'HTTP/1.1 417 Expectation Failed');
    assert.deepEqual(JSON.parse(response.body), { error: 'Unsupported Expect header (only 100-continue is supported)' });
    await loggedOnce(server, { event: 'request_malformed', reason: 'expectation', code: 417 });

    const socket = connect(server.port, '127.0.0.1');
    try {
      let received = '';
      socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
      socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n');
      await until(() => statuses(received).length === 2, 'the 100 and the answer');
      assert.deepEqual(statuses(received), ['100', '200']);
    } finally {
      socket.destroy();
    }
  } finally {
    await server.close();
  }
});

test('CONNECT: 405 API_METHOD_NOT_ALLOWED with Allow, and closed', async () => {
  const server = await startServer();
  try {
    const response = parseResponse(await exchange(server.port, 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n'));
    assert.equal(response.status, 'HTTP/1.1 405 Method Not Allowed');
    assert.equal(response.headers.allow, 'GET, POST, OPTIONS');
    assert.deepEqual(JSON.parse(response.body), { error: 'Method not allowed' });
    await loggedOnce(server, { event: 'request_malformed', reason: 'bad_method', code: 405 });
    assert.deepEqual(logLines(server, { level: 'error' }), []);
  } finally {
    await server.close();
  }
});
