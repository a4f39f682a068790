import assert from 'node:assert/strict';
import { test } from 'node:test';
import { channelKind, hasAtMostCharacters, isValidChannelName, isValidUserId } from '../../src/protocol/channel-name.js';

test('classifies every prefix', () => {
  const cases: [string, string, boolean, boolean, boolean][] = [
    // name, type, requiresAuth, presence, allowsClientEvents
    ['news', 'public', false, false, false],
    ['private-a', 'private', true, false, true],
    ['presence-a', 'presence', true, true, true],
    ['private-encrypted-a', 'encrypted', true, false, false],
    ['cache-a', 'cache', false, false, false],
    ['private-cache-a', 'cache', true, false, true],
    ['presence-cache-a', 'cache', true, true, true],
    ['private-encrypted-cache-a', 'cache', true, false, false],
  ];
  for (const [name, type, auth, presence, clientEvents] of cases) {
    const k = channelKind(name);
    assert.deepEqual([k.type, k.requiresAuth, k.presence, k.allowsClientEvents], [type, auth, presence, clientEvents], name);
  }
  assert.equal(channelKind('private-encrypted-cache-a').encrypted, true);
  assert.equal(channelKind('presence-cache-a').cache, true);
});

const LIMITS = { maxChannelNameLength: 200, maxPresenceUserIdLength: 128 };

test('validates characters and length', () => {
  assert.ok(isValidChannelName('a-Z_0=@,.;', LIMITS));
  assert.ok(isValidChannelName('x'.repeat(200), LIMITS));
  assert.equal(isValidChannelName('x'.repeat(201), LIMITS), false);
  assert.equal(isValidChannelName('', LIMITS), false);
  for (const bad of ['a b', 'a/b', 'a#b', 'é', 'a:b', 'a*', 'a|b', 'private-a|b']) {
    assert.equal(isValidChannelName(bad, LIMITS), false, bad);
  }
  assert.ok(isValidChannelName('#server-to-user-42', LIMITS));
});

test('#server-to-user-{id} accepts exactly the ids sign-in accepts: any characters, up to the user id limit', () => {
  for (const id of ['auth0|5f7c8ec7', 'google-oauth2|1234', 'user:42', 'a b', 'ü', 'a/b#c', '{x}', '😀']) {
    assert.ok(isValidUserId(id, LIMITS.maxPresenceUserIdLength), id);
    assert.ok(isValidChannelName(`#server-to-user-${id}`, LIMITS), id);
  }
  assert.equal(isValidChannelName('#server-to-user-', LIMITS), false, 'no id');
  assert.equal(isValidUserId('', 128), false);
  // The id's own limit, not the channel name's: 16 + 128 characters fit, one more does not, whatever MAX_CHANNEL_NAME_LENGTH.
  assert.ok(isValidChannelName(`#server-to-user-${'u'.repeat(128)}`, { ...LIMITS, maxChannelNameLength: 100 }));
  assert.equal(isValidChannelName(`#server-to-user-${'u'.repeat(129)}`, LIMITS), false);
  assert.equal(isValidUserId('u'.repeat(129), 128), false);
  // Lone surrogates have no UTF-8 form of their own (both encode as U+FFFD): they would share one channel in Redis.
  for (const id of ['\ud800', 'a\udc00', '\udbff\udbff']) {
    assert.equal(isValidUserId(id, 128), false, JSON.stringify(id));
    assert.equal(isValidChannelName(`#server-to-user-${id}`, LIMITS), false, JSON.stringify(id));
  }
  // Any other `#` name keeps the character rule.
  assert.equal(isValidChannelName('#server-to-users-a', LIMITS), false);
  assert.equal(isValidChannelName('#other-a|b', LIMITS), false);
});

test('hasAtMostCharacters counts code points: a surrogate pair is one, a lone surrogate one too', () => {
  assert.equal(hasAtMostCharacters('😀'.repeat(10), 10), true);
  assert.equal(hasAtMostCharacters('😀'.repeat(11), 10), false);
  assert.equal(hasAtMostCharacters(`${'😀'.repeat(9)}ab`, 10), false);
  // A review: a lone low surrogate was taken for the end of a pair, so 19 of them passed a limit of 10.
  assert.equal(hasAtMostCharacters('\udc00'.repeat(19), 10), false);
  assert.equal(hasAtMostCharacters('\ud83d'.repeat(19), 10), false);
  assert.equal(hasAtMostCharacters('\udc00'.repeat(10), 10), true);
});
