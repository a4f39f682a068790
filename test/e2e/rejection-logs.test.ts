/**
 * Every rejection path logs within the connection's cap (README: "only its first 20 are logged"), and frames the socket
 * layer refuses (invalid UTF-8: 1007, over the hard size limit: 1009) are the client's fault: counted, logged with the
 * catalog event at info, never an `error` line with a stack, and `connection_closed` carries the close code sent.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import WebSocket from 'ws';
import { RawClient } from '../helpers/raw-client.js';
import { signedFetch } from '../helpers/signed-fetch.js';
import { APP, startServer, type TestServer } from '../helpers/server.js';
import { until } from '../helpers/wait.js';

const LOGGED = 20;
const errorLines = (server: TestServer) => server.logs.filter((l) => l.level === 'error' || Number(l.level) >= 50);
const linesOf = (server: TestServer, socketId: string) => server.logs.filter((l) => l.socket_id === socketId);

test('subscribe / unsubscribe churn: the first 300 of a minute are logged, one warning, every one answered', { timeout: 30_000 }, async () => {
  // A probe: 1 000 frames of churn at one per 5 ms wrote ~470 `subscribed` and as many `unsubscribed` lines for one
  // connection, ~190 lines a second, as fast as its frame budget let it.
  const server = await startServer({ FRAME_RATE_LIMIT_PER_SECOND: '0' });
  try {
    const { client, socketId } = await RawClient.established(server.port);
    const PAIRS = 400;
    for (let i = 0; i < PAIRS; i++) {
      // Each answered before its unsubscribe: one sent while the join is under way would cancel it, unanswered.
      client.send({ event: 'pusher:subscribe', data: { channel: 'churn' } });
      await until(() => client.all('pusher_internal:subscription_succeeded').length === i + 1, `subscribe ${i + 1} answered`);
      client.send({ event: 'pusher:unsubscribe', data: { channel: 'churn' } });
    }
    // A later frame's answer comes after every line the churn wrote.
    client.send({ event: 'pusher:ping', data: {} });
    await client.next('pusher:pong');
    const lines = linesOf(server, socketId);
    const changes = lines.filter((l) => l.event === 'subscribed' || l.event === 'unsubscribed');
    assert.equal(changes.length, 300);
    const warned = lines.filter((l) => l.event === 'subscriptions_unlogged');
    assert.deepEqual(
      warned.map((l) => [l.level, l.limit_per_minute]),
      [['warn', 300]],
    );
    await client.close();
    assert.deepEqual(errorLines(server), []);
  } finally {
    await server.close();
  }
});

test('5000 bad-auth subscribes and 5000 invalid channel names log at most the capped number of lines', { timeout: 30_000 }, async () => {
  const server = await startServer({ FRAME_RATE_LIMIT_PER_SECOND: '0' });
  try {
    for (const [kind, frame] of [
      ['auth_failed', (i: number) => ({ event: 'pusher:subscribe', data: { channel: `private-${i}`, auth: `${APP.key}:bad` } })],
      ['subscription_failed', (i: number) => ({ event: 'pusher:subscribe', data: { channel: `bad name ${i}` } })],
    ] as const) {
      const { client, socketId } = await RawClient.established(server.port);
      const N = 5000;
      for (let i = 0; i < N; i++) client.send(frame(i));
      await until(() => client.all('pusher:subscription_error').length === N, `${N} subscription errors`, 15_000);
      const lines = linesOf(server, socketId);
      const refusals = lines.filter((l) => l.event === kind);
      assert.equal(refusals.length, LOGGED, `${kind}: the first ${LOGGED} are logged`);
      const capped = lines.filter((l) => String(l.msg).includes('counted, not logged'));
      assert.equal(capped.length, 1);
      // The first refusal not logged by its own event and reason, not a subscription's reason as a frame's.
      assert.deepEqual([capped[0]!.event, capped[0]!.reason, capped[0]!.first_unlogged], ['message_rejected', undefined, kind]);
      await client.close();
    }
    assert.deepEqual(errorLines(server), []);
  } finally {
    await server.close();
  }
});

/** Opens a raw `ws` socket, sends `payload` as one text frame, resolves with the close code the server sent. */
async function sendAndClose(server: TestServer, payload: Buffer): Promise<{ code: number; socketId: string }> {
  const { client, socketId } = await RawClient.established(server.port);
  // The `ws` client does not validate what it sends: invalid UTF-8 goes out as a text frame.
  client.ws.send(payload, { binary: false });
  const closed = await client.waitClosed();
  return { code: closed.code, socketId };
}

for (const [name, payload, code, reason] of [
  ['invalid UTF-8', Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), 1007, 'invalid_utf8'],
  ['oversized', Buffer.alloc(3000, 0x61), 1009, 'too_large'],
] as const) {
  test(`${name} frames close with ${code}, are logged as message_rejected at info, and connection_closed says ${code}`, async () => {
    // MAX_PAYLOAD_BYTES 1024: the socket layer refuses frames over 2048 bytes.
    const server = await startServer({ MAX_PAYLOAD_BYTES: '1024' });
    try {
      const { code: closeCode, socketId } = await sendAndClose(server, payload);
      assert.equal(closeCode, code, 'the client sees the close code');
      await until(() => linesOf(server, socketId).some((l) => l.event === 'connection_closed'), 'connection_closed');
      const lines = linesOf(server, socketId);
      const rejected = lines.find((l) => l.event === 'message_rejected');
      assert.ok(rejected, 'a message_rejected line');
      assert.equal(rejected.level, 'info');
      assert.equal(rejected.reason, reason);
      assert.equal(rejected.code, code);
      const closed = lines.find((l) => l.event === 'connection_closed');
      assert.equal(closed?.code, code);
      assert.equal(closed?.reason, 'protocol_error');
      assert.deepEqual(errorLines(server), [], 'no error-level line');
      assert.ok(lines.every((l) => typeof l.event === 'string'), 'every line of the connection has a catalog event');
      assert.equal(server.app.hub.connectionCount(), 0);
    } finally {
      await server.close();
    }
  });
}

test('a flood of connections each sending one invalid frame logs one line per connection, none at error', async () => {
  const server = await startServer();
  try {
    const sockets = await Promise.all(
      Array.from({ length: 30 }, async () => {
        const ws = new WebSocket(`ws://127.0.0.1:${server.port}/app/${APP.key}`);
        await new Promise<void>((resolve) => ws.once('message', () => resolve()));
        ws.send(Buffer.from([0xc3, 0x28]), { binary: false });
        return new Promise<number>((resolve) => ws.once('close', (c: number) => resolve(c)));
      }),
    );
    assert.deepEqual([...new Set(sockets)], [1007]);
    await until(() => server.app.hub.connectionCount() === 0, 'every connection gone');
    assert.equal(server.logs.filter((l) => l.event === 'message_rejected' && l.reason === 'invalid_utf8').length, 30);
    assert.deepEqual(errorLines(server), []);
  } finally {
    await server.close();
  }
});

test('an HTTP API flood of bad signatures and of requests over the rate logs at most 10 lines a second of each, none above info', async () => {
  const server = await startServer({ API_RATE_LIMIT_PER_SECOND: '1' });
  try {
    const N = 40;
    const started = Date.now();
    const answers = await Promise.all(
      Array.from({ length: N }, () => signedFetch(server, 'GET', `/apps/${APP.id}/channels`, { sign: { signature: 'bad' } })),
    );
    assert.ok(answers.every((a) => a.status === 401));
    const limited = await Promise.all(Array.from({ length: N }, () => signedFetch(server, 'GET', `/apps/${APP.id}/channels`)));
    assert.ok(limited.filter((a) => a.status === 429).length >= N - 2, 'over the rate');
    // Each flood took well under the two seconds it would need to earn more than 2 × 10 lines of its kind.
    assert.ok(server.logs.filter((l) => l.event === 'auth_failed').length <= 20);
    assert.ok(server.logs.filter((l) => l.event === 'rate_limited').length <= 20);
    assert.ok(server.logs.filter((l) => l.event === 'auth_failed').length >= 1, 'the first refusals are logged');
    assert.ok(server.logs.filter((l) => l.event === 'rate_limited').length >= 1);
    // Their access lines too (one window for every refused request): not one line per request.
    const seconds = Math.ceil((Date.now() - started) / 1000) + 1;
    const refusedLines = server.logs.filter((l) => l.event === 'api_request' && Number(l.status_code) >= 400).length;
    assert.ok(refusedLines >= 1 && refusedLines <= 10 * seconds, `${refusedLines} api_request lines for ${2 * N} refusals in ${seconds} s`);
    assert.deepEqual(errorLines(server).concat(server.logs.filter((l) => l.level === 'warn' || l.level === 40)), []);
  } finally {
    await server.close();
  }
});

test('every accepted HTTP API request has its api_request line, however many arrive at once', async () => {
  const server = await startServer();
  try {
    const N = 60;
    const answers = await Promise.all(Array.from({ length: N }, () => signedFetch(server, 'GET', `/apps/${APP.id}/channels`)));
    assert.deepEqual(new Set(answers.map((a) => a.status)), new Set([200]));
    await until(() => server.logs.filter((l) => l.event === 'api_request' && l.status_code === 200).length === N, `${N} lines`);
  } finally {
    await server.close();
  }
});
