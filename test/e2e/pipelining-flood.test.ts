/**
 * Clients that pipeline far past the bound (src/http/http-server.ts) and read their answers: each gets its 16 answers and
 * the 429, then a clean end. Destroyed right after the 429 with its input unread, a socket was reset by the kernel: most
 * of 50 such clients saw ECONNRESET, and a client that had not read everything yet lost it. A server in its own process:
 * in the test's own, the client reads everything before the server closes and the reset never shows.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, test } from 'node:test';
import { MAX_REQUESTS_AHEAD } from '../../src/http/http-server.js';
import { spawnBeacon, type BeaconProcess } from '../helpers/beacon-process.js';
import { within } from '../helpers/wait.js';

let beacon: BeaconProcess;
before(async () => {
  beacon = await spawnBeacon({ LOG_LEVEL: 'warn' });
});
after(async () => {
  await beacon?.stop();
});

/** Writes 20 000 pipelined requests and reads until the server closes: the statuses answered, and how it ended. */
function flood(port: number): Promise<{ statuses: string[]; reset: boolean }> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(20_000)));
    let received = '';
    let reset = false;
    socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
    socket.on('error', (err: NodeJS.ErrnoException) => (reset ||= err.code === 'ECONNRESET'));
    socket.on('close', () => resolve({ statuses: [...received.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => m[1]!), reset }));
  });
}

test('50 clients pipelining 20 000 requests each get their answers, the 429 and a clean end, not a reset', async () => {
  const results = await within(Promise.all(Array.from({ length: 50 }, () => flood(beacon.port))), 'the 50 floods to end', 20_000);
  const expected = [...Array<string>(MAX_REQUESTS_AHEAD).fill('200'), '429'];
  for (const [i, r] of results.entries()) assert.deepEqual(r.statuses, expected, `client ${i}`);
  assert.equal(results.filter((r) => r.reset).length, 0, 'connections reset');
});
