/** FlushMarkers on sharded pub/sub, with a stand-in for the engine's shards and subscriber. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FlushMarkers } from '../../src/adapters/redis-flush.js';

/** Channels named `<shard>/<name>`; markers published are kept until the test delivers them back. */
function shards(listening: Set<string>) {
  const published: { channel: string; message: string }[] = [];
  const markers = new FlushMarkers({
    sharded: true,
    control: 'control',
    publish: async (channel, message) => {
      published.push({ channel, message });
    },
    listens: (channel) => listening.has(channel),
    listened: () => listening,
    shardOf: (channel) => channel.split('/')[0]!,
  });
  return { markers, published };
}

test('flush: one marker per shard published to, on the last channel of that shard this node listens to', async () => {
  const listening = new Set(['s1/a', 's1/b', 's2/c']);
  const { markers, published } = shards(listening);
  markers.sent('s1/a');
  markers.sent('s1/b');
  markers.sent('s2/c');
  markers.sent('s3/not-listened');
  let done = false;
  const flushed = markers.flush().then(() => (done = true));
  assert.deepEqual(published.map((p) => p.channel).sort(), ['s1/b', 's2/c']);
  assert.equal(markers.received(published[0]!.message), true);
  await Promise.resolve();
  assert.equal(done, false, 'waits for every shard');
  markers.received(published[1]!.message);
  await flushed;
});

test('flush: when the last channel of a shard was left, another channel of that shard this node listens to carries the marker', async () => {
  const listening = new Set(['s1/a', 's1/b', 's2/other']);
  const { markers, published } = shards(listening);
  markers.sent('s1/a'); // an envelope on a channel still listened to, that must come back before the flush resolves
  markers.sent('s1/b');
  listening.delete('s1/b'); // the last local subscriber of s1/b left
  let done = false;
  const flushed = markers.flush().then(() => (done = true));
  assert.deepEqual(published.map((p) => p.channel), ['s1/a']);
  await Promise.resolve();
  assert.equal(done, false, 'the envelope on s1/a may still be on its way');
  markers.received(published[0]!.message);
  await flushed;
});

test('flush: a shard this node no longer listens to at all needs no marker', async () => {
  const listening = new Set(['s1/b', 's2/other']);
  const { markers, published } = shards(listening);
  markers.sent('s1/b');
  listening.delete('s1/b');
  await markers.flush();
  assert.deepEqual(published, []);
});

test('flush: a shard whose subscriber was lost ends the flush of its marker only; the others still wait for theirs', async () => {
  const listening = new Set(['s1/a', 's2/b']);
  const { markers, published } = shards(listening);
  markers.sent('s1/a');
  markers.sent('s2/b');
  let done = false;
  const flushed = markers.flush().then(() => (done = true));
  // A cache read's marker (no shard of its own: ordered by its channel's) waits for its own, or its timeout.
  let read = false;
  const cacheRead = markers.expect(60_000);
  void cacheRead.arrived.then(() => (read = true));
  markers.subscriberLost('s1');
  await Promise.resolve();
  assert.equal(done, false, "s2's envelopes may still be on their way");
  assert.equal(read, false, "a shard's loss ends no cache read's wait");
  cacheRead.cancel();
  markers.received(published.find((p) => p.channel === 's2/b')!.message);
  await flushed;
  // The whole subscriber lost: every marker in flight.
  markers.sent('s1/a');
  markers.sent('s2/b');
  const again = markers.flush();
  markers.subscriberLost();
  await again;
});
