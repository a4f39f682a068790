/**
 * The hostile neighbour: one client (its own process, so its CPU is not the canary's) that sends one kind of bad traffic
 * as fast as its socket takes it for `durationMs`, reconnecting whenever the server closes it. Prints one line
 * `RESULT {"frames":…,"connections":…}` and exits.
 *
 *   node --import tsx bench/hostile/flooder.ts '{"kind":"deep-nesting","port":6001,"durationMs":5000,"maxPayloadBytes":100000}'
 */
import { createHmac } from 'node:crypto';
import { WebSocket } from 'ws';
import { BEACON_APP } from '../fanout/targets.js';
import { FLOOD_KINDS, type FloodKind } from './kinds.js';

export interface FlooderOptions {
  kind: FloodKind;
  port: number;
  durationMs: number;
  /** The server's MAX_PAYLOAD_BYTES: oversized frames are just over twice it (the socket layer's hard limit). */
  maxPayloadBytes: number;
}

/** Bytes queued on the flooder's socket before it waits: as fast as the server reads, without unbounded memory here. */
const HIGH_WATER_BYTES = 1 << 20;
const FLOOD_CHANNEL = 'private-flood';

const options = JSON.parse(process.argv[2] ?? '{}') as FlooderOptions;
if (!FLOOD_KINDS.includes(options.kind)) throw new Error(`unknown flood kind ${String(options.kind)}`);

const sign = (socketId: string, channel: string): string =>
  `${BEACON_APP.key}:${createHmac('sha256', BEACON_APP.secret).update(`${socketId}:${channel}`).digest('hex')}`;

/** The frames of each kind, built once (the flooder's CPU is the machine's too): it sends them in turn. */
function framesOf(kind: FloodKind): Buffer[] {
  const many = (make: (n: number) => string): Buffer[] => Array.from({ length: 1000 }, (_, n) => Buffer.from(make(n)));
  switch (kind) {
    case 'deep-nesting':
      // The issue's reproduction: ~10 KB of `[` nesting 5000 deep as a client event's data.
      return [Buffer.from(`{"event":"client-flood","channel":"${FLOOD_CHANNEL}","data":${'['.repeat(5000)}${']'.repeat(5000)}}`)];
    case 'subscribe':
      // 160-character channel names, a thousand different ones: the subscriptions cap is what bounds this.
      return many((n) => `{"event":"pusher:subscribe","data":{"channel":"flood-${String(n).padStart(154, '0')}"}}`);
    case 'invalid':
      return ['not json at all', '{"event":', '[]', '{"event":42}', '{"event":"pusher:subscribe","data":{"channel":7}}', '{"event":"pusher:unknown"}'].map((f) => Buffer.from(f));
    case 'oversized':
      return [Buffer.alloc(options.maxPayloadBytes * 2 + 1, 0x20)];
    case 'bad-auth':
      return many((n) => `{"event":"pusher:subscribe","data":{"channel":"private-bad-${n}","auth":"${BEACON_APP.key}:${'0'.repeat(64)}"}}`);
  }
}

const FRAMES = framesOf(options.kind);
const TEXT = { binary: false } as const;

let frames = 0;
let connections = 0;
const deadline = Date.now() + options.durationMs;

/** One connection: flood until the server closes it or the time is up; resolves when it is gone. */
function floodOnce(): Promise<void> {
  return new Promise((resolve) => {
    connections++;
    const ws = new WebSocket(`ws://127.0.0.1:${options.port}/app/${BEACON_APP.key}?protocol=7&client=flooder&version=1.0.0`);
    let flooding = false;
    const pump = (): void => {
      while (ws.readyState === WebSocket.OPEN && ws.bufferedAmount < HIGH_WATER_BYTES && Date.now() < deadline) {
        ws.send(FRAMES[frames % FRAMES.length]!, TEXT);
        frames++;
      }
      if (ws.readyState !== WebSocket.OPEN) return;
      if (Date.now() >= deadline) ws.terminate();
      // Below the high-water mark the socket takes more at once; above it, the server is not reading: check back soon
      // rather than spin (the flooder shares the machine's cores with the server and the canary).
      else if (ws.bufferedAmount < HIGH_WATER_BYTES) setImmediate(pump);
      else setTimeout(pump, 5);
    };
    const start = (): void => {
      if (flooding) return;
      flooding = true;
      pump();
    };
    ws.on('message', (raw: Buffer) => {
      if (flooding) return;
      const frame = JSON.parse(raw.toString()) as { event: string; data?: string };
      if (frame.event === 'pusher:connection_established') {
        if (options.kind !== 'deep-nesting') return start();
        // Client events need a subscribed private channel: subscribe properly first, then flood it.
        const socketId = (JSON.parse(frame.data ?? '{}') as { socket_id: string }).socket_id;
        ws.send(JSON.stringify({ event: 'pusher:subscribe', data: { channel: FLOOD_CHANNEL, auth: sign(socketId, FLOOD_CHANNEL) } }));
      } else if (frame.event === 'pusher_internal:subscription_succeeded') {
        start();
      }
    });
    ws.on('error', () => undefined);
    ws.on('close', () => resolve());
  });
}

while (Date.now() < deadline) await floodOnce();
const cpu = process.cpuUsage();
process.stdout.write(`RESULT ${JSON.stringify({ frames, connections, cpuMs: (cpu.user + cpu.system) / 1000 })}\n`);
process.exit(0);
