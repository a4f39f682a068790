/**
 * `npm run bench:hostile`: the hostile-neighbour benchmark. A canary subscriber's publish→receive latency (HTTP publish
 * through the `pusher` SDK, received on a public channel) without and then with one flooding client, for each flood kind
 * (bench/hostile/kinds.ts), on a fresh Beacon per kind and repetition; ratios flood ÷ quiet are taken within each
 * repetition. Writes bench/results/hostile.json and regenerates bench/RESULTS.md. Target: p99 with a flooder ≤ 2× without.
 *
 *   npm run bench:hostile -- [--runs 5] [--rate 100] [--samples 300] [--kind deep-nesting] [--root DIR] [--no-write]
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { Agent } from 'node:http';
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import Pusher from 'pusher';
import { connectBeacon, type Payload } from '../fanout/clients.js';
import { cpuMs } from '../fanout/proc-cpu.js';
import { median, quantile } from '../fanout/stats.js';
import { BEACON_APP, ROOT } from '../fanout/targets.js';
import { renderResults, RESULTS_DIR } from '../render-results.js';
import { commandLine, machineStamp, writeResults, type BenchResults, type ResultRow } from '../results-format.js';
import type { FlooderOptions } from './flooder.js';
import { FLOOD_DESCRIPTIONS, FLOOD_KINDS, type FloodKind } from './kinds.js';
import { MAX_PAYLOAD_BYTES, startBeacon } from './server.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    rate: { type: 'string', default: '100' },
    samples: { type: 'string', default: '300' },
    kind: { type: 'string', multiple: true },
    root: { type: 'string' },
    'no-write': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
  strict: true,
});
if (values.help) {
  process.stdout.write(`Usage: npm run bench:hostile -- [options]
  --runs N      repetitions of every flood kind (default 5)
  --rate N      canary publishes per second (default 100)
  --samples N   publishes measured per phase (default 300)
  --kind K      only this flood (repeatable): ${FLOOD_KINDS.join(', ')}
  --root DIR    run the Beacon built in another checkout (its dist/), e.g. to measure a commit before a fix
  --no-write    print the results only
`);
  process.exit(0);
}
const int = (name: string, raw: string): number => {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got "${raw}"`);
  return n;
};
const runs = int('runs', values.runs);
const rate = int('rate', values.rate);
const samples = int('samples', values.samples);
const kinds = values.kind === undefined ? [...FLOOD_KINDS] : FLOOD_KINDS.filter((k) => values.kind!.includes(k));
if (kinds.length === 0) throw new Error('no flood kind selected');
const serverRoot = values.root === undefined ? ROOT : resolve(values.root);
/** The flooder runs this long before the canary is measured, so the measurement sees a flood in full swing. */
const WARM_MS = 1000;

interface FlooderResult {
  frames: number;
  connections: number;
  cpuMs: number;
}

function startFlooder(options: FlooderOptions): { child: ChildProcess; result: Promise<FlooderResult> } {
  // At the lowest priority: it stands for a client on another machine, whose CPU would not be taken from Beacon's cores.
  const child = spawn('nice', ['-n', '19', process.execPath, '--import', 'tsx', 'bench/hostile/flooder.ts', JSON.stringify(options)], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  const result = new Promise<FlooderResult>((resolve, reject) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), options.durationMs + 30_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      const line = out.split('\n').find((l) => l.startsWith('RESULT '));
      if (line === undefined) reject(new Error(`flooder exited ${code} without a result`));
      else resolve(JSON.parse(line.slice(7)) as FlooderResult);
    });
  });
  return { child, result };
}

interface Phase {
  p50: number;
  p99: number;
  lost: number;
  /** Beacon's CPU over the phase, in % of one core. */
  serverCpu: number;
}

/** `samples` publishes at `rate`/s through the HTTP API, each timed from just before the request to its arrival at the canary. */
async function measure(port: number, pid: number): Promise<Phase> {
  const latencies = new Float64Array(samples);
  let received = 0;
  const seen = new Uint8Array(samples);
  let allReceived: () => void = () => {};
  const done = new Promise<void>((r) => (allReceived = r));
  const canary = await connectBeacon(port, 'canary', 'tick', (p: Payload) => {
    if (p.i < 0 || p.i >= samples || seen[p.i] === 1) return;
    seen[p.i] = 1;
    latencies[received++] = performance.now() - p.t;
    if (received === samples) allReceived();
  });
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const sdk = new Pusher({ appId: BEACON_APP.id, key: BEACON_APP.key, secret: BEACON_APP.secret, host: '127.0.0.1', port: String(port), useTLS: false, agent });
  const started = performance.now();
  const cpuBefore = cpuMs(pid);
  for (let i = 0; i < samples; i++) {
    const wait = started + (i * 1000) / rate - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    sdk.trigger('canary', 'tick', { i, t: performance.now(), pad: '' }).catch(() => undefined);
  }
  await Promise.race([done, new Promise((r) => setTimeout(r, 10_000))]);
  const serverCpu = (100 * (cpuMs(pid) - cpuBefore)) / (performance.now() - started);
  canary.terminate();
  agent.destroy();
  // A publish not received within 10 s of the last one counts as lost (its latency is not in the quantiles).
  return { p50: quantile(latencies, received, 0.5), p99: quantile(latencies, received, 0.99), lost: samples - received, serverCpu };
}

interface Record_ {
  kind: FloodKind;
  quiet: Phase;
  flood: Phase;
  framesPerSecond: number;
  connections: number;
  /** The flooder's own CPU, % of one core over its run. */
  flooderCpu: number;
}

// Beacon is measured compiled: (re)build this checkout's dist/ when a source is newer (another --root builds its own).
if (serverRoot === ROOT) execFileSync(process.execPath, ['scripts/ensure-built.mjs'], { cwd: ROOT, stdio: 'inherit' });

const records: Record_[] = [];
const started = Date.now();
const loadAtStart = loadavg()[0] ?? 0;
for (let run = 0; run < runs; run++) {
  for (const kind of kinds) {
    const server = await startBeacon(serverRoot);
    try {
      const quiet = await measure(server.port, server.pid);
      const durationMs = WARM_MS + (samples * 1000) / rate + 1500;
      const flooder = startFlooder({ kind, port: server.port, durationMs, maxPayloadBytes: MAX_PAYLOAD_BYTES });
      await new Promise((r) => setTimeout(r, WARM_MS));
      const flood = await measure(server.port, server.pid);
      const { frames, connections, cpuMs: flooderMs } = await flooder.result;
      records.push({ kind, quiet, flood, framesPerSecond: frames / (durationMs / 1000), connections, flooderCpu: (100 * flooderMs) / durationMs });
      process.stdout.write(
        `run ${run + 1} ${kind}: quiet p50 ${quiet.p50.toFixed(2)} p99 ${quiet.p99.toFixed(2)} ms cpu ${quiet.serverCpu.toFixed(0)}% | flood p50 ${flood.p50.toFixed(2)} p99 ${flood.p99.toFixed(2)} ms cpu ${flood.serverCpu.toFixed(0)}%, lost ${flood.lost}, ${Math.round(frames / (durationMs / 1000))} frames/s, flooder cpu ${((100 * flooderMs) / durationMs).toFixed(0)}%\n`,
      );
    } finally {
      await server.stop();
    }
  }
}

const round = (x: number, digits = 2): number => Number(x.toFixed(digits));
const rows: ResultRow[] = kinds.map((kind) => {
  const mine = records.filter((r) => r.kind === kind);
  const p99Ratio = median(mine.map((r) => r.flood.p99 / r.quiet.p99));
  return {
    name: kind,
    quiet_p50_ms: round(median(mine.map((r) => r.quiet.p50))),
    quiet_p99_ms: round(median(mine.map((r) => r.quiet.p99))),
    flood_p50_ms: round(median(mine.map((r) => r.flood.p50))),
    flood_p99_ms: round(median(mine.map((r) => r.flood.p99))),
    p50_ratio: round(median(mine.map((r) => r.flood.p50 / r.quiet.p50))),
    p99_ratio: round(p99Ratio),
    lost: mine.reduce((n, r) => n + r.quiet.lost + r.flood.lost, 0),
    quiet_cpu_pct: Math.round(median(mine.map((r) => r.quiet.serverCpu))),
    flood_cpu_pct: Math.round(median(mine.map((r) => r.flood.serverCpu))),
    flood_frames_per_s: Math.round(median(mine.map((r) => r.framesPerSecond))),
    flooder_cpu_pct: Math.round(median(mine.map((r) => r.flooderCpu))),
    target: p99Ratio <= 2 ? 'met (≤ 2×)' : 'missed',
  };
});
const results: BenchResults = {
  scenario: 'hostile',
  title: 'Hostile neighbour: a canary with and without one flooding client',
  command: commandLine('bench:hostile'),
  ...machineStamp(['src', 'bench/hostile']),
  runs,
  columns: [
    { key: 'quiet_p50_ms', label: 'quiet p50 ms' },
    { key: 'quiet_p99_ms', label: 'quiet p99 ms' },
    { key: 'flood_p50_ms', label: 'flood p50 ms' },
    { key: 'flood_p99_ms', label: 'flood p99 ms' },
    { key: 'p50_ratio', label: 'p50 flood ÷ quiet' },
    { key: 'p99_ratio', label: 'p99 flood ÷ quiet' },
    { key: 'lost', label: 'publishes lost' },
    { key: 'quiet_cpu_pct', label: 'Beacon CPU % quiet' },
    { key: 'flood_cpu_pct', label: 'Beacon CPU % flood' },
    { key: 'flood_frames_per_s', label: 'flood frames/s sent' },
    { key: 'flooder_cpu_pct', label: 'flooder CPU %' },
    { key: 'target', label: 'p99 ≤ 2×' },
  ],
  rows,
  notes: [
    `The canary: one subscriber of a public channel; ${samples} publishes per phase at ${rate}/s, each an HTTP POST /apps/app-id/events signed by the \`pusher\` SDK (keep-alive), timed from just before the request to its arrival (publisher and canary share one process and clock). Quiet phase, then the same with one flooder running (started ${WARM_MS} ms before measuring), on a fresh Beacon per flood kind and repetition.`,
    'The flooder is its own process (at nice 19: it stands for a client on another machine) with one connection (a new one whenever the server closes it), sending as fast as its socket takes frames (up to 1 MiB queued). Its frames/s column counts frames handed to its socket (the kernel buffers what Beacon does not read while that connection is over its frame budget); Beacon answers every refused frame it reads. Beacon CPU columns: utime+stime of the server process over each phase, % of one core.',
    ...kinds.map((k) => FLOOD_DESCRIPTIONS[k]),
    `Beacon runs compiled (dist/${serverRoot === ROOT ? '' : ` of ${serverRoot}`}) with its default limits (FRAME_RATE_LIMIT_PER_SECOND 200, MAX_JSON_DEPTH 32, MAX_SUBSCRIPTIONS_PER_CONNECTION 100, client events 10/s), APP_ENABLE_CLIENT_EVENTS=true, MAX_PAYLOAD_BYTES ${MAX_PAYLOAD_BYTES}, LOG_LEVEL=info (stdout read by the harness, which only counts error-level lines), OTEL_SDK_DISABLED=true.`,
    'Ratios are medians of per-repetition ratios (flood ÷ quiet of the same repetition); latencies are medians over repetitions of each phase\'s p50/p99. The machine is shared (2 cores for Beacon, the flooder and the canary): read ratios, not absolute numbers.',
    `Whole run: ${Math.round((Date.now() - started) / 1000)} s; the machine's 1-minute load average was ${loadAtStart.toFixed(1)} at its start and ${(loadavg()[0] ?? 0).toFixed(1)} at its end (on ${cpus().length} cores): with the machine this busy the p99 of a phase is mostly its scheduling, so compare the Beacon CPU columns too.`,
  ],
};

console.table(Object.fromEntries(rows.map(({ name, ...m }) => [name, m])));
if (!values['no-write']) {
  writeResults(join(RESULTS_DIR, 'hostile.json'), results);
  process.stdout.write(`wrote bench/results/hostile.json; bench/RESULTS.md from ${renderResults().join(', ')}\n`);
}
process.exit(0);
