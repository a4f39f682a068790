/**
 * The issue's reproduction, as one command: one socket sends 1000 client events whose data is `[` nested 5000 deep
 * (~10 KB each) as fast as it can, while a canary receives HTTP publishes at 50/s. Prints how long the server took to get
 * through the 1000 frames (the flooder's closing ping answered), the canary's publish→receive p50/p99 during that time,
 * how many of the frames were answered, and how many error-level lines the server logged. Print only: no results file.
 *
 *   node --import tsx bench/hostile/repro-deep.ts [--root DIR] [--frames 1000]
 */
import { createHmac } from 'node:crypto';
import { Agent } from 'node:http';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import Pusher from 'pusher';
import { WebSocket } from 'ws';
import { connectBeacon, type Payload } from '../fanout/clients.js';
import { quantile } from '../fanout/stats.js';
import { BEACON_APP, ROOT } from '../fanout/targets.js';
import { startBeacon } from './server.js';

const { values } = parseArgs({ options: { root: { type: 'string' }, frames: { type: 'string', default: '1000' } }, strict: true });
const root = values.root === undefined ? ROOT : resolve(values.root);
const count = Number(values.frames);
const server = await startBeacon(root);
try {
  const latencies: number[] = [];
  const canary = await connectBeacon(server.port, 'canary', 'tick', (p: Payload) => latencies.push(performance.now() - p.t));
  const agent = new Agent({ keepAlive: true });
  const sdk = new Pusher({ appId: BEACON_APP.id, key: BEACON_APP.key, secret: BEACON_APP.secret, host: '127.0.0.1', port: String(server.port), useTLS: false, agent });

  const flooder = new WebSocket(`ws://127.0.0.1:${server.port}/app/${BEACON_APP.key}?protocol=7`);
  const deep = Buffer.from(`{"event":"client-flood","channel":"private-flood","data":${'['.repeat(5000)}${']'.repeat(5000)}}`);
  let answered = 0;
  let started = 0;
  const done = new Promise<number>((resolveDone) => {
    flooder.on('message', (raw: Buffer) => {
      const frame = JSON.parse(raw.toString()) as { event: string; data?: string };
      if (frame.event === 'pusher:connection_established') {
        const socketId = (JSON.parse(frame.data ?? '{}') as { socket_id: string }).socket_id;
        const auth = `${BEACON_APP.key}:${createHmac('sha256', BEACON_APP.secret).update(`${socketId}:private-flood`).digest('hex')}`;
        flooder.send(JSON.stringify({ event: 'pusher:subscribe', data: { channel: 'private-flood', auth } }));
      } else if (frame.event === 'pusher_internal:subscription_succeeded') {
        started = performance.now();
        for (let i = 0; i < count; i++) flooder.send(deep, { binary: false });
        flooder.send('{"event":"pusher:ping","data":{}}');
      } else if (frame.event === 'pusher:error') {
        answered++;
      } else if (frame.event === 'pusher:pong') {
        resolveDone(performance.now() - started);
      }
    });
  });
  // The canary's publishes run until the flood is through.
  let flooding = true;
  let i = 0;
  const publishing = (async () => {
    while (flooding) {
      sdk.trigger('canary', 'tick', { i: i++, t: performance.now(), pad: '' }).catch(() => undefined);
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  const floodMs = await done;
  flooding = false;
  await publishing;
  await new Promise((r) => setTimeout(r, 500));
  const sorted = Float64Array.from(latencies);
  const errors = server.errorLines();
  process.stdout.write(
    `${count} deep frames from one socket: through in ${Math.round(floodMs)} ms, ${answered} answered with pusher:error, ` +
      `${errors} error-level log lines; canary during the flood: ${latencies.length}/${i} publishes received, ` +
      `p50 ${quantile(sorted, sorted.length, 0.5).toFixed(1)} ms, p99 ${quantile(sorted, sorted.length, 0.99).toFixed(1)} ms\n`,
  );
  flooder.terminate();
  canary.terminate();
  agent.destroy();
} finally {
  await server.stop();
}
process.exit(0);
