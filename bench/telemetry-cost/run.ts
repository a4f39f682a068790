/**
 * What telemetry costs: the same fan-out workload against a fresh Beacon process with telemetry off
 * (OTEL_SDK_DISABLED=true), with metrics only (the Prometheus exporter, scraped every second), and with metrics plus
 * traces exported over OTLP/HTTP to a local sink, sampled at 5 % and at 100 % (the worst case). The measure is the server's CPU
 * (user + system, all threads, from /proc/<pid>/stat) per delivered message over the workload window only (start-up
 * excluded). Before it, `--warmup-requests` publishes to a channel nobody subscribes to bring the publish path to its
 * steady state (V8 optimises Beacon's signed HTTP path only after thousands of requests; bench/README.md, "Warm-up").
 * After the deliveries, `--connect-warmup` subscribed connections bring the connect path to its steady state, then
 * `--connects` more (50 at a time) give the server's CPU per connect.
 * Every mode of a run has its own server, all running at once, and each phase is measured in slices the modes take in
 * turn (100 publishes, 500 connects), so the machine's slow stretches hit them alike; rows are medians over runs.
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
metrics + traces at 5 % and 100 % sampling; every mode once per run, all at once, measured in slices taken in turn
(rotated order).

  --runs N              runs (default 5)
  --subscribers N       subscribers on the one channel (default 200)
  --publishes N         measured publishes (default 2000)
  --concurrency N       publishes in flight (default 8)
  --warmup-requests N   publishes to a channel nobody subscribes to before the fan-out warm-up (default 10000; 0: none)
  --connect-warmup N    subscribed connections opened after the deliveries, before the measured ones, and closed (default 3000)
  --connects N          subscribed connections opened after those, 50 at a time, in slices of 500 closed once measured, for CPU per connect (default 4000)
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
  /** Server CPU per subscribed connect, over the connect slices. */
  cpuUsPerConnect: number;
}

/** Publishes of one slice of the delivery phase. */
const PUBLISH_SLICE = 100;
/** Subscribed connects of one slice of the connect phase (CONNECT_BATCH at a time). */
const CONNECT_SLICE = 500;

/** One item's server during a round, with what its slices have measured so far. */
interface Running {
  item: Item;
  beacon: BeaconProcess;
  clients: { received: () => number; close: () => void };
  stopScraping: () => Promise<void>;
  cpuMs: number;
  elapsedMs: number;
  connectCpuMs: number;
}

/** Runs `fn` as one slice of `server`'s measurement: its CPU (and wall time) over the slice are added to its totals. */
async function slice(server: Running, kind: 'deliveries' | 'connects', fn: () => Promise<void>): Promise<void> {
  const cpu0 = cpuMs(server.beacon.pid);
  const t0 = performance.now();
  await fn();
  const cpu = cpuMs(server.beacon.pid) - cpu0;
  if (kind === 'connects') server.connectCpuMs += cpu;
  else {
    server.cpuMs += cpu;
    server.elapsedMs += performance.now() - t0;
  }
}

/** Opens `count` subscribed connections to `server`, CONNECT_BATCH at a time, and closes them all. */
async function connectAndClose(server: Running, count: number): Promise<void> {
  const opened: Array<{ close: () => void }> = [];
  try {
    for (let n = 0; n < count; n += CONNECT_BATCH) opened.push(await subscribe(server.beacon.port, Math.min(CONNECT_BATCH, count - n)));
  } finally {
    for (const batch of opened) batch.close();
  }
}

/**
 * One round: every item's server runs at once, and each phase is measured slice by slice, the items taking turns (in
 * `order`): the machine's CPU time for the same work varied by up to 2x from one minute to the next (a fixed loop,
 * 442-855 ms), so a server measured whole, after another, could land in a slower minute than the one it is compared
 * with. Slices of a few hundred milliseconds, taken in turn, share every slow stretch alike.
 */
async function runRound(order: Item[], sinkUrl: string): Promise<Sample[]> {
  const servers: Running[] = [];
  try {
    for (const item of order) {
      // Compiled, as `npm start` runs it (dist/, brought up to date before the first run).
      const beacon = await spawnBeacon({ ...item.mode.env(sinkUrl), LOG_LEVEL: 'info' }, { compiled: true, root: item.root });
      let scraping = item.mode.scrape;
      const scraper = (async () => {
        while (scraping) {
          await (await fetch(`http://127.0.0.1:${beacon.metricsPort}/metrics`)).text();
          await new Promise((r) => setTimeout(r, 1000));
        }
      })();
      const server: Running = {
        item,
        beacon,
        clients: { received: () => 0, close: () => {} },
        stopScraping: async () => {
          scraping = false;
          await scraper;
        },
        cpuMs: 0,
        elapsedMs: 0,
        connectCpuMs: 0,
      };
      servers.push(server);
      server.clients = await subscribe(beacon.port, SUBSCRIBERS);
    }
    // Warm-up outside the measured slices: the publish path to its steady state, then the fan-out (buffers, sockets).
    for (const server of servers) {
      await publish(server.beacon.url, WARMUP_REQUESTS, CONCURRENCY, WARMUP_CHANNEL);
      await publish(server.beacon.url, FANOUT_WARMUP, CONCURRENCY);
      await waitFor(() => server.clients.received() >= FANOUT_WARMUP * SUBSCRIBERS, 'warm-up deliveries');
    }
    for (let done = 0; done < PUBLISHES; done += PUBLISH_SLICE) {
      const count = Math.min(PUBLISH_SLICE, PUBLISHES - done);
      for (const server of servers) {
        const expected = server.clients.received() + count * SUBSCRIBERS;
        await slice(server, 'deliveries', async () => {
          await publish(server.beacon.url, count, CONCURRENCY);
          await waitFor(() => server.clients.received() >= expected, 'all deliveries');
        });
      }
    }
    // The connect phase: CONNECT_WARMUP subscribed connections so that V8 has optimised the connect path (it takes
    // thousands, as for the publish path; measured from the first connect, a mode whose extra code was still cold read
    // up to 40 % dearer per connect), then CONNECTS more in slices. Each slice is closed once measured: every server of
    // the round holding its connections would take more descriptors than the load process may open.
    for (const server of servers) {
      for (let opened = 0; CONNECTS > 0 && opened < CONNECT_WARMUP; opened += CONNECT_SLICE) {
        await connectAndClose(server, Math.min(CONNECT_SLICE, CONNECT_WARMUP - opened));
      }
    }
    const kept: Array<{ close: () => void }> = [];
    try {
      for (let opened = 0; opened < CONNECTS; opened += CONNECT_SLICE) {
        const count = Math.min(CONNECT_SLICE, CONNECTS - opened);
        for (const server of servers) {
          await slice(server, 'connects', async () => {
            for (let n = 0; n < count; n += CONNECT_BATCH) kept.push(await subscribe(server.beacon.port, Math.min(CONNECT_BATCH, count - n)));
          });
          // Closed outside the slice: the server handles the closes while the other servers take their turns.
          for (const batch of kept.splice(0)) batch.close();
        }
      }
    } finally {
      for (const batch of kept) batch.close();
    }
    const delivered = PUBLISHES * SUBSCRIBERS;
    return servers.map((server) => ({
      cpuUsPerDelivery: (server.cpuMs * 1000) / delivered,
      deliveriesPerSecond: (delivered * 1000) / server.elapsedMs,
      cpuMs: server.cpuMs,
      cpuUsPerConnect: CONNECTS === 0 ? Number.NaN : (server.connectCpuMs * 1000) / CONNECTS,
    }));
  } finally {
    // Every server is stopped even if another's teardown fails (a scrape of a server that died rejects).
    await Promise.allSettled(
      servers.map(async (server) => {
        server.clients.close();
        try {
          await server.stopScraping();
        } finally {
          await server.beacon.stop('SIGTERM');
        }
      }),
    );
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
  // Rotate the order each run so no mode always takes its turn first.
  const order = ITEMS.map((_, i) => ITEMS[(i + run) % ITEMS.length] as Item);
  const round = await runRound(order, sink.url);
  order.forEach((item, i) => {
    const sample = round[i] as Sample;
    samples.get(item.name)?.push(sample);
    process.stderr.write(
      `run ${run + 1}/${RUNS} ${item.name}: ${sample.cpuUsPerDelivery.toFixed(3)} µs CPU/delivery, ` +
        `${Math.round(sample.deliveriesPerSecond)} deliveries/s, ${sample.cpuUsPerConnect.toFixed(0)} µs CPU/connect\n`,
    );
  });
}
await new Promise<void>((resolve) => sink.server.close(() => resolve()));

const offSamples = samples.get(ITEMS[0]?.name ?? '') ?? [];
/** Each run's ratio of `item` to off: the items of one run are measured in alternating slices, so it cancels drift. */
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
      'measured slices; start-up, warm-up and shutdown are excluded. Each run starts a fresh process per mode, all of them ' +
      `at once, and measures them slice by slice in turn: ${PUBLISH_SLICE} publishes (and their deliveries) of one mode, ` +
      `then of the next, until each has had ${PUBLISHES}; then ${CONNECT_SLICE} connects each in turn. The machine's CPU ` +
      'time for the same work varied by up to 2x from one minute to the next (a fixed loop: 442-855 ms), so modes ' +
      'measured whole, one after another, were compared across different stretches (so measured at `5fd8fa9`, metrics ' +
      'only on Node 24 read 6.0 µs per delivery in one run and 10.1 in the next).',
    `Connect phase, after the deliveries: ${CONNECT_WARMUP} subscribed connections to the same channel, not measured ` +
      `(V8 optimises the connect path only after thousands of connects: before this warm-up was added, a mode whose ` +
      `extra code was still cold read up to 40 % dearer), then ${CONNECTS} more in slices, ${CONNECT_BATCH} ` +
      'at a time (handshake, connection_established, subscribe, subscription_succeeded); server CPU over them ÷ their ' +
      'count. Each slice is closed after it is measured (the servers of a run together would hold more connections than ' +
      'the load process may open), so the connects run with few others open. connect × off is the median of per-run ' +
      'ratios, as for deliveries.',
    'Off: OTEL_SDK_DISABLED=true (no SDK, no /metrics). Metrics: the default bootstrap, no OTLP endpoint (so no tracer ' +
      'provider), /metrics scraped every second. Metrics + traces: OTLP/HTTP protobuf to a local sink that discards, ' +
      'sampled by `parentbased_traceidratio` at 0.05 or by `always_on` (every publish records its HTTP server, ' +
      'publish and deliver spans). Logs at info in every mode.',
    '× off and overhead % are medians of per-run ratios (each run measures every mode slice by slice, in a rotated ' +
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
