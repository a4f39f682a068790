/**
 * Backpressure: a client that stops reading is closed with 4110 once its send buffer passes SEND_BUFFER_MAX_BYTES, instead
 * of growing the server's memory; a reading client on the same channel gets every event.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test } from 'node:test';
import WebSocket from 'ws';
import { APP, startServer } from '../helpers/server.js';
import { until, within } from '../helpers/wait.js';

test('a client that stops reading is closed as a slow consumer (4110); others are unaffected', { timeout: 60_000 }, async () => {
  const server = await startServer({ SEND_BUFFER_MAX_BYTES: String(256 * 1024) });
  try {
    const reader = server.client();
    const readerChannel = reader.subscribe('firehose');
    await within(new Promise<void>((r) => readerChannel.bind('pusher:subscription_succeeded', () => r())), 'reader subscribed');
    let readerGot = 0;
    readerChannel.bind('blob', () => readerGot++);

    const stalled = new WebSocket(`ws://127.0.0.1:${server.port}/app/${APP.key}?protocol=7`);
    await once(stalled, 'message'); // connection_established
    stalled.send(JSON.stringify({ event: 'pusher:subscribe', data: { channel: 'firehose' } }));
    await once(stalled, 'message'); // subscription_succeeded
    const closed = once(stalled, 'close') as Promise<[number, Buffer]>;
    stalled.pause(); // stop reading: the kernel buffers fill, then the server's send buffer grows

    const sdk = server.sdk();
    const blob = 'x'.repeat(90_000);
    const connection = [...server.app.hub.connections()].find((c) => c.subscriptions.has('firehose') && c.socketId !== reader.connection.socket_id);
    assert.ok(connection !== undefined);
    let sent = 0;
    // Bounded: 400 × 90 kB = 36 MB is far more than loopback socket buffers plus the 256 KiB bound.
    while (connection.closeReason === undefined && sent < 400) {
      await sdk.trigger('firehose', 'blob', blob);
      sent++;
    }
    assert.equal(connection.closeReason, 'slow_consumer', `closed after ${sent} events`);
    stalled.resume();
    const [code] = await within(closed, 'close of the stalled client', 10_000);
    assert.equal(code, 4110);
    await within(
      new Promise<void>((resolve) => {
        const check = () => (readerGot === sent ? resolve() : setTimeout(check, 10));
        check();
      }),
      `reader receiving all ${sent} events`,
      10_000,
    );
    const line = server.logs.find((l) => l.event === 'slow_consumer');
    assert.ok(line !== undefined && line.limit_bytes === 256 * 1024);
    await until(() => server.logs.some((l) => l.event === 'connection_closed' && l.reason === 'slow_consumer'), 'close logged');
    const closedLine = server.logs.find((l) => l.event === 'connection_closed' && l.reason === 'slow_consumer');
    assert.equal(closedLine?.code, 4110);
  } finally {
    await server.close();
  }
});

test('a client that reads is not closed for what one turn wrote it: a batch of events over the bound arrives whole', { timeout: 30_000 }, async () => {
  // The frames of one turn are coalesced (write-turns.ts): corked, they were all counted against the bound before the
  // kernel was offered any, so one batch of 10 × 35 kB closed a client reading at full speed with 4110 after 9 events.
  const server = await startServer({ SEND_BUFFER_MAX_BYTES: String(256 * 1024) });
  try {
    const reader = server.client();
    const channel = reader.subscribe('firehose');
    await within(new Promise<void>((r) => channel.bind('pusher:subscription_succeeded', () => r())), 'reader subscribed');
    const got: number[] = [];
    channel.bind('blob', (data: { i: number }) => got.push(data.i));
    const pad = 'x'.repeat(35_000);
    await server.sdk().triggerBatch(Array.from({ length: 10 }, (_, i) => ({ channel: 'firehose', name: 'blob', data: JSON.stringify({ i, pad }) })));
    await until(() => got.length === 10 || server.logs.some((l) => l.event === 'slow_consumer'), 'the batch delivered', 10_000);
    assert.deepEqual(server.logs.filter((l) => l.event === 'slow_consumer'), []);
    assert.deepEqual(got, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  } finally {
    await server.close();
  }
});
