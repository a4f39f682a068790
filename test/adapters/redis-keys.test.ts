/**
 * Tenants apart in Redis: no key of one app is a key of another. A channel's keys are tagged `{appId:channel}` and an
 * app's signed-in users `{u:appId}`; the two families meet only for the app id `u`, which the configuration refuses.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RedisKeys } from '../../src/adapters/redis-keys.js';
import { loadConfig, RESERVED_APP_IDS } from '../../src/config.js';

const keys = new RedisKeys('beacon');

/** Every key and pub/sub channel of a channel's family and of an app's users' family. */
const channelFamily = (app: string, channel: string): string[] => [
  ...Object.values(keys.channel(app, channel)),
  keys.share(app, channel, 'n1'),
  keys.subscriptions(app, channel, 'n1'),
  keys.cache(app, channel),
];
const usersFamily = (app: string): string[] => {
  const users = keys.users(app);
  return [users.count, users.events, users.listed, users.share('n1')];
};

test('an app\'s users share no key with another app\'s channel named like the first app, but for the reserved id u', () => {
  const apps = ['presence-room', 'a', 'app-id', 'x.y_z-1', 'uu', 'u.', 'U'];
  for (const owner of apps) {
    for (const other of apps) {
      const clash = usersFamily(owner).filter((k) => channelFamily(other, owner).includes(k) || channelFamily(other, `presence-${owner}`).includes(k));
      assert.deepEqual(clash, [], `${owner}'s users and ${other}'s channel named ${owner}`);
    }
  }
  // The one id that would clash: app u's channel `presence-room` is app presence-room's users.
  assert.ok(usersFamily('presence-room').some((k) => channelFamily('u', 'presence-room').includes(k)));
  assert.ok(RESERVED_APP_IDS.has('u'));
  // …and the configuration refuses it, as APP_ID and in an APPS_FILE alike.
  assert.throws(() => loadConfig({ APP_ID: 'u' }), /APP_ID: reserved/);
});

test('a node finds its subscriptions hashes by pattern and reads each one\'s channel back; no other key reads as one', () => {
  const cases: [string, string][] = [
    ['app-id', 'presence-room'],
    ['a', 'private-a:b:c'],
    ['x.y_z-1', '#server-to-user-u:1'],
    ['app-id', 'private-encrypted-ü é'],
  ];
  for (const [app, channel] of cases) {
    assert.equal(keys.pairOfSubscriptions(keys.subscriptions(app, channel, 'n1'), 'n1'), JSON.stringify([app, channel]));
    // Another node's, and the channel's other keys, are none.
    assert.equal(keys.pairOfSubscriptions(keys.subscriptions(app, channel, 'n2'), 'n1'), undefined);
    for (const other of channelFamily(app, channel).filter((k) => k !== keys.subscriptions(app, channel, 'n1'))) {
      assert.equal(keys.pairOfSubscriptions(other, 'n1'), undefined, other);
    }
  }
  // A vacate mark whose user id ends like a subscriptions hash matches the pattern, but is none.
  const mark = keys.goneSent('app-id', 'presence-room', 'x}:subs:n1');
  assert.ok(mark.endsWith('}:subs:n1'));
  assert.equal(keys.pairOfSubscriptions(mark, 'n1'), undefined);
  // A stray key under the prefix whose app part is no escape of Beacon's is none (it threw, failing every prune).
  assert.equal(keys.pairOfSubscriptions('beacon:{a%zz:private-x}:subs:n1', 'n1'), undefined);
  assert.equal(keys.subscriptionsPattern('n1'), 'beacon:{*}:subs:n1');
  // Glob characters in the prefix or the node id match only themselves.
  assert.equal(new RedisKeys('b*[x]?').subscriptionsPattern('n\\1'), 'b\\*\\[x\\]\\?:{*}:subs:n\\\\1');
});
