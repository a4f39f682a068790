import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeClientFrame } from '../../src/protocol/decode.js';

test('decodes the frames pusher-js sends', () => {
  const sub = decodeClientFrame('{"event":"pusher:subscribe","data":{"auth":"k:s","channel":"private-a"}}');
  assert.deepEqual(sub, {
    ok: true,
    value: {
      message: { event: 'pusher:subscribe', channel: 'private-a', auth: 'k:s', channelData: undefined },
      traceparent: undefined,
    },
  });
  const ping = decodeClientFrame('{"event":"pusher:ping","data":{}}');
  assert.ok(ping.ok && ping.value.message.event === 'pusher:ping');
  const client = decodeClientFrame('{"event":"client-typing","channel":"private-a","data":{"x":1}}');
  assert.ok(client.ok);
  assert.deepEqual(client.value.message, { event: 'client_event', name: 'client-typing', channel: 'private-a', data: { x: 1 } });
});

test('accepts data JSON-encoded as a string', () => {
  const r = decodeClientFrame('{"event":"pusher:unsubscribe","data":"{\\"channel\\":\\"a\\"}"}');
  assert.ok(r.ok);
  assert.deepEqual(r.value.message, { event: 'pusher:unsubscribe', channel: 'a' });
});

test('keeps a well-formed W3C traceparent and ignores a malformed one', () => {
  const tp = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
  const good = decodeClientFrame(JSON.stringify({ event: 'pusher:ping', traceparent: tp }));
  assert.ok(good.ok && good.value.traceparent === tp);
  const bad = decodeClientFrame(JSON.stringify({ event: 'pusher:ping', traceparent: 'nope' }));
  assert.ok(bad.ok && bad.value.traceparent === undefined);
});

test('rejects with the reason the metrics count', () => {
  const cases: [string, string][] = [
    ['not json', 'invalid_json'],
    ['[1,2]', 'invalid_message'],
    ['"text"', 'invalid_message'],
    ['{"data":{}}', 'invalid_message'],
    ['{"event":42}', 'invalid_message'],
    ['{"event":"pusher:subscribe","data":{}}', 'invalid_message'],
    ['{"event":"pusher:subscribe","data":{"channel":1}}', 'invalid_message'],
    ['{"event":"pusher:subscribe","data":{"channel":"a","auth":5}}', 'invalid_message'],
    ['{"event":"pusher:subscribe","data":{"channel":"presence-a","channel_data":{"user_id":1}}}', 'invalid_message'],
    ['{"event":"pusher:signin","data":{"auth":"x"}}', 'invalid_message'],
    ['{"event":"client-x","data":{}}', 'invalid_message'],
    ['{"event":"pusher:whatever"}', 'unknown_event'],
    ['{"event":"hello"}', 'unknown_event'],
  ];
  for (const [frame, reason] of cases) {
    const r = decodeClientFrame(frame);
    assert.equal(r.ok, false, frame);
    if (!r.ok) assert.equal(r.reason, reason, frame);
  }
});

test('channel_data: null and auth: null are absent; a malformed subscribe keeps its channel so it can be refused there', () => {
  const nul = decodeClientFrame('{"event":"pusher:subscribe","data":{"auth":"k:s","channel_data":null,"channel":"private-a"}}');
  assert.ok(nul.ok);
  assert.deepEqual(nul.value.message, { event: 'pusher:subscribe', channel: 'private-a', auth: 'k:s', channelData: undefined });
  // A public subscribe from a library that writes unset fields as null (a probe: refused 400 "auth" must be a string).
  const nulls = decodeClientFrame('{"event":"pusher:subscribe","data":{"channel":"news","auth":null,"channel_data":null}}');
  assert.ok(nulls.ok);
  assert.deepEqual(nulls.value.message, { event: 'pusher:subscribe', channel: 'news', auth: undefined, channelData: undefined });
  for (const data of [{ channel: 'private-a', auth: 5 }, { channel: 'presence-a', auth: 'k:s', channel_data: { user_id: 1 } }]) {
    const r = decodeClientFrame(JSON.stringify({ event: 'pusher:subscribe', data }));
    assert.ok(!r.ok);
    assert.equal(r.subscribeChannel, data.channel);
    assert.equal(r.reason, 'invalid_message');
  }
  const unreadable = decodeClientFrame('{"event":"pusher:subscribe","data":{"channel":1}}');
  assert.ok(!unreadable.ok && unreadable.subscribeChannel === undefined);
});

test('an unknown event named in the error is cut without splitting a character (a fuzz: half an emoji echoed)', () => {
  const name = `${'x'.repeat(63)}😀tail`;
  const r = decodeClientFrame(JSON.stringify({ event: name }));
  assert.ok(!r.ok);
  assert.equal(r.reason, 'unknown_event');
  assert.equal(r.message, `Unknown event: ${'x'.repeat(63)}`);
  assert.ok((r.message as string & { isWellFormed(): boolean }).isWellFormed());
});
