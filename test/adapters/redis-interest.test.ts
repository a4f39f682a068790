/**
 * Interest routing's rule for gap counting (src/adapters/redis-interest.ts `countsGaps`): envelopes of a channel are
 * compared with the last number received only while the node wants the channel and no SUBSCRIBE of it is in flight after
 * it had unsubscribed. Compared then, a stale envelope from before the UNSUBSCRIBE, or the first after the SUBSCRIBE's
 * answer (ahead of the answer's callback that forgets the old baseline), had the numbers published while the node was
 * not subscribed counted as lost: a probe's node, its only subscriber toggling every 2 ms, counted gaps on a healthy Redis.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Interest, type PubSubCommands } from '../../src/adapters/redis-interest.js';
import { until } from '../helpers/wait.js';

/** Pub/sub commands whose SUBSCRIBEs wait for `answer()`. */
function heldCommands(): PubSubCommands & { answer(): void; sent: string[] } {
  const pending: (() => void)[] = [];
  const sent: string[] = [];
  return {
    batches: true,
    sent,
    subscribe: (channels) => {
      sent.push(`SUBSCRIBE ${channels.join(' ')}`);
      return new Promise<void>((resolve) => pending.push(resolve));
    },
    unsubscribe: async (channels) => void sent.push(`UNSUBSCRIBE ${channels.join(' ')}`),
    answer: () => pending.shift()?.(),
  };
}

test('gaps are not counted on a channel while its SUBSCRIBE is in flight, after it was unsubscribed; they are once answered', async () => {
  const commands = heldCommands();
  const forgotten: string[] = [];
  const interest = new Interest(commands, (channel) => forgotten.push(channel));
  const first = interest.acquire('c');
  assert.equal(interest.countsGaps('c'), true, 'nothing to compare yet: any first envelope is a baseline');
  await until(() => commands.sent.length === 1, 'the SUBSCRIBE');
  assert.equal(interest.countsGaps('c'), false, 'subscribing');
  commands.answer();
  await first;
  assert.equal(interest.countsGaps('c'), true);

  // Its last subscriber leaves and another comes in the same turn: the subscription is kept, nothing sent, and what
  // arrived meanwhile was received. Before: skipped, so the next envelope counted them lost.
  interest.release('c');
  assert.equal(interest.countsGaps('c'), true, 'still subscribed: the UNSUBSCRIBE is not sent yet');
  await interest.acquire('c');
  assert.deepEqual(commands.sent, ['SUBSCRIBE c']);
  assert.equal(interest.countsGaps('c'), true);

  interest.release('c');
  await until(() => commands.sent.length === 2, 'the UNSUBSCRIBE');
  assert.equal(interest.countsGaps('c'), false, 'not wanted');
  const again = interest.acquire('c');
  await until(() => commands.sent.length === 3, 'the second SUBSCRIBE');
  assert.deepEqual(commands.sent, ['SUBSCRIBE c', 'UNSUBSCRIBE c', 'SUBSCRIBE c']);
  // Before: true from the acquire on, so a stale envelope or the first after the answer was compared with the old baseline.
  assert.equal(interest.countsGaps('c'), false, 'subscribing anew: what comes may be stale');
  commands.answer();
  await again;
  assert.equal(interest.countsGaps('c'), true);
  assert.deepEqual(forgotten, ['c', 'c', 'c'], 'the baseline forgotten at each change');

  // A reconnection's resubscription is no new SUBSCRIBE of the node's: what it missed is a loss, compared.
  interest.reset();
  assert.equal(interest.countsGaps('c'), true);
});
