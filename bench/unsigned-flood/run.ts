/**
 * Unsigned ~1 MB bodies against the HTTP API: what a flood of them costs every other client. A canary subscriber's
 * publish→receive latency (a signed `POST /events` every 20 ms, through the `pusher` SDK) is measured alone, then while
 * `--flooders` loops POST unsigned ~1 MB JSON bodies as fast as they are answered. Each checkout given (`--root`, default
 * this one) runs as a fresh child process from its sources (`node --import tsx src/main.ts`, OTEL_SDK_DISABLED, LOG_LEVEL
 * warn) on a free 127.0.0.1 port, so a checkout before a change and one after it are measured in the same run.
 *
 *   node --import tsx bench/unsigned-flood/run.ts [--root /path/to/old/checkout --root .] [--seconds 8] [--flooders 4] [--runs 3]
 *
 * Writes bench/results/unsigned-flood.json; `node --import tsx bench/render-results.ts` renders RESULTS.md.
 */
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import Pusher from 'pusher';
import WebSocket from 'ws';
import { freePort } from '../../test/helpers/free-port.js';
import { commandLine, machineStamp, writeResults, type ResultRow } from '../results-format.js';
import { quantile as quantileOf } from '../fanout/stats.js';
import { checkoutLabel } from '../common/checkout.js';

/** Quantile `q` of sorted `xs`. */
const quantile = (xs: number[], q: number): number => quantileOf(Float64Array.from(xs), xs.length, q);

const { values } = parseArgs({
  options: {
    root: { type: 'string', multiple: true, default: ['.'] },
    seconds: { type: 'string', default: '8' },
    flooders: { type: 'string', default: '4' },
    runs: { type: 'string', default: '3' },
  },
});
const SECONDS = Number(values.seconds);
const FLOODERS = Number(values.flooders);
const PUBLISH_EVERY_MS = 20;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Starts Beacon from `root`; a free port taken by someone else in between (the machine is shared) gets another try. */
async function startBeacon(root: string, attempts = 3): Promise<{ port: number; stop: () => Promise<void> }> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: root,
    env: { ...process.env, HOST: '127.0.0.1', PORT: String(port), OTEL_SDK_DISABLED: 'true', LOG_LEVEL: 'warn', SHUTDOWN_GRACE_MS: '0' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const deadline = Date.now() + 20_000;
  while ((await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.status !== 200) {
    if (child.exitCode !== null && attempts > 1) return startBeacon(root, attempts - 1);
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`beacon in ${root} not ready`);
    await sleep(100);
  }
  return {
    port,
    stop: async () => {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    },
  };
}

/** Canary latencies (ms) over `seconds`, while `load` runs. */
async function canary(port: number, seconds: number): Promise<number[]> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/app/app-key?protocol=7`);
  const latencies: number[] = [];
  const sentAt = new Map<number, number>();
  await new Promise<void>((resolveOpen, reject) => {
    ws.on('error', reject);
    ws.on('message', (raw: Buffer) => {
      const frame = JSON.parse(raw.toString()) as { event: string; data?: string };
      if (frame.event === 'pusher:connection_established') ws.send(JSON.stringify({ event: 'pusher:subscribe', data: { channel: 'canary' } }));
      else if (frame.event === 'pusher_internal:subscription_succeeded') resolveOpen();
      else if (frame.event === 'tick') {
        const n = (JSON.parse(frame.data ?? '{}') as { n: number }).n;
        const t = sentAt.get(n);
        if (t !== undefined) latencies.push(performance.now() - t);
      }
    });
  });
  const sdk = new Pusher({ appId: 'app-id', key: 'app-key', secret: 'app-secret', host: '127.0.0.1', port: String(port), useTLS: false });
  const end = Date.now() + seconds * 1000;
  for (let n = 0; Date.now() < end; n++) {
    sentAt.set(n, performance.now());
    void sdk.trigger('canary', 'tick', { n }).catch(() => undefined);
    await sleep(PUBLISH_EVERY_MS);
  }
  await sleep(500);
  ws.close();
  return latencies;
}

/**
 * Starts the flooding client (flooder.ts) in its own process and resolves once its first request was answered; `stop()`
 * resolves with how many requests were answered.
 */
async function flood(port: number): Promise<{ stop: () => Promise<number> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./flooder.ts', import.meta.url)), String(port), String(FLOODERS)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise((r) => child.once('exit', r));
  while (!out.includes('ready')) {
    if (child.exitCode !== null) throw new Error('the flooder exited early');
    await sleep(20);
  }
  return {
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
      return Number(/answered (\d+)/.exec(out)?.[1] ?? Number.NaN);
    },
  };
}

const median = (xs: number[]): number => quantile([...xs].sort((a, b) => a - b), 0.5);
const rows: ResultRow[] = [];
for (const rootArg of values.root) {
  const root = resolve(rootArg);
  const runs: Array<{ p50: number; p99: number; fp50: number; fp99: number; rps: number }> = [];
  for (let r = 0; r < Number(values.runs); r++) {
    const beacon = await startBeacon(root);
    const alone = (await canary(beacon.port, SECONDS)).sort((a, b) => a - b);
    const flooder = await flood(beacon.port);
    const flooded = (await canary(beacon.port, SECONDS)).sort((a, b) => a - b);
    const answered = await flooder.stop();
    await beacon.stop();
    const run = {
      p50: quantile(alone, 0.5),
      p99: quantile(alone, 0.99),
      fp50: quantile(flooded, 0.5),
      fp99: quantile(flooded, 0.99),
      rps: answered / (SECONDS + 0.5),
    };
    process.stdout.write(`${root} run ${r + 1}: ${JSON.stringify(run)}\n`);
    runs.push(run);
  }
  const m = (k: keyof (typeof runs)[number]) => median(runs.map((x) => x[k]));
  rows.push({
    name: checkoutLabel(root),
    canary_p50_ms: m('p50'),
    canary_p99_ms: m('p99'),
    flooded_p50_ms: m('fp50'),
    flooded_p99_ms: m('fp99'),
    p50_ratio: m('fp50') / m('p50'),
    p99_ratio: m('fp99') / m('p99'),
    unsigned_per_s: m('rps'),
  });
}
writeResults('bench/results/unsigned-flood.json', {
  scenario: 'unsigned-flood',
  title: 'Unsigned ~1 MB API bodies: canary publish→receive latency with and without the flood',
  command: commandLine('bench:unsigned-flood'),
  ...machineStamp(['src/http']),
  runs: Number(values.runs),
  rows,
  notes: [
    `Canary: one subscriber, a signed POST /events every ${PUBLISH_EVERY_MS} ms for ${SECONDS} s alone, then ${SECONDS} s while another process (flooder.ts) runs ${FLOODERS} loops POSTing unsigned ~1 MB JSON bodies back to back.`,
    'Each row is one checkout (its path), a fresh child process per run from its own sources under tsx; medians over the runs. Ratios are flooded / alone in the same run.',
  ],
});
