/**
 * A bounded fuzz (fast-check, a few seconds) of a real Beacon process: connections send structured random frames —
 * wrong types, deep nesting, huge numbers, unicode/NUL/emoji in names, `__proto__` keys, binary and fragmented frames,
 * invalid UTF-8 and oversized frames — while a canary subscriber must receive every HTTP publish in order. Afterwards
 * the process is up, logged no error, and its connection/subscription/channel gauges are back to 0.
 * A failure prints fast-check's seed and path; FUZZ_SEED=<seed> replays it.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import Pusher from 'pusher';
import WebSocket from 'ws';
import { spawnBeacon, type BeaconProcess } from '../helpers/beacon-process.js';
import { pollUntil } from '../helpers/prometheus.js';
import { parseExposition, sumOf } from '../helpers/exposition.js';
import { RawClient } from '../helpers/raw-client.js';
import { APP } from '../helpers/server.js';
import { until, within } from '../helpers/wait.js';

const MAX_PAYLOAD_BYTES = 4096;
const RUNS = 60;

type Frame =
  | { kind: 'text'; text: string }
  | { kind: 'binary'; bytes: Uint8Array }
  | { kind: 'fragments'; parts: string[] }
  /** Closes the connection (1007 / 1009): only ever the last frame of a run. */
  | { kind: 'fatal'; bytes: Buffer };

const names = fc.oneof(
  fc.constantFrom(
    'news',
    'private-a',
    'presence-room',
    'private-encrypted-x',
    'cache-c',
    'private-cache-c',
    '#server-to-user-1',
    '__proto__',
    'constructor',
    '',
    'a'.repeat(201),
    'nul\u0000name',
    '😀',
    'private-😀',
    'presence-\u202e',
  ),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.stringMatching(/^(private-|presence-|cache-)?[A-Za-z0-9_\-=@,.;]{1,30}$/),
);
const events = fc.oneof(
  fc.constantFrom(
    'pusher:subscribe',
    'pusher:unsubscribe',
    'pusher:ping',
    'pusher:pong',
    'pusher:signin',
    'client-x',
    'client-😀',
    'client-\u0000',
    'pusher:unknown',
    '',
    `client-${'x'.repeat(300)}`,
  ),
  fc.string({ unit: 'binary', maxLength: 20 }),
);
/** JSON text (not values: huge numbers and `__proto__` keys only exist as text). */
const rawJson = fc.oneof(
  fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)),
  fc.integer({ min: 1, max: 3000 }).map((n) => '['.repeat(n) + ']'.repeat(n)),
  fc.integer({ min: 1, max: 1500 }).map((n) => '{"a":'.repeat(n) + '1' + '}'.repeat(n)),
  fc.constantFrom('1e999', '-1e309', '123456789012345678901234567890e-400', '-0', 'null', 'true', '""', '"\\u0000"'),
  names.map((c) => `{"__proto__":{"channel":"private-a","auth":"x"},"channel":${JSON.stringify(c)}}`),
  fc.tuple(names, fc.jsonValue({ maxDepth: 2 }), fc.jsonValue({ maxDepth: 2 })).map(([channel, auth, channelData]) =>
    JSON.stringify({ channel, auth, channel_data: channelData }),
  ),
  // pusher-js's own shape, and its string-encoded variant.
  fc.tuple(names, fc.string()).map(([channel, auth]) => JSON.stringify(JSON.stringify({ channel, auth: `${APP.key}:${auth}` }))),
  fc.tuple(fc.string(), fc.string()).map(([auth, userData]) => JSON.stringify({ auth, user_data: userData })),
);
const textFrame = fc.oneof(
  fc.tuple(events, names, rawJson).map(([e, c, d]) => `{"event":${JSON.stringify(e)},"channel":${JSON.stringify(c)},"data":${d}}`),
  fc.tuple(events, rawJson).map(([e, d]) => `{"__proto__":{"event":"pusher:ping"},"event":${JSON.stringify(e)},"data":${d}}`),
  fc.tuple(fc.jsonValue({ maxDepth: 2 }), rawJson).map(([e, d]) => `{"event":${JSON.stringify(e)},"data":${d}}`),
  rawJson,
  fc.string({ unit: 'binary', maxLength: 200 }),
);
const frame: fc.Arbitrary<Frame> = fc.oneof(
  { weight: 8, arbitrary: textFrame.map((text) => ({ kind: 'text' as const, text })) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((bytes) => ({ kind: 'binary' as const, bytes })) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(textFrame, fc.integer({ min: 1, max: 3 }))
      .map(([text, n]) => ({
        kind: 'fragments' as const,
        parts: Array.from({ length: n }, (_, i) => text.slice(Math.floor((i * text.length) / n), Math.floor(((i + 1) * text.length) / n))),
      })),
  },
);
const fatal: fc.Arbitrary<Frame> = fc.oneof(
  fc.constant({ kind: 'fatal' as const, bytes: Buffer.from([0x7b, 0xc3, 0x28, 0x7d]) }),
  fc.integer({ min: MAX_PAYLOAD_BYTES * 2 + 1, max: MAX_PAYLOAD_BYTES * 3 }).map((n) => ({ kind: 'fatal' as const, bytes: Buffer.alloc(n, 0x20) })),
);
/** A session's frames and, one time in five, a fatal last frame. */
const session = fc.tuple(
  fc.array(frame, { maxLength: 25 }),
  fc.oneof({ weight: 4, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fatal }),
);

let beacon: BeaconProcess;
before(async () => {
  beacon = await spawnBeacon({
    APP_ENABLE_CLIENT_EVENTS: 'true',
    APP_CLIENT_EVENTS_PER_SECOND: '1000',
    MAX_PAYLOAD_BYTES: String(MAX_PAYLOAD_BYTES),
    // The budget has its own test; here every frame should reach the decoders.
    FRAME_RATE_LIMIT_PER_SECOND: '0',
  });
});
after(async () => {
  await beacon?.stop();
});

let sessions = 0;

/** One fuzz session: connect, send, then prove the server processed everything (a pong) or closed on the fatal frame. */
async function play(frames: Frame[], last: Frame | null): Promise<void> {
  const { client } = await RawClient.established(beacon.port);
  const ws = client.ws;
  // A frame sent after the server closed is refused by the client socket: expected, not a failure.
  const sent = (): void => undefined;
  for (const f of frames) {
    if (f.kind === 'text') ws.send(f.text, sent);
    else if (f.kind === 'binary') ws.send(f.bytes, { binary: true }, sent);
    else if (f.kind === 'fragments') f.parts.forEach((p, i) => ws.send(p, { fin: i === f.parts.length - 1 }, sent));
  }
  if (last !== null && last.kind === 'fatal') {
    ws.send(last.bytes, { binary: false }, sent);
    const closed = await client.waitClosed();
    assert.ok([1007, 1009].includes(closed.code), `closed with ${closed.code}`);
    return;
  }
  // Frames are handled in order: the answer to a last, unique subscribe proves every earlier one was handled. A frame over
  // the socket's hard limit closes with 1009 instead.
  const marker = `marker-${++sessions}`;
  const answered = new Promise<'done' | number>((resolve) => {
    ws.on('message', (raw: Buffer) => {
      if (raw.includes(marker)) resolve('done');
    });
    ws.once('close', (code: number) => resolve(code));
  });
  ws.send(JSON.stringify({ event: 'pusher:subscribe', data: { channel: marker } }), sent);
  const outcome = await within(answered, 'the marker subscription or a close', 10_000);
  if (outcome !== 'done') assert.ok(outcome === 1007 || outcome === 1009, `closed with ${outcome}`);
  if (ws.readyState === WebSocket.OPEN) await client.close();
}

async function scrape(): Promise<ReturnType<typeof parseExposition>> {
  const res = await fetch(`http://127.0.0.1:${beacon.metricsPort}/metrics`);
  return parseExposition(await res.text());
}

test('random hostile frames: the canary gets every publish, the process stays up, the gauges return to 0', { timeout: 90_000 }, async () => {
  const canary = await RawClient.established(beacon.port);
  canary.client.answerPings();
  canary.client.send({ event: 'pusher:subscribe', data: { channel: 'canary' } });
  await canary.client.next('pusher_internal:subscription_succeeded');

  const sdk = new Pusher({ appId: APP.id, key: APP.key, secret: APP.secret, host: '127.0.0.1', port: String(beacon.port), useTLS: false });
  let published = 0;
  let fuzzing = true;
  const publisher = (async () => {
    while (fuzzing) {
      await sdk.trigger('canary', 'tick', { n: published });
      published++;
    }
  })();

  const seed = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);
  try {
    await fc.assert(
      fc.asyncProperty(session, async ([frames, last]) => play(frames, last)),
      { numRuns: RUNS, ...(seed === undefined ? {} : { seed }) },
    );
  } finally {
    fuzzing = false;
    await publisher;
  }

  // Every accepted publish reached the canary, in order.
  await until(() => canary.client.all('tick').length === published, `all ${published} publishes at the canary`, 10_000);
  assert.deepEqual(
    canary.client.all('tick').map((f) => (f.data as { n: number }).n),
    Array.from({ length: published }, (_, n) => n),
  );
  assert.ok(published > 0);
  await canary.client.close();

  // The process is up and logged nothing at error level.
  const health = await within(fetch(`${beacon.url}/healthz`), 'healthz');
  assert.equal(health.status, 200);
  const bad = beacon.logs.map((l) => JSON.parse(l) as { level: string }).filter((l) => l.level === 'error' || l.level === 'fatal');
  assert.deepEqual(bad, [], 'no error-level log line');

  // Every connection, subscription and channel is gone.
  let gauges = {};
  await pollUntil(
    async () => {
      const m = await scrape();
      gauges = {
        connections: sumOf(m, 'websocket_connections'),
        subscriptions: sumOf(m, 'websocket_subscriptions'),
        channels: sumOf(m, 'websocket_channels'),
      };
      return Object.values(gauges).every((v) => v === 0);
    },
    10_000,
    50,
    () => `gauges back to 0, last ${JSON.stringify(gauges)}`,
  );
});
