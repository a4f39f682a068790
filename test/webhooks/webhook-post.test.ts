/**
 * The webhook request (src/webhooks/webhook-post.ts) against real sockets on 127.0.0.1: what the receiver gets, what a
 * status means, a redirect that is not followed, connection reuse, the abort, TLS for https: URLs, and a server that
 * sends webhooks without detaching an ArrayBuffer in its main thread (Node's fetch did, on its first request).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { ANSWER_BODY_MAX_BYTES, postWebhook, retryAfterMs } from '../../src/webhooks/webhook-post.js';
import { spawnBeacon } from '../helpers/beacon-process.js';
import { ARRAY_BUFFER_DETACHED, TRACE_PROTECTORS } from '../helpers/protectors.js';
import { RawClient } from '../helpers/raw-client.js';
import { within } from '../helpers/wait.js';
import { startWebhookReceiver } from '../helpers/webhook-receiver.js';

interface Seen {
  method: string | undefined;
  url: string | undefined;
  headers: IncomingMessage['headers'];
  body: string;
  remotePort: number | undefined;
}

/** A receiver answering each request with the next of `statuses` (200 when none is left), recording what it got. */
let server: Server;
let base: string;
const seen: Seen[] = [];
const statuses: Array<{ status: number; headers?: Record<string, string> }> = [];
before(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({
        method: req.method,
        url: req.url,
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        remotePort: req.socket.remotePort,
      });
      const answer = statuses.shift() ?? { status: 200 };
      res.writeHead(answer.status, answer.headers).end('a body nobody reads');
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => {
  server.closeAllConnections();
  server.close();
});

const request = (body: string, signal = AbortSignal.timeout(3000), answerBodyMs = 3000) => ({
  method: 'POST' as const,
  headers: { 'content-type': 'application/json', 'x-pusher-key': 'app-key' },
  body,
  signal,
  answerBodyMs,
});

test('POSTs the body and headers with its length, and answers with the status', async () => {
  seen.length = 0;
  const body = JSON.stringify({ time_ms: 1, events: [{ name: 'channel_occupied', channel: 'café' }] });
  const answer = await postWebhook(`${base}/hooks?x=1`, request(body));
  assert.deepEqual(answer, { status: 200, ok: true });
  assert.equal(seen.length, 1);
  assert.equal(seen[0]!.method, 'POST');
  assert.equal(seen[0]!.url, '/hooks?x=1');
  assert.equal(seen[0]!.body, body);
  assert.equal(seen[0]!.headers['content-length'], String(Buffer.byteLength(body)));
  assert.equal(seen[0]!.headers['content-type'], 'application/json');
  assert.equal(seen[0]!.headers['x-pusher-key'], 'app-key');
});

test('a non-2xx status is not ok, and a redirect is not followed', async () => {
  seen.length = 0;
  statuses.push({ status: 503 }, { status: 302, headers: { location: '/elsewhere' } }, { status: 204 });
  assert.deepEqual(await postWebhook(`${base}/hooks`, request('{}')), { status: 503, ok: false });
  assert.deepEqual(await postWebhook(`${base}/hooks`, request('{}')), { status: 302, ok: false });
  assert.deepEqual(await postWebhook(`${base}/hooks`, request('{}')), { status: 204, ok: true });
  assert.deepEqual(
    seen.map((s) => s.url),
    ['/hooks', '/hooks', '/hooks'],
  );
});

test('a 429 or 503 answers its Retry-After, in seconds or as a date; another status\'s is not read', async () => {
  const inTwoMinutes = new Date(Date.now() + 120_000).toUTCString();
  statuses.push(
    { status: 503, headers: { 'retry-after': '2' } },
    { status: 429, headers: { 'retry-after': inTwoMinutes } },
    { status: 500, headers: { 'retry-after': '2' } },
    { status: 429, headers: { 'retry-after': 'soon' } },
  );
  assert.deepEqual(await postWebhook(`${base}/hooks`, request('{}')), { status: 503, ok: false, retryAfterMs: 2000 });
  const dated = await postWebhook(`${base}/hooks`, request('{}'));
  assert.ok(dated.retryAfterMs !== undefined && dated.retryAfterMs > 110_000 && dated.retryAfterMs <= 120_000, JSON.stringify(dated));
  assert.deepEqual(await postWebhook(`${base}/hooks`, request('{}')), { status: 500, ok: false });
  assert.deepEqual(await postWebhook(`${base}/hooks`, request('{}')), { status: 429, ok: false });
  assert.equal(retryAfterMs(' 0 ', 0), 0);
  // More digits than any date's seconds: a long wait all the same (it was read as no header, a review).
  assert.equal(retryAfterMs('99999999999', 0), 99_999_999_999_000);
  assert.equal(retryAfterMs('Thu, 01 Jan 1970 00:00:01 GMT', 5_000), 0, 'a date in the past');
  assert.equal(retryAfterMs(undefined, 0), undefined);
});

test('consecutive requests reuse one connection (the answer is drained)', async () => {
  seen.length = 0;
  for (let i = 0; i < 3; i++) assert.equal((await postWebhook(`${base}/hooks`, request(`{"i":${i}}`))).status, 200);
  assert.equal(new Set(seen.map((s) => s.remotePort)).size, 1, JSON.stringify(seen.map((s) => s.remotePort)));
});

/**
 * A TCP server that answers every request it reads with a 200 head announcing a body of `length` bytes, then `sent` of
 * them; resolves each socket's close (the client's) in `closed`.
 */
async function partialAnswers(length: number, sent: number): Promise<{ port: number; closed: Promise<void>[]; close: () => void }> {
  const sockets: Socket[] = [];
  const closed: Promise<void>[] = [];
  const tcp = createTcpServer((socket) => {
    sockets.push(socket);
    closed.push(new Promise((resolve) => socket.once('close', () => resolve())));
    socket.on('error', () => {});
    socket.on('data', () => {
      socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${length}\r\nConnection: keep-alive\r\n\r\n`);
      socket.write('x'.repeat(sent));
    });
  });
  tcp.listen(0, '127.0.0.1');
  await once(tcp, 'listening');
  return {
    port: (tcp.address() as AddressInfo).port,
    closed,
    close: () => {
      for (const s of sockets) s.destroy();
      tcp.close();
    },
  };
}

test('an answer whose body never ends, or is long, closes its connection: it is neither kept nor reused', async () => {
  // A receiver that sent its 200 head and part of the body, then stalled, held the socket for good: one per request.
  const stalled = await partialAnswers(100, 10);
  try {
    const answer = await postWebhook(`http://127.0.0.1:${stalled.port}/hooks`, request('{}', AbortSignal.timeout(3000), 200));
    assert.deepEqual(answer, { status: 200, ok: true });
    assert.equal(stalled.closed.length, 1);
    await within(stalled.closed[0]!, 'the stalled answer\'s connection to be closed', 2000);
  } finally {
    stalled.close();
  }
  // A body past ANSWER_BODY_MAX_BYTES is not drained to the end: the connection is closed once past it.
  const long = await partialAnswers(10 * ANSWER_BODY_MAX_BYTES, 2 * ANSWER_BODY_MAX_BYTES);
  try {
    assert.equal((await postWebhook(`http://127.0.0.1:${long.port}/hooks`, request('{}'))).status, 200);
    await within(long.closed[0]!, 'the long answer\'s connection to be closed', 2000);
  } finally {
    long.close();
  }
});

/** A TCP server that reads and never answers; resolves the first bytes it receives. `close` may be called twice. */
async function silentServer(): Promise<{ port: number; firstBytes: Promise<Buffer>; close: () => void }> {
  const sockets: Socket[] = [];
  let gotBytes: (b: Buffer) => void = () => {};
  const firstBytes = new Promise<Buffer>((resolve) => (gotBytes = resolve));
  const tcp = createTcpServer((socket) => {
    sockets.push(socket);
    socket.once('data', gotBytes);
    socket.on('error', () => {});
  });
  tcp.listen(0, '127.0.0.1');
  await once(tcp, 'listening');
  let closed = false;
  return {
    port: (tcp.address() as AddressInfo).port,
    firstBytes,
    close: () => {
      if (closed) return;
      closed = true;
      for (const s of sockets) s.destroy();
      tcp.close();
    },
  };
}

test('the signal aborts a request that gets no answer', async () => {
  const silent = await silentServer();
  try {
    const abort = new AbortController();
    const pending = postWebhook(`http://127.0.0.1:${silent.port}/hooks`, request('{}', abort.signal));
    await within(silent.firstBytes, 'the request to arrive');
    abort.abort();
    await assert.rejects(within(pending, 'the rejection'), { name: 'AbortError' });
  } finally {
    silent.close();
  }
});

test('an abort with a reason rejects with that reason: a timeout reads as one, not as a plain abort', async () => {
  const silent = await silentServer();
  try {
    const abort = new AbortController();
    const pending = postWebhook(`http://127.0.0.1:${silent.port}/hooks`, request('{}', abort.signal));
    await within(silent.firstBytes, 'the request to arrive');
    abort.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError'));
    await assert.rejects(within(pending, 'the rejection'), {
      name: 'TimeoutError',
      message: 'The operation was aborted due to timeout',
    });
  } finally {
    silent.close();
  }
});

test('an https: URL is sent over TLS', async () => {
  const silent = await silentServer();
  try {
    const pending = postWebhook(`https://127.0.0.1:${silent.port}/hooks`, request('{}', AbortSignal.timeout(3000)));
    const first = await within(silent.firstBytes, 'the first bytes');
    // A TLS record of type handshake (22), carrying the ClientHello: not a plain-text "POST".
    assert.equal(first[0], 0x16, first.subarray(0, 8).toString('hex'));
    // Cut before the handshake can finish: the request fails (nothing here speaks TLS).
    silent.close();
    await assert.rejects(pending);
  } finally {
    silent.close();
  }
});

test('a server sending webhooks never detaches an ArrayBuffer', async () => {
  const receiver = await startWebhookReceiver();
  const beacon = await spawnBeacon(
    { NODE_OPTIONS: TRACE_PROTECTORS, APP_WEBHOOK_URL: receiver.url, WEBHOOK_BATCH_MS: '10', WEBHOOK_VACATE_DELAY_MS: '0' },
    { compiled: true },
  );
  try {
    const { client } = await RawClient.established(beacon.port);
    client.send({ event: 'pusher:subscribe', data: { channel: 'hooked' } });
    await client.next('pusher_internal:subscription_succeeded');
    await receiver.event((e) => e.name === 'channel_occupied' && e.channel === 'hooked', 'channel_occupied');
    await client.close();
    await receiver.event((e) => e.name === 'channel_vacated' && e.channel === 'hooked', 'channel_vacated');
  } finally {
    await beacon.stop('SIGTERM');
    await receiver.close();
  }
  assert.ok(beacon.output().includes('"event":"server_started"'), beacon.output());
  assert.ok(!beacon.output().includes(ARRAY_BUFFER_DETACHED), beacon.output());
});
