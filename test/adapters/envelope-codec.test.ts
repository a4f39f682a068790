/** The envelope codec reads back what it wrote, and refuses an envelope whose `kind` is not a SentKind (it becomes a label). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Envelope } from '../../src/adapters/envelope.js';
import { decodeEnvelope, encodeEnvelope } from '../../src/adapters/envelope-codec.js';

const envelope: Envelope = {
  appId: 'a1',
  channel: 'news',
  event: 'e',
  data: '{"n":1}',
  userId: undefined,
  excludeSocketId: undefined,
  kind: 'channel_event',
  traceparent: undefined,
  publishedAt: 1,
};

test('envelope codec: a round trip keeps every field', () => {
  assert.deepEqual(decodeEnvelope(encodeEnvelope(envelope)), envelope);
});

test('envelope codec: an unknown kind, or none, is refused (a metric label must come from the fixed enum)', () => {
  for (const kind of ['bogus', 'channel_event\u0000x', 42, null]) {
    assert.equal(decodeEnvelope(JSON.stringify({ ...envelope, kind })), undefined, `kind ${String(kind)}`);
  }
  const { kind: _kind, ...withoutKind } = envelope;
  assert.equal(decodeEnvelope(JSON.stringify(withoutKind)), undefined);
});
