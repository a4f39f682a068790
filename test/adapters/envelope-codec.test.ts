/** The envelope codec reads back what it wrote, and refuses an envelope whose `kind` is not a SentKind (it becomes a label). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Envelope } from '../../src/adapters/envelope.js';
import { decodeEnvelope, decodeStamped, encodeEnvelope } from '../../src/adapters/envelope-codec.js';
import { envelopeHead, internalEnvelope } from '../../src/adapters/membership-events.js';

const envelope: Envelope = {
  appId: 'a1',
  channel: 'news',
  event: 'e',
  data: '{"n":1}',
  userId: undefined,
  excludeSocketId: undefined,
  kind: 'channel_event',
  trace: undefined,
  publishedAt: 1,
};

test('envelope codec: a round trip keeps every field', () => {
  assert.deepEqual(decodeEnvelope(encodeEnvelope(envelope)), envelope);
});

test('envelope codec: the trace context travels as a W3C traceparent and comes back as a remote span context', () => {
  const traced: Envelope = {
    ...envelope,
    trace: { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceFlags: 1 },
  };
  const wire = encodeEnvelope(traced);
  // The field other versions of Beacon read and write: a rolling upgrade keeps the trace across old and new nodes.
  assert.equal(JSON.parse(wire).traceparent, '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01');
  assert.equal(JSON.parse(wire).trace, undefined);
  assert.deepEqual(decodeEnvelope(wire), { ...traced, trace: { ...traced.trace, isRemote: true } });
  const unsampled = encodeEnvelope({ ...traced, trace: { ...traced.trace!, traceFlags: 0 } });
  assert.equal(JSON.parse(unsampled).traceparent, '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00');
});

test('envelope codec: a traceparent that is not valid W3C is dropped, the event kept', () => {
  for (const traceparent of ['nope', '00-00000000000000000000000000000000-b7ad6b7169203331-01', 42]) {
    assert.deepEqual(decodeEnvelope(JSON.stringify({ ...envelope, traceparent })), envelope, String(traceparent));
  }
});

test('envelope codec: an unknown kind, or none, is refused (a metric label must come from the fixed enum)', () => {
  for (const kind of ['bogus', 'channel_event\u0000x', 42, null]) {
    assert.equal(decodeEnvelope(JSON.stringify({ ...envelope, kind })), undefined, `kind ${String(kind)}`);
  }
  const { kind: _kind, ...withoutKind } = envelope;
  assert.equal(decodeEnvelope(JSON.stringify(withoutKind)), undefined);
});

test('envelope codec: the loss-detection stamp travels beside the envelope; a malformed one is ignored, the event kept', () => {
  const stamp = { node: 'a:1f2e', run: 3, n: 41 };
  assert.deepEqual(decodeStamped(encodeEnvelope(envelope, stamp)), { envelope, stamp });
  assert.deepEqual(decodeStamped(encodeEnvelope(envelope)), { envelope, stamp: undefined });
  for (const bad of [null, 'x', { node: 'a', run: 1 }, { node: 1, run: 1, n: 1 }, { node: 'a', run: 1.5, n: 1 }]) {
    assert.deepEqual(decodeStamped(JSON.stringify({ ...envelope, stamp: bad })), { envelope, stamp: undefined }, JSON.stringify(bad));
  }
});

test('envelope codec: what crosses nodes carries no acceptedAt, the accepting process\'s own clock', () => {
  // A review: the heads the Redis scripts complete (member and count events) carried it, ~25 bytes each for nothing.
  const head = envelopeHead('a1', 'presence-room', 'added');
  assert.doesNotMatch(head, /acceptedAt/);
  const local = { ...internalEnvelope('a1', 'presence-room', 'added', '{}', undefined), acceptedAt: 1.5 };
  assert.doesNotMatch(encodeEnvelope(local), /acceptedAt/);
});
