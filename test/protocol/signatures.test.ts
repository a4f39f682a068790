import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  apiSignString,
  bodyMd5,
  channelAuthString,
  safeEqualHex,
  sign,
  userAuthString,
  verifyAuth,
} from '../../src/protocol/signatures.js';

// The worked vectors of reference/pusher-protocol.md ("Signatures").
const KEY = '278d425bdf160c739803';
const SECRET = '7ad3773142a6692b25b8';
const SOCKET = '1234.1234';

test('private channel vector', () => {
  const signed = channelAuthString(SOCKET, 'private-foobar');
  assert.equal(signed, '1234.1234:private-foobar');
  assert.equal(sign(SECRET, signed), '58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4');
  assert.ok(verifyAuth(`${KEY}:58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4`, KEY, SECRET, signed));
});

test('presence channel vector signs the channel_data string as given', () => {
  // The reference prints user_info.name as "Mr. Channels", but its signature is the one of Pusher's own documentation,
  // whose channel_data says "Mr. Pusher": only that input yields afaed369…. The signature is the fixed point; the
  // reference's input string is a typo (reported in the closing note of issue 2).
  const channelData = '{"user_id":10,"user_info":{"name":"Mr. Pusher"}}';
  const signed = channelAuthString(SOCKET, 'presence-foobar', channelData);
  assert.equal(sign(SECRET, signed), 'afaed3695da2ffd16931f457e338e6c9f2921fa133ce7dac49f529792be6304c');
});

test('user signin vector', () => {
  const signed = userAuthString(SOCKET, '{"id":"12345"}');
  assert.equal(signed, '1234.1234::user::{"id":"12345"}');
  const sig = '4708d583dada6a56435fb8bc611c77c359a31eebde13337c16ab43aa6de336ba';
  assert.equal(sign(SECRET, signed), sig);
  assert.ok(verifyAuth(`${KEY}:${sig}`, KEY, SECRET, signed));
});

test('HTTP API request vector', () => {
  const body = '{"name":"foo","channels":["project-3"],"data":"{\\"some\\":\\"data\\"}"}';
  assert.equal(bodyMd5(body), 'ec365a775a4cd0599faeb73354201b6f');
  const signed = apiSignString('POST', '/apps/3/events', {
    auth_version: '1.0',
    auth_key: KEY,
    body_md5: 'ec365a775a4cd0599faeb73354201b6f',
    auth_timestamp: '1353088179',
    auth_signature: 'ignored',
  });
  assert.equal(
    signed,
    'POST\n/apps/3/events\nauth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0&body_md5=ec365a775a4cd0599faeb73354201b6f',
  );
  assert.equal(sign(SECRET, signed), 'da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c');
});

test('verifyAuth refuses a wrong key, a wrong signature, and malformed values', () => {
  const signed = channelAuthString(SOCKET, 'private-foobar');
  const sig = sign(SECRET, signed);
  assert.equal(verifyAuth(`other:${sig}`, KEY, SECRET, signed), false);
  assert.equal(verifyAuth(`${KEY}:${sig.replace(/.$/, '0')}`, KEY, SECRET, signed), false);
  assert.equal(verifyAuth(`${KEY}${sig}`, KEY, SECRET, signed), false);
  assert.equal(verifyAuth(undefined, KEY, SECRET, signed), false);
  assert.equal(verifyAuth(`${KEY}:`, KEY, SECRET, signed), false);
});

test('verifyAuth takes the signature in upper-case hex too, as the HTTP API does (an auth endpoint may write either)', () => {
  const signed = channelAuthString(SOCKET, 'private-foobar');
  const sig = sign(SECRET, signed);
  assert.ok(verifyAuth(`${KEY}:${sig.toUpperCase()}`, KEY, SECRET, signed));
  // The key is compared as it is: it is not hex.
  assert.equal(verifyAuth(`${KEY.toUpperCase()}:${sig}`, KEY, SECRET, signed), false);
});

test('safeEqualHex compares values of different lengths as unequal', () => {
  assert.equal(safeEqualHex('abc', 'abc'), true);
  assert.equal(safeEqualHex('abc', 'abcd'), false);
  assert.equal(safeEqualHex('abc', 'abd'), false);
});
