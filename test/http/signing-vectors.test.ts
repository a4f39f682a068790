/**
 * Unit tests of the HTTP API's request signing (src/http/signing.ts) on the Pusher protocol reference's worked vector:
 * `POST /apps/3/events`, key 278d425bdf160c739803, secret 7ad3773142a6692b25b8, timestamp 1353088179 — no server, the clock
 * injected. Each refusal names its metric reason and the registry error it is answered with.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { syncBuiltinESMExports } from 'node:module';
import { mock, test } from 'node:test';
import type { AppConfig } from '../../src/config.js';
import { signedQuery, verifyBody, verifyRequest } from '../../src/http/signing.js';
import { Errors } from '../../src/protocol/errors.js';
import { apiSignString, sign } from '../../src/protocol/signatures.js';

const APP = { id: '3', key: '278d425bdf160c739803', secret: '7ad3773142a6692b25b8' } as AppConfig;
const BODY = Buffer.from('{"name":"foo","channels":["project-3"],"data":"{\\"some\\":\\"data\\"}"}');
const MD5 = 'ec365a775a4cd0599faeb73354201b6f';
const SIGNATURE = 'da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c';
const TIMESTAMP = 1353088179;
const TOLERANCE = 600;

/** The vector's query string, with `overrides` (undefined removes a parameter). */
function query(overrides: Record<string, string | undefined> = {}): string {
  const params: Record<string, string | undefined> = {
    auth_key: APP.key,
    auth_timestamp: String(TIMESTAMP),
    auth_version: '1.0',
    body_md5: MD5,
    auth_signature: SIGNATURE,
    ...overrides,
  };
  return Object.entries(params)
    .filter((e): e is [string, string] => e[1] !== undefined)
    .map(([k, v]) => `${k}=${encodeURIComponent(v)}`)
    .join('&');
}

/** `rawQuery` parsed as the API hands it to verifyRequest (names lower-cased: `signedQuery`). */
const check = (rawQuery: string, now = TIMESTAMP, method = 'POST', path = '/apps/3/events') =>
  verifyRequest(APP, { method, path, query: signedQuery(Object.fromEntries(new URLSearchParams(rawQuery)))! }, TOLERANCE, now);

test('the reference vector is accepted, and its signed body_md5 is handed on', () => {
  assert.deepEqual(check(query()), { ok: true, bodyMd5: MD5 });
  // Parameter order on the wire does not matter (the signed string sorts them); an upper-case signature is accepted.
  const reordered = query().split('&').reverse().join('&');
  assert.deepEqual(check(reordered), { ok: true, bodyMd5: MD5 });
  assert.deepEqual(check(query({ auth_signature: SIGNATURE.toUpperCase() })), { ok: true, bodyMd5: MD5 });
});

test('the timestamp window is ±tolerance seconds, inclusive', () => {
  assert.equal(check(query(), TIMESTAMP + TOLERANCE).ok, true);
  assert.equal(check(query(), TIMESTAMP - TOLERANCE).ok, true);
  const late = check(query(), TIMESTAMP + TOLERANCE + 1);
  assert.ok(!late.ok);
  assert.equal(late.reason, 'expired');
  assert.equal(late.error, Errors.API_EXPIRED);
  assert.equal(late.message, Errors.API_EXPIRED.format(TOLERANCE));
  const garbage = check(query({ auth_timestamp: 'soon' }));
  assert.ok(!garbage.ok && garbage.reason === 'expired');
});

test('each refusal has its reason and registry error', () => {
  const cases: Array<[string, ReturnType<typeof check>, string, (typeof Errors)[keyof typeof Errors]]> = [
    ['wrong key', check(query({ auth_key: 'other' })), 'unknown_key', Errors.API_UNKNOWN_KEY],
    ['no key', check(query({ auth_key: undefined })), 'unknown_key', Errors.API_UNKNOWN_KEY],
    ['tampered signature', check(query({ auth_signature: SIGNATURE.replace(/^d/, 'e') })), 'bad_signature', Errors.API_BAD_SIGNATURE],
    ['no signature', check(query({ auth_signature: undefined })), 'bad_signature', Errors.API_BAD_SIGNATURE],
    // The signature covers body_md5, the method and the path: changing any of them breaks it.
    ['other body_md5', check(query({ body_md5: '0'.repeat(32) })), 'bad_signature', Errors.API_BAD_SIGNATURE],
    ['other method', check(query(), TIMESTAMP, 'GET'), 'bad_signature', Errors.API_BAD_SIGNATURE],
    ['other path', check(query(), TIMESTAMP, 'POST', '/apps/4/events'), 'bad_signature', Errors.API_BAD_SIGNATURE],
    ['extra parameter', check(`${query()}&info=user_count`), 'bad_signature', Errors.API_BAD_SIGNATURE],
  ];
  for (const [name, result, reason, error] of cases) {
    assert.ok(!result.ok, name);
    assert.equal(result.reason, reason, name);
    assert.equal(result.error, error, name);
    assert.equal(result.message, error.message, name);
  }
});

test('a signature over the percent-decoded path is accepted too (SDKs sign `auth0|abc`, send `auth0%7Cabc`), with at most two HMACs', () => {
  const path = '/apps/3/users/auth0|abc/terminate_connections';
  const sent = '/apps/3/users/auth0%7Cabc/terminate_connections';
  const params = { auth_key: APP.key, auth_timestamp: String(TIMESTAMP), auth_version: '1.0' };
  const signedQuery = (signedPath: string) =>
    new URLSearchParams({ ...params, auth_signature: sign(APP.secret, apiSignString('POST', signedPath, params)) }).toString();
  const hmacs = (run: () => unknown): number => {
    const spy = mock.method(crypto, 'createHmac');
    syncBuiltinESMExports();
    try {
      run();
      return spy.mock.callCount();
    } finally {
      spy.mock.restore();
      syncBuiltinESMExports();
    }
  };
  const plain = signedQuery(path);
  const escaped = signedQuery(sent);
  const bad = plain.replace(/auth_signature=[0-9a-f]/, 'auth_signature=x');
  // Signed over the plain path (what the `pusher` SDK does), sent escaped: accepted, with a second HMAC.
  assert.deepEqual(check(plain, TIMESTAMP, 'POST', sent), { ok: true, bodyMd5: undefined });
  assert.equal(hmacs(() => check(plain, TIMESTAMP, 'POST', sent)), 2);
  // Signed over the path as sent: accepted with one.
  assert.deepEqual(check(escaped, TIMESTAMP, 'POST', sent), { ok: true, bodyMd5: undefined });
  assert.equal(hmacs(() => check(escaped, TIMESTAMP, 'POST', sent)), 1);
  // A bad signature costs two at most; a path without an escape, or with a malformed one, one.
  assert.equal(hmacs(() => assert.equal(check(bad, TIMESTAMP, 'POST', sent).ok, false)), 2);
  assert.equal(hmacs(() => assert.equal(check(bad, TIMESTAMP, 'POST', path).ok, false)), 1);
  assert.equal(hmacs(() => assert.equal(check(plain, TIMESTAMP, 'POST', '/apps/3/users/auth0%7Cabc%E0/x').ok, false)), 1);
  // An escaped % or / is never decoded for the check: the router decodes each parameter alone, so a signature over
  // `auth0%7Cabc` (signed as sent, user `auth0|abc`) must not fit `auth0%257Cabc` (user `auth0%7Cabc`), nor one over
  // `/channels/#server-to-user-bob/users` the channel `#server-to-user-bob/users`.
  assert.equal(check(escaped, TIMESTAMP, 'POST', '/apps/3/users/auth0%257Cabc/terminate_connections').ok, false);
  const users = '/apps/3/channels/#server-to-user-bob/users';
  const usersQuery = new URLSearchParams({ ...params, auth_signature: sign(APP.secret, apiSignString('GET', users, params)) }).toString();
  assert.equal(check(usersQuery, TIMESTAMP, 'GET', '/apps/3/channels/%23server-to-user-bob/users').ok, true);
  assert.equal(check(usersQuery, TIMESTAMP, 'GET', '/apps/3/channels/%23server-to-user-bob%2Fusers').ok, false);
  assert.equal(check(usersQuery, TIMESTAMP, 'GET', '/apps/3/channels/%23server-to-user-bob%2fusers').ok, false);
  // Decoding never makes another user's signature fit: signed for `auth0|abd`, sent for `auth0|abc`.
  const other = check(signedQuery('/apps/3/users/auth0|abd/terminate_connections'), TIMESTAMP, 'POST', sent);
  assert.ok(!other.ok && other.reason === 'bad_signature' && other.error === Errors.API_BAD_SIGNATURE);
});

test('verifyBody: the raw bytes must match the signed body_md5; an empty body needs none', () => {
  assert.deepEqual(verifyBody(BODY, MD5), { ok: true, bodyMd5: MD5 });
  const tampered = verifyBody(Buffer.from(BODY.toString().replace('foo', 'bar')), MD5);
  assert.ok(!tampered.ok);
  assert.equal(tampered.reason, 'body_md5');
  assert.equal(tampered.error, Errors.API_BODY_MD5);
  const unsigned = verifyBody(BODY, undefined);
  assert.ok(!unsigned.ok && unsigned.reason === 'body_md5');
  assert.deepEqual(verifyBody(Buffer.alloc(0), undefined), { ok: true, bodyMd5: undefined });
});
