/**
 * Unit tests of the publish bodies (src/http/publish-request.ts): each refused body gets the registry's status and message
 * (the first failing check in field order), accepted ones become the routes' EventRequest. No server: the schemas alone.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ApiError } from '../../src/http/api-error.js';
import { parseBody, publishSchemas } from '../../src/http/publish-request.js';
import { Errors, type HttpError } from '../../src/protocol/errors.js';

const LIMITS = {
  maxPayloadBytes: 100,
  maxChannelsPerPublish: 3,
  maxBatchSize: 2,
  maxChannelNameLength: 20,
  maxPresenceUserIdLength: 30,
  maxEventNameLength: 10,
};
const schemas = publishSchemas(LIMITS);

/** Asserts that parsing `body` throws the registry's `error` with its message filled with `args`. */
function refuses(schema: keyof typeof schemas, body: unknown, error: HttpError, ...args: Array<string | number>): void {
  assert.throws(
    () => (schema === 'event' ? parseBody(schemas.event, body) : parseBody(schemas.batch, body)),
    (thrown: unknown) => {
      assert.ok(thrown instanceof ApiError);
      assert.equal(thrown.registryError, error, `${error.name}: ${thrown.message}`);
      assert.equal(thrown.statusCode, error.status, `${error.name}: ${thrown.message}`);
      assert.equal(thrown.message, error.format(...args));
      return true;
    },
    error.name,
  );
}

test('a valid event becomes an EventRequest: one channel, several, socket_id, info', () => {
  assert.deepEqual(parseBody(schemas.event, { name: 'ev', data: '{}', channel: 'a' }), {
    name: 'ev',
    data: '{}',
    channels: ['a'],
    socketId: undefined,
    info: [],
  });
  assert.deepEqual(
    parseBody(schemas.event, { name: 'ev', data: 'x', channels: ['a', 'presence-b'], socket_id: '1.2', info: 'user_count, subscription_count' }),
    { name: 'ev', data: 'x', channels: ['a', 'presence-b'], socketId: '1.2', info: ['user_count', 'subscription_count'] },
  );
  // sendToUser's channel, and data exactly at the byte limit (multi-byte characters count as bytes).
  assert.deepEqual(parseBody(schemas.event, { name: 'ev', data: 'é'.repeat(50), channel: '#server-to-user-1' }).channels, [
    '#server-to-user-1',
  ]);
  // sendToUser with any id sign-in accepts (Auth0's `auth0|…`, spaces, non-ASCII), up to the user id limit (30 here,
  // past the channel name limit of 20), as one channel or in a list.
  for (const id of ['auth0|5f7c8ec7', 'user:42', 'a b', 'ü', 'u'.repeat(30)]) {
    assert.deepEqual(parseBody(schemas.event, { name: 'ev', data: '', channel: `#server-to-user-${id}` }).channels, [`#server-to-user-${id}`]);
    assert.deepEqual(parseBody(schemas.batch, { batch: [{ name: 'ev', data: '', channel: `#server-to-user-${id}` }] })[0]!.channels, [
      `#server-to-user-${id}`,
    ]);
  }
  refuses('event', { name: 'ev', data: '', channel: `#server-to-user-${'u'.repeat(31)}` }, Errors.API_INVALID_CHANNEL_NAME, `#server-to-user-${'u'.repeat(31)}`);
  refuses('event', { name: 'ev', data: '', channel: 'private-a|b' }, Errors.API_INVALID_CHANNEL_NAME, 'private-a|b');
  // `null` and "" exclude no one (the Node SDK sends them as given): before, the whole publish was refused 400.
  for (const socket_id of [null, '']) {
    assert.equal(parseBody(schemas.event, { name: 'ev', data: '', channel: 'a', socket_id }).socketId, undefined);
    assert.equal(parseBody(schemas.batch, { batch: [{ name: 'ev', data: '', channel: 'a', socket_id }] })[0]!.socketId, undefined);
  }
  // Each info attribute once, however often it is named.
  assert.deepEqual(parseBody(schemas.event, { name: 'ev', data: '', channel: 'presence-a', info: 'user_count,user_count, user_count' }).info, ['user_count']);
});

test('a channel named twice in `channels` is published to once, in the order of its first mention', () => {
  assert.deepEqual(parseBody(schemas.event, { name: 'ev', data: '', channels: ['d', 'a', 'd'] }).channels, ['d', 'a']);
  assert.deepEqual(parseBody(schemas.event, { name: 'ev', data: '', channels: ['d', 'd', 'd'] }).channels, ['d']);
  // An encrypted channel named twice is still one channel, which may be published to alone.
  assert.deepEqual(parseBody(schemas.event, { name: 'ev', data: '', channels: ['private-encrypted-x', 'private-encrypted-x'] }).channels, [
    'private-encrypted-x',
  ]);
});

test('each refused event answers its registry error, with the limit or the offending value', () => {
  const ok = { name: 'ev', data: '{}', channel: 'a' };
  refuses('event', [], Errors.API_BODY_NOT_OBJECT);
  refuses('event', null, Errors.API_BODY_NOT_OBJECT);
  refuses('event', { ...ok, name: '' }, Errors.API_EVENT_NAME_INVALID);
  refuses('event', { ...ok, name: 5 }, Errors.API_EVENT_NAME_INVALID);
  refuses('event', { ...ok, name: 'x'.repeat(11) }, Errors.API_EVENT_NAME_TOO_LONG, 10);
  // In characters, as user ids are: ten emoji (twenty UTF-16 units) are ten (a probe: refused past five).
  assert.equal(parseBody(schemas.event, { ...ok, name: '😀'.repeat(10) }).name, '😀'.repeat(10));
  refuses('event', { ...ok, name: '😀'.repeat(11) }, Errors.API_EVENT_NAME_TOO_LONG, 10);
  // The protocol's own names cannot be forged by a backend (pusher-js would take a member_added as the server's).
  refuses('event', { ...ok, name: 'pusher:x' }, Errors.API_EVENT_NAME_RESERVED);
  refuses('batch', { batch: [ok, { ...ok, name: 'pusher:p' }] }, Errors.API_EVENT_NAME_RESERVED);
  assert.equal(parseBody(schemas.event, { ...ok, name: 'pusher-x' }).name, 'pusher-x');
  refuses('event', { ...ok, data: { a: 1 } }, Errors.API_DATA_NOT_STRING);
  refuses('event', { ...ok, data: 'é'.repeat(51) }, Errors.API_DATA_TOO_LARGE, 100);
  refuses('event', { name: 'ev', data: '{}' }, Errors.API_CHANNEL_OR_CHANNELS);
  refuses('event', { ...ok, channels: ['b'] }, Errors.API_CHANNEL_OR_CHANNELS);
  refuses('event', { ...ok, channel: 5 }, Errors.API_CHANNEL_OR_CHANNELS);
  refuses('event', { name: 'ev', data: '{}', channels: [] }, Errors.API_CHANNELS_EMPTY);
  refuses('event', { name: 'ev', data: '{}', channels: ['a', 'b', 'c', 'd'] }, Errors.API_TOO_MANY_CHANNELS, 3);
  refuses('event', { ...ok, channel: 'bad name' }, Errors.API_INVALID_CHANNEL_NAME, 'bad name');
  refuses('event', { name: 'ev', data: '{}', channels: ['a', 7] }, Errors.API_INVALID_CHANNEL_NAME, '7');
  refuses('event', { ...ok, channel: 'x'.repeat(21) }, Errors.API_INVALID_CHANNEL_NAME, 'x'.repeat(21));
  refuses('event', { ...ok, channel: '#other' }, Errors.API_INVALID_CHANNEL_NAME, '#other');
  refuses(
    'event',
    { name: 'ev', data: '{}', channels: ['a', 'private-encrypted-b'] },
    Errors.API_ENCRYPTED_NOT_ALONE,
  );
  refuses('event', { ...ok, socket_id: 'abc' }, Errors.API_INVALID_SOCKET_ID);
  refuses('event', { ...ok, socket_id: 7 }, Errors.API_INVALID_SOCKET_ID);
  refuses('event', { ...ok, info: 'user_count,cache' }, Errors.API_UNKNOWN_INFO, 'cache');
});

test('the offending value in a message is bounded (the name is the client\'s)', () => {
  refuses('event', { name: 'ev', data: '{}', channel: '!'.repeat(5000) }, Errors.API_INVALID_CHANNEL_NAME, '!'.repeat(64));
});

test('a channel that is no string is refused 400 naming its JSON type, whatever it holds', () => {
  // Before, the message was built with String(value): {"toString": 1} threw a TypeError and an array nested 5000 deep
  // overflowed the stack, both answered 500 and logged as the server's error.
  let deep: unknown = 'a';
  for (let i = 0; i < 5000; i++) deep = [deep];
  refuses('event', { name: 'ev', data: '', channels: [{ toString: 1 }] }, Errors.API_INVALID_CHANNEL_NAME, '(an object)');
  refuses('event', { name: 'ev', data: '', channels: [deep] }, Errors.API_INVALID_CHANNEL_NAME, '(an array)');
  refuses('event', { name: 'ev', data: '', channels: ['a', null] }, Errors.API_INVALID_CHANNEL_NAME, 'null');
  refuses('event', { name: 'ev', data: '', channels: [12345] }, Errors.API_INVALID_CHANNEL_NAME, '12345');
});

test('a batch: items need "channel", the size is checked before the items, a bad item refuses the whole batch', () => {
  const item = { name: 'ev', data: '{}', channel: 'a' };
  assert.deepEqual(
    parseBody(schemas.batch, { batch: [item, { ...item, channel: 'b', info: 'subscription_count' }] }).map((e) => e.channels),
    [['a'], ['b']],
  );
  refuses('batch', {}, Errors.API_BATCH_NOT_ARRAY);
  refuses('batch', [], Errors.API_BATCH_NOT_ARRAY);
  refuses('batch', { batch: 'x' }, Errors.API_BATCH_NOT_ARRAY);
  refuses('batch', { batch: [item, item, 'not an event'] }, Errors.API_BATCH_TOO_LARGE, 3, 2);
  refuses('batch', { batch: [item, { name: 'ev', data: '{}', channels: ['a'] }] }, Errors.API_CHANNEL_NOT_STRING);
  refuses('batch', { batch: [item, { ...item, data: 'x'.repeat(101) }] }, Errors.API_DATA_TOO_LARGE, 100);
  refuses('batch', { batch: [item, 5] }, Errors.API_BODY_NOT_OBJECT);
});
