/**
 * The wall clock stepping back (an NTP correction, a VM resumed) while connections are open. Their timing ran on
 * `Date.now()`: a frame budget's window opened before the step stayed open until the clock came back to it, its count
 * growing, so every frame past the budget was refused — and the socket left unread until the window "ended", an hour
 * later. They run on `performance.now()` now, which only goes forward (src/limits/fixed-window.ts).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RawClient } from '../helpers/raw-client.js';
import { startServer } from '../helpers/server.js';
import { until } from '../helpers/wait.js';

test('a wall clock stepped back an hour leaves a connection its frame budget: answered again within a window', { timeout: 15_000 }, async () => {
  const server = await startServer({ FRAME_RATE_LIMIT_PER_SECOND: '5' });
  const wallNow = Date.now;
  try {
    const { client } = await RawClient.established(server.port);
    // The budget's window used up (the handshake's frames are the server's; these five are the client's).
    for (let i = 0; i < 5; i++) client.send({ event: 'pusher:ping', data: {} });
    await until(() => client.all('pusher:pong').length === 5, 'five pongs');
    Date.now = () => wallNow() - 3_600_000;
    // Asked every 250 ms: a new window opens a second after the first, and the next ping is answered.
    const asked = setInterval(() => client.send({ event: 'pusher:ping', data: {} }), 250);
    try {
      await until(() => client.all('pusher:pong').length > 5, 'a pong after the step', 5000);
    } finally {
      clearInterval(asked);
    }
    assert.equal(client.ws.readyState, client.ws.OPEN);
    await client.close();
  } finally {
    Date.now = wallNow;
    await server.close();
  }
});
