/**
 * The signing of the HTTP API is checked before the body is parsed (src/http/api.ts, src/http/signing.ts): an unsigned or
 * badly signed request is refused without a `JSON.parse` of its body, whatever its size; `body_md5` is checked over the raw
 * bytes as received, before they are decoded.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig } from '../../src/config.js';
import { verifyRequest } from '../../src/http/signing.js';
import { apiSignString, bodyMd5, sign } from '../../src/protocol/signatures.js';
import { loggedOnce } from '../helpers/logs.js';
import { RawClient } from '../helpers/raw-client.js';
import { APP, startServer, type TestServer } from '../helpers/server.js';

const EVENTS = `/apps/${APP.id}/events`;

/** POSTs `body` (raw bytes) to /events, signed with `bodyMd5` (default: the MD5 of the bytes) and `secret`. */
async function post(
  server: TestServer,
  body: Buffer,
  options: { secret?: string; md5?: string } = {},
): Promise<{ status: number; body: unknown }> {
  const query: Record<string, string> = {
    auth_key: APP.key,
    auth_timestamp: String(Math.floor(Date.now() / 1000)),
    auth_version: '1.0',
    body_md5: options.md5 ?? bodyMd5(body),
  };
  query.auth_signature = sign(options.secret ?? APP.secret, apiSignString('POST', EVENTS, query));
  const res = await fetch(`http://127.0.0.1:${server.port}${EVENTS}?${new URLSearchParams(query).toString()}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
    signal: AbortSignal.timeout(5000),
  });
  return { status: res.status, body: await res.json() };
}

/** Counts `JSON.parse` calls on strings of at least `minLength` while `run` runs (the API's body parse is one). */
async function bigParses(minLength: number, run: () => Promise<void>): Promise<number> {
  const original = JSON.parse;
  let calls = 0;
  JSON.parse = ((text: string, reviver?: (this: unknown, key: string, value: unknown) => unknown) => {
    if (typeof text === 'string' && text.length >= minLength) calls++;
    return original(text, reviver);
  }) as typeof JSON.parse;
  try {
    await run();
  } finally {
    JSON.parse = original;
  }
  return calls;
}

test('an unsigned or badly signed ~1 MB body is refused with 401 without being parsed', async () => {
  const server = await startServer();
  try {
    // Valid JSON of ~1 MB, as a flood of unsigned publishes would send.
    const big = Buffer.from(JSON.stringify({ name: 'ev', channel: 'c', data: JSON.stringify({ pad: 'x'.repeat(1_000_000) }) }));
    const refused: Array<{ status: number; body: unknown }> = [];
    const parses = await bigParses(500_000, async () => {
      refused.push(await post(server, big, { secret: 'wrong-secret' }));
      refused.push(await post(server, big, { md5: '0'.repeat(32) }));
    });
    assert.deepEqual(
      refused.map((r) => r.status),
      [401, 401],
    );
    assert.equal(parses, 0, 'the refused bodies were never JSON.parsed');
    await loggedOnce(server, { event: 'auth_failed', reason: 'bad_signature' });
    await loggedOnce(server, { event: 'auth_failed', reason: 'body_md5' });
    // The same body, signed, is parsed and answered (413: its data is over MAX_PAYLOAD_BYTES).
    const signed = await post(server, big);
    assert.equal(signed.status, 413);
  } finally {
    await server.close();
  }
});

test('body_md5 is the MD5 of the raw bytes, not of their UTF-8 decoding', async () => {
  const server = await startServer();
  try {
    const { client } = await RawClient.established(server.port);
    client.send({ event: 'pusher:subscribe', data: { channel: 'raw' } });
    await client.next('pusher_internal:subscription_succeeded');
    // A byte that is not UTF-8 inside the data string: decoding replaces it, so a digest of the decoded text differs.
    const body = Buffer.concat([
      Buffer.from('{"name":"ev","channel":"raw","data":"a'),
      Buffer.from([0xff]),
      Buffer.from('b"}'),
    ]);
    const answer = await post(server, body);
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    const frame = await client.next('ev');
    assert.equal(frame.raw, 'a\uFFFDb');
    await client.close();
  } finally {
    await server.close();
  }
});

test('an auth_timestamp that is no number, or missing, is refused as one not within the tolerance, saying so', () => {
  // The message said "more than 600 s from server time" for `auth_timestamp=abc` (a probe against the reference).
  const app = loadConfig({}).apps[0]!;
  // And a time written otherwise than in decimal seconds (Number() read these as now): hexadecimal, an exponent, a
  // fraction, spaces. Every SDK sends whole seconds in digits.
  const now = Math.floor(Date.now() / 1000);
  for (const timestamp of ['abc', '', undefined, `0x${now.toString(16)}`, `${now / 1e9}e9`, `${now}.5`, ` ${now}`]) {
    const query: Record<string, string> = { auth_key: APP.key, auth_version: '1.0' };
    if (timestamp !== undefined) query.auth_timestamp = timestamp;
    query.auth_signature = sign(APP.secret, apiSignString('GET', '/apps/app-id/channels', query));
    const result = verifyRequest(app, { method: 'GET', path: '/apps/app-id/channels', query }, 600);
    assert.equal(result.ok, false, String(timestamp));
    assert.deepEqual(result.ok ? undefined : [result.reason, result.message], ['expired', 'auth_timestamp is not a Unix time within 600 s of server time']);
  }
});
