import assert from 'node:assert/strict';
import { test } from 'node:test';
import { channelKind, isValidChannelName } from '../../src/protocol/channel-name.js';

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

test('validates characters and length', () => {
  assert.ok(isValidChannelName('a-Z_0=@,.;', 200));
  assert.ok(isValidChannelName('x'.repeat(200), 200));
  assert.equal(isValidChannelName('x'.repeat(201), 200), false);
  assert.equal(isValidChannelName('', 200), false);
  for (const bad of ['a b', 'a/b', 'a#b', 'é', 'a:b', 'a*']) assert.equal(isValidChannelName(bad, 200), false, bad);
  assert.ok(isValidChannelName('#server-to-user-42', 200));
});
