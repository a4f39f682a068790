/**
 * What telemetry costs: the same fan-out workload against a fresh Beacon process with telemetry off
 * (OTEL_SDK_DISABLED=true), with metrics only (the Prometheus exporter, scraped every second), and with metrics plus
 * traces exported over OTLP/HTTP to a local sink, sampled at 5 % and at 100 % (the worst case). The measure is the server's CPU
 * (user + system, all threads, from /proc/<pid>/stat) per delivered message over the workload window only (start-up
 * excluded). Before it, `--warmup-requests` publishes to a channel nobody subscribes to bring the publish path to its
 * steady state (V8 optimises Beacon's signed HTTP path only after thousands of requests; bench/README.md, "Warm-up").
 * After the deliveries, `--connect-warmup` subscribed connections bring the connect path to its steady state, then
 * `--connects` more (50 at a time) give the server's CPU per connect.
 * Modes are interleaved run by run so drift of the machine hits them alike; rows are medians.
 *
 *   npm run bench:telemetry [-- --runs 5 --subscribers 200 --publishes 2000 --warmup-requests 10000 --connect-warmup 3000 --connects 4000]
 *
 * Writes bench/results/telemetry-cost-node<major>.json (one per Node major) and regenerates bench/RESULTS.md.
 */
import { execFileSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { apiSignString, bodyMd5, sign } from '../../src/protocol/signatures.js';
import { spawnBeacon, type BeaconProcess } from '../../test/helpers/beacon-process.js';
import { checkoutLabel } from '../common/checkout.js';
import { nonNegative, parseCommand, positive } from '../common/cli.js';
import { startSink } from '../common/otlp-sink.js';
import { cpuMs } from '../fanout/proc-cpu.js';
import { median } from '../fanout/stats.js';
import { renderResults } from '../render-results.js';
import { commandLine, machineStamp, writeResults, type BenchResults, type ResultRow } from '../results-format.js';

const BENCH_DIR = fileURLToPath(new URL('..', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

const HELP = `npm run bench:telemetry [-- options]

Server CPU per delivered message, and per subscribed connect, of one Beacon with telemetry off, metrics only, and
metrics + traces at 5 % and 100 % sampling; every mode once per run, in a rotated order.

  --runs N              runs (default 5)
  --subscribers N       subscribers on the one channel (default 200)
  --publishes N         measured publishes (default 2000)
  --concurrency N       publishes in flight (default 8)
  --warmup-requests N   publishes to a channel nobody subscribes to before the fan-out warm-up (default 10000; 0: none)
  --connect-warmup N    subscribed connections opened (and kept) after the deliveries, before the measured ones (default 3000)
  --connects N          subscribed connections opened after those, 50 at a time, for CPU per connect (default 4000)
  --modes LIST          a subset of off,metrics,traces-5,traces-100 (default all; off is always measured: ratios are to it)
  --root DIR            a checkout to run Beacon from (repeatable; default this one). With more than one, every mode
                        runs from each, all in one rotation, and the ratios are to the first checkout's off: an A/B of
                        two commits on the same machine (e.g. a \`git worktree\` of the previous commit with
                        node_modules). Only a run of this checkout with every mode writes results.
  --no-write            print, do not write bench/results or RESULTS.md
`;
const args = parseCommand(HELP, {
  runs: { type: 'string', default: '5' },
  subscribers: { type: 'string', default: '200' },
  publishes: { type: 'string', default: '2000' },
  concurrency: { type: 'string', default: '8' },
  'warmup-requests': { type: 'string', default: '10000' },
  'connect-warmup': { type: 'string', default: '3000' },
  connects: { type: 'string', default: '4000' },
  modes: { type: 'string', default: 'off,metrics,traces-5,traces-100' },
  root: { type: 'string', multiple: true, default: ['.'] },
});
const RUNS = positive('runs', args.runs, 100);
const SUBSCRIBERS = positive('subscribers', args.subscribers, 20_000);
const PUBLISHES = positive('publishes', args.publishes, 1_000_000);
const CONCURRENCY = positive('concurrency', args.concurrency, 256);
const WARMUP_REQUESTS = nonNegative('warmup-requests', args['warmup-requests'], 1_000_000);
const CONNECT_WARMUP = nonNegative('connect-warmup', args['connect-warmup'], 100_000);
const CONNECTS = nonNegative('connects', args.connects, 100_000);
/** Connections of the connect phase opened at a time. */
const CONNECT_BATCH = 50;
/** Publishes of the fan-out warm-up, after the request-path warm-up. */
const FANOUT_WARMUP = Math.min(200, PUBLISHES);
const CHANNEL = 'bench';
/** Where the request-path warm-up publishes: nobody subscribes to it. */
const WARMUP_CHANNEL = 'bench-warmup';
const PAYLOAD = JSON.stringify({ price: 101.25, symbol: 'ACME', seq: 0, pad: 'x'.repeat(100) });

interface Mode {
  /** Its `--modes` key. */
  key: string;
  name: string;
  env: (sink: string) => Record<string, string>;
  scrape: boolean;
}

const ALL_MODES: Mode[] = [
  { key: 'off', name: 'telemetry off (OTEL_SDK_DISABLED=true)', env: () => ({ OTEL_SDK_DISABLED: 'true' }), scrape: false },
  { key: 'metrics', name: 'metrics (Prometheus, scraped every 1 s)', env: () => ({}), scrape: true },
  {
    key: 'traces-5',
    name: 'metrics + traces (5 % sampled, OTLP/HTTP)',
    env: (sink) => ({
      OTEL_EXPORTER_OTLP_ENDPOINT: sink,
      OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
      OTEL_TRACES_SAMPLER_ARG: '0.05',
    }),
    scrape: true,
  },
  {
    key: 'traces-100',
    name: 'metrics + traces (100 % sampled, OTLP/HTTP)',
    env: (sink) => ({ OTEL_EXPORTER_OTLP_ENDPOINT: sink, OTEL_TRACES_SAMPLER: 'always_on' }),
    scrape: true,
  },
];

const wanted = new Set(args.modes.split(',').map((key) => key.trim()).filter((key) => key !== ''));
for (const key of wanted) {
  if (!ALL_MODES.some((m) => m.key === key)) throw new Error(`--modes: unknown mode "${key}" (off, metrics, traces-5, traces-100)`);
}
const MODES = ALL_MODES.filter((m) => m.key === 'off' || wanted.has(m.key));

/** What one run measures once: a mode of Beacon run from one checkout. */
interface Item {
  mode: Mode;
  root: string;
  name: string;
}
const ROOTS = args.root.map((dir) => resolve(dir));
const ITEMS: Item[] = ROOTS.flatMap((root) =>
  MODES.map((mode) => ({ mode, root, name: ROOTS.length > 1 ? `${mode.name} @ ${checkoutLabel(root)}` : mode.name })),
);
/** Results are written only by the standard run: this checkout, every mode. */
const STANDARD = ROOTS.length === 1 && ROOTS[0] === resolve(ROOT) && MODES.length === ALL_MODES.length;

/** Opens `n` subscribers on the bench channel; resolves with a counter of channel events received by all of them. */
async function subscribe(port: number, n: number): Promise<{ received: () => number; close: () => void }> {
  let received = 0;
  const sockets: WebSocket[] = [];
  const opening: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/app/app-key?protocol=7`);
    sockets.push(ws);
    opening.push(
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('subscription timed out')), 10_000);
        ws.on('message', (raw: Buffer) => {
          // Count without parsing: the bench client must stay cheap (it shares the machine's two cores).
          if (raw.includes('"event":"tick"')) {
            received++;
            return;
          }
          const text = raw.toString('utf8');
          if (text.includes('connection_established')) {
            ws.send(JSON.stringify({ event: 'pusher:subscribe', data: { channel: CHANNEL } }));
          } else if (text.includes('subscription_succeeded')) {
            clearTimeout(timer);
            resolve();
          }
        });
        ws.on('error', reject);
      }),
    );
  }
  await Promise.all(opening);
  return { received: () => received, close: () => sockets.forEach((s) => s.terminate()) };
}

/** Publishes `count` events to `channel` through the signed HTTP API, `concurrency` at a time. */
async function publish(url: string, count: number, concurrency: number, channel = CHANNEL): Promise<void> {
  const path = '/apps/app-id/events';
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const seq = next++;
      const body = JSON.stringify({ name: 'tick', channel, data: PAYLOAD.replace('"seq":0', `"seq":${seq}`) });
      const query: Record<string, string> = {
        auth_key: 'app-key',
        auth_timestamp: String(Math.floor(Date.now() / 1000)),
        auth_version: '1.0',
        body_md5: bodyMd5(body),
      };
      query.auth_signature = sign('app-secret', apiSignString('POST', path, query));
      const res = await fetch(`${url}${path}?${new URLSearchParams(query).toString()}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      });
      if (res.status !== 200) throw new Error(`publish ${seq}: HTTP ${res.status} ${await res.text()}`);
      await res.arrayBuffer();
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

interface Sample {
  cpuUsPerDelivery: number;
  deliveriesPerSecond: number;
  cpuMs: number;
  /** Server CPU per subscribed connection opened in the connect phase after the deliveries. */
  cpuUsPerConnect: number;
}

async function runOnce({ mode, root }: Item, sinkUrl: string): Promise<Sample> {
  // Compiled, as `npm start` runs it (dist/, brought up to date before the first run).
  const beacon: BeaconProcess = await spawnBeacon({ ...mode.env(sinkUrl), LOG_LEVEL: 'info' }, { compiled: true, root });
  const clients = await subscribe(beacon.port, SUBSCRIBERS);
  const storm: Array<{ close: () => void }> = [];
  let scraping = mode.scrape;
  const scraper = (async () => {
    while (scraping) {
      await (await fetch(`http://127.0.0.1:${beacon.metricsPort}/metrics`)).text();
      await new Promise((r) => setTimeout(r, 1000));
    }
  })();
  try {
    // Warm-up outside the measured window: the publish path to its steady state, then the fan-out (buffers, sockets).
    await publish(beacon.url, WARMUP_REQUESTS, CONCURRENCY, WARMUP_CHANNEL);
    await publish(beacon.url, FANOUT_WARMUP, CONCURRENCY);
    const expectedBefore = FANOUT_WARMUP * SUBSCRIBERS;
    await waitFor(() => clients.received() >= expectedBefore, 'warm-up deliveries');

    const cpuBefore = cpuMs(beacon.pid);
    const started = performance.now();
    await publish(beacon.url, PUBLISHES, CONCURRENCY);
    await waitFor(() => clients.received() >= expectedBefore + PUBLISHES * SUBSCRIBERS, 'all deliveries');
    const elapsedMs = performance.now() - started;
    const cpu = cpuMs(beacon.pid) - cpuBefore;
    const delivered = PUBLISHES * SUBSCRIBERS;

    // The connect phase: CONNECT_WARMUP subscribed connections so that V8 has optimised the connect path (it takes
    // thousands, as for the publish path; measured from the first connect, a mode whose extra code was still cold read
    // up to 40 % dearer per connect), then CONNECTS more, CONNECT_BATCH at a time (handshake, subscribe, answer).
    for (let opened = 0; CONNECTS > 0 && opened < CONNECT_WARMUP; opened += CONNECT_BATCH) {
      storm.push(await subscribe(beacon.port, Math.min(CONNECT_BATCH, CONNECT_WARMUP - opened)));
    }
    const connectCpuBefore = cpuMs(beacon.pid);
    for (let opened = 0; opened < CONNECTS; opened += CONNECT_BATCH) {
      storm.push(await subscribe(beacon.port, Math.min(CONNECT_BATCH, CONNECTS - opened)));
    }
    const connectCpu = cpuMs(beacon.pid) - connectCpuBefore;
    return {
      cpuUsPerDelivery: (cpu * 1000) / delivered,
      deliveriesPerSecond: (delivered * 1000) / elapsedMs,
      cpuMs: cpu,
      cpuUsPerConnect: CONNECTS === 0 ? Number.NaN : (connectCpu * 1000) / CONNECTS,
    };
  } finally {
    scraping = false;
    await scraper;
    clients.close();
    for (const batch of storm) batch.close();
    await beacon.stop('SIGTERM');
  }
}

/** Bounded wait for a condition, polling every 5 ms (30 s at most). */
async function waitFor(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

for (const root of ROOTS) execFileSync(process.execPath, ['scripts/ensure-built.mjs'], { cwd: root, stdio: 'inherit' });
const sink = await startSink();
const samples = new Map<string, Sample[]>(ITEMS.map((item) => [item.name, []]));
for (let run = 0; run < RUNS; run++) {
  // Rotate the order each run so no mode always runs first (cold machine) or last.
  const order = ITEMS.map((_, i) => ITEMS[(i + run) % ITEMS.length] as Item);
  for (const item of order) {
    const sample = await runOnce(item, sink.url);
    samples.get(item.name)?.push(sample);
    process.stderr.write(
      `run ${run + 1}/${RUNS} ${item.name}: ${sample.cpuUsPerDelivery.toFixed(3)} µs CPU/delivery, ` +
        `${Math.round(sample.deliveriesPerSecond)} deliveries/s, ${sample.cpuUsPerConnect.toFixed(0)} µs CPU/connect\n`,
    );
  }
}
await new Promise<void>((resolve) => sink.server.close(() => resolve()));

const offSamples = samples.get(ITEMS[0]?.name ?? '') ?? [];
/** Each run's ratio of `item` to off: the items of one run are measured back to back, so it cancels slow drift. */
const pairedRatios = (item: Item, of: 'cpuUsPerDelivery' | 'cpuUsPerConnect' = 'cpuUsPerDelivery'): number[] =>
  (samples.get(item.name) ?? []).map((s, i) => s[of] / (offSamples[i]?.[of] ?? Number.NaN));
const rows: ResultRow[] = ITEMS.map((item) => {
  const list = samples.get(item.name) ?? [];
  const cpu = median(list.map((s) => s.cpuUsPerDelivery));
  const ratio = median(pairedRatios(item));
  return {
    name: item.name,
    cpu_us_per_delivery: cpu,
    vs_off: ratio,
    overhead_pct: (ratio - 1) * 100,
    deliveries_per_s: median(list.map((s) => s.deliveriesPerSecond)),
    server_cpu_ms: median(list.map((s) => s.cpuMs)),
    cpu_us_per_connect: median(list.map((s) => s.cpuUsPerConnect)),
    connect_vs_off: median(pairedRatios(item, 'cpuUsPerConnect')),
  };
});

// One results file per Node major: the cost of async context tracking differs between Node 20 and Node 24.
const scenario = `telemetry-cost-node${process.versions.node.split('.')[0]}`;
const range = (ratios: number[]): string => `${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}`;
const spread = ITEMS.slice(1)
  .map((item) => `${item.name} ${range(pairedRatios(item))} (connects ${range(pairedRatios(item, 'cpuUsPerConnect'))})`)
  .join('; ');
const results: BenchResults = {
  scenario,
  title: `Telemetry cost on Node ${process.versions.node.split('.')[0]}: server CPU per delivered message, telemetry off vs on`,
  command: commandLine('bench:telemetry'),
  ...machineStamp(['src', 'otel', 'bench/telemetry-cost']),
  runs: RUNS,
  columns: [
    { key: 'cpu_us_per_delivery', label: 'server CPU µs / delivery' },
    { key: 'vs_off', label: '× off (paired)' },
    { key: 'overhead_pct', label: 'overhead %' },
    { key: 'deliveries_per_s', label: 'deliveries / s' },
    { key: 'server_cpu_ms', label: 'server CPU ms (window)' },
    { key: 'cpu_us_per_connect', label: 'server CPU µs / connect' },
    { key: 'connect_vs_off', label: 'connect × off (paired)' },
  ],
  rows,
  notes: [
    `Workload: ${SUBSCRIBERS} WebSocket subscribers on one public channel, ${PUBLISHES} HTTP API publishes ` +
      `(${CONCURRENCY} in flight, ~${Buffer.byteLength(PAYLOAD)} B payload); ${PUBLISHES * SUBSCRIBERS} deliveries per ` +
      'run. Server and load generator share the machine. Beacon runs compiled, as `npm start` runs it (until `69ece93` ' +
      'this benchmark ran it from the TypeScript sources under tsx).',
    `Warm-up, not measured: ${WARMUP_REQUESTS} publishes to a channel nobody subscribes to (${CONCURRENCY} in flight), ` +
      `so the publish path runs at its steady state (bench/README.md, "Warm-up"), then ${FANOUT_WARMUP} publishes ` +
      'through the fan-out.',
    'Server CPU is utime + stime of the Beacon process (all threads: pino, exporter, GC) from /proc/<pid>/stat over the ' +
      'measured window; start-up, warm-up and shutdown are excluded. Each run starts a fresh process.',
    `Connect phase, after the deliveries: ${CONNECT_WARMUP} subscribed connections to the same channel, not measured ` +
      `(V8 optimises the connect path only after thousands of connects: before this warm-up was added, a mode whose ` +
      `extra code was still cold read up to 40 % dearer), then ${CONNECTS} more, ${CONNECT_BATCH} ` +
      'at a time (handshake, connection_established, subscribe, subscription_succeeded); server CPU over them ÷ their ' +
      'count. connect × off is the median of per-run ratios, as for deliveries.',
    'Off: OTEL_SDK_DISABLED=true (no SDK, no /metrics). Metrics: the default bootstrap, no OTLP endpoint (so no tracer ' +
      'provider), /metrics scraped every second. Metrics + traces: OTLP/HTTP protobuf to a local sink that discards, ' +
      'sampled by `parentbased_traceidratio` at 0.05 or by `always_on` (every publish records its HTTP server, ' +
      'publish and deliver spans). Logs at info in every mode.',
    '× off and overhead % are medians of per-run ratios (each run measures every mode back to back, in a rotated ' +
      `order); the CPU column is the plain median over runs. Spread of the per-run ratios (lowest–highest): ${spread}.`,
    'Why tracing is cheap here: Beacon installs no HTTP instrumentation (the API server span comes from a fastify ' +
      'hook) and no AsyncLocalStorage context manager (spans take explicit parents; otel/sync-context-manager.ts). ' +
      'Earlier runs with both installed measured +17-31 % CPU per delivery, whatever the sampling ratio. Differences of ' +
      'a few percent are within run-to-run noise on this shared 2-core machine (a mode can even measure below off).',
    'Targets: telemetry on costs at most 5 % more CPU per delivery (issue 3), at most 3 % (issue 12).',
  ],
};
if (!STANDARD) {
  process.stderr.write('not written: only a run of this checkout with every mode writes results\n');
} else if (!args['no-write']) {
  writeResults(join(BENCH_DIR, 'results', `${scenario}.json`), results);
  renderResults();
  process.stderr.write(`wrote bench/results/${scenario}.json and bench/RESULTS.md\n`);
}
for (const row of rows) {
  process.stderr.write(
    `${row.name}: ${Number(row.cpu_us_per_delivery).toFixed(3)} µs/delivery (${Number(row.overhead_pct).toFixed(1)} %), ` +
      `${Number(row.cpu_us_per_connect).toFixed(0)} µs/connect (× off ${Number(row.connect_vs_off).toFixed(2)})\n`,
  );
}
