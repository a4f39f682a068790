/**
 * Bad input loses nothing: one connection floods the server with malformed frames of every kind while another keeps
 * receiving its events, in order and complete. Each bad frame is answered with `pusher:error`, and the flood is logged a
 * bounded number of times.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test } from 'node:test';
import WebSocket from 'ws';
import { APP, startServer } from '../helpers/server.js';

const BAD_FRAMES = [
  'not json at all',
  '{"event":',
  '[]',
  '{"event":42}',
  '{"event":"pusher:subscribe","data":{"channel":7}}',
  '{"event":"pusher:subscribe","data":{"channel":"bad name with spaces"}}',
  '{"event":"pusher:unknown"}',
  '{"event":"client-x","channel":"private-a","data":{}}',
  'x'.repeat(150_000), // over MAX_PAYLOAD_BYTES (100 000) but under the socket's hard limit
];
const ROUNDS = 150;
const EVENTS = 100;

test('a flood of malformed frames on one connection does not disturb another', { timeout: 60_000 }, async () => {
  const server = await startServer();
  try {
    // The well-behaved client.
    const client = server.client();
    const channel = client.subscribe('news');
    await new Promise<void>((resolve) => channel.bind('pusher:subscription_succeeded', () => resolve()));
    const received: number[] = [];
    const allReceived = new Promise<void>((resolve) =>
      channel.bind('tick', (data: { n: number }) => {
        received.push(data.n);
        if (received.length === EVENTS) resolve();
      }),
    );

    // The flooder: a raw socket speaking garbage, binary frames included.
    const flooder = new WebSocket(`ws://127.0.0.1:${server.port}/app/${APP.key}?protocol=7`);
    // Each bad frame is answered once: `pusher:error`, or `pusher:subscription_error` for the invalid channel name.
    const expectedErrors = ROUNDS * (BAD_FRAMES.length + 1);
    let errors = 0;
    let established = false;
    const allAnswered = new Promise<void>((resolve) =>
      flooder.on('message', (raw: Buffer) => {
        const frame = JSON.parse(raw.toString()) as { event: string };
        if (frame.event === 'pusher:connection_established') established = true;
        if (frame.event === 'pusher:error' || frame.event === 'pusher:subscription_error') errors++;
        if (errors === expectedErrors) resolve();
      }),
    );
    await once(flooder, 'open');

    const sdk = server.sdk();
    const publishing = (async () => {
      for (let n = 0; n < EVENTS; n++) await sdk.trigger('news', 'tick', { n });
    })();
    for (let round = 0; round < ROUNDS; round++) {
      for (const frame of BAD_FRAMES) flooder.send(frame);
      flooder.send(Buffer.from([1, 2, 3]), { binary: true });
    }
    await publishing;
    await allReceived;
    assert.deepEqual(received, Array.from({ length: EVENTS }, (_, n) => n), 'every event, in order');

    // Every bad frame got its error, and the flooder is still connected: bad frames are rejected, not fatal.
    await allAnswered;
    assert.equal(errors, expectedErrors);
    assert.ok(established);
    assert.equal(flooder.readyState, WebSocket.OPEN);

    // Logged a bounded number of times, counted every time (the log says where counting took over).
    const flooderLines = server.logs.filter((l) => l.event === 'message_rejected');
    assert.ok(flooderLines.length <= 21, `at most 21 rejection lines, got ${flooderLines.length}`);
    assert.ok(flooderLines.some((l) => String(l.msg).includes('counted, not logged')));
    flooder.close();
  } finally {
    await server.close();
  }
});
