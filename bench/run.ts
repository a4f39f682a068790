/**
 * `npm run bench`: the one command behind the fan-out tables of bench/RESULTS.md. Each repetition
 *   A. starts every target (bare `ws`, the limit probe, the syscall floor, the stack floor, Socket.IO, Beacon with
 *      telemetry off and on)
 *      at once, and runs against them, in slices the targets take in turn (in an order rotated per repetition), the
 *      fan-out load (bench/fanout/load.ts: subscribers on one channel, a fixed publish rate, a low rate, a closed loop),
 *      the bursts (bench/fanout/burst.ts) and the connection phase (bench/fanout/idle.ts: connects/s, RSS per idle
 *      subscribed connection, /metrics render time); one load process per target and load, driven step by step
 *      (fanout/child.ts);
 *   B. starts a fresh server per target, all at once again, for the many-small-channels load
 *      (bench/fanout/small-channels.ts), measured in slices the same way.
 * Beacon targets with metrics are scraped every second throughout, and export their spans to an OTLP sink of this process.
 * Writes bench/results/fanout.json and bench/results/fanout-small-channels.json and regenerates bench/RESULTS.md.
 *
 *   npm run bench -- [--runs 3] [--target beacon] [--scenario http-publish] [--no-small] [--no-write] [--help]
 */
import { execFileSync } from 'node:child_process';
import cliProgress from 'cli-progress';
import { join } from 'node:path';
import { nonNegative, parseCommand, positive } from './common/cli.js';
import { startSink } from './common/otlp-sink.js';
import type { BurstOptions, BurstResult } from './fanout/burst.js';
import { startStepped, type SteppedChild } from './fanout/child.js';
import type { IdleOptions, IdleResult, IdleStep } from './fanout/idle.js';
import type { LoadOptions, LoadResult, LoadStep } from './fanout/load.js';
import { FANOUT_COLUMNS, fanoutRows, fanoutSpread, firstStormNote, lossNote, SMALL_COLUMNS, smallRows, smallSpread, type RunRecord } from './fanout/report.js';
import { SCENARIOS } from './fanout/scenarios.js';
import type { SmallChannelsOptions, SmallChannelsResult } from './fanout/small-channels.js';
import { ROOT, startServer, TARGETS, type ServerProcess, type TargetId } from './fanout/targets.js';
import { startArgs } from '../test/helpers/start-command.js';
import { renderResults, RESULTS_DIR } from './render-results.js';
import { commandLine, machineStamp, writeResults, type BenchResults } from './results-format.js';

const HELP = `Usage: npm run bench -- [options]
  --runs N              repetitions (default 3); rows are medians, ratios medians of per-repetition ratios
  --subscribers N       subscribers on the one fan-out channel (default 1000)
  --rate N              fan-out publishes per second in the fixed-rate phase (default 50)
  --rate-messages N     publishes in the fixed-rate phase, where CPU/delivery is measured (default 400)
  --latency-rate N      publishes per second of the latency phase (default 5)
  --latency-messages N  publishes in the latency phase, where p50/p99 are measured (default 60)
  --messages N          publishes in the closed-loop phase (default 200)
  --warmup-requests N   publishes to a channel nobody subscribes to, before any fan-out (default 10000; 0: none): the
                        publish path at its steady state (V8 optimises after thousands of calls; bench/README.md)
  --warmup-messages N   fan-out publishes before measuring (default 100)
  --window N            closed loop: publishes not yet received by all (default 20)
  --payload-bytes N     JSON payload size (default 150)
  --idle-connections N  subscribed connections of the connection phase (default 10000)
  --channels N          many-small-channels: channels, one subscriber each (default 10000)
  --batches N           many-small-channels: /batch_events requests measured, in slices of 250 (default 3000)
  --burst-batches N     bursts: /batch_events of 10 events to the fan-out channel measured (default 60)
  --scenario ID         fan-out publisher (default http-publish): ${SCENARIOS.map((s) => s.id).join(', ')}
  --target ID           only this server (repeatable): ${TARGETS.join(', ')}
  --no-small            skip the many-small-channels load
  --no-write            print the results, do not write bench/results/*.json or RESULTS.md
`;

const values = parseCommand(HELP, {
  runs: { type: 'string', default: '3' },
  subscribers: { type: 'string', default: '1000' },
  rate: { type: 'string', default: '50' },
  'rate-messages': { type: 'string', default: '400' },
  'latency-rate': { type: 'string', default: '5' },
  'latency-messages': { type: 'string', default: '60' },
  messages: { type: 'string', default: '200' },
  'warmup-requests': { type: 'string', default: '10000' },
  'warmup-messages': { type: 'string', default: '100' },
  window: { type: 'string', default: '20' },
  'payload-bytes': { type: 'string', default: '150' },
  'idle-connections': { type: 'string', default: '10000' },
  channels: { type: 'string', default: '10000' },
  batches: { type: 'string', default: '3000' },
  'burst-batches': { type: 'string', default: '60' },
  scenario: { type: 'string', default: 'http-publish' },
  target: { type: 'string', multiple: true },
  'no-small': { type: 'boolean', default: false },
});

const runs = positive('runs', values.runs, 100);
const subscribers = positive('subscribers', values.subscribers, 20_000);
const ratePerSecond = positive('rate', values.rate, 100_000);
const rateMessages = positive('rate-messages', values['rate-messages'], 1_000_000);
const latencyPerSecond = positive('latency-rate', values['latency-rate'], 100_000);
const latencyMessages = positive('latency-messages', values['latency-messages'], 1_000_000);
const messages = positive('messages', values.messages, 1_000_000);
const warmupRequests = nonNegative('warmup-requests', values['warmup-requests'], 1_000_000);
const warmupMessages = positive('warmup-messages', values['warmup-messages'], 1_000_000);
const window = positive('window', values.window, 100_000);
const payloadBytes = positive('payload-bytes', values['payload-bytes'], 64_000);
const idleConnections = positive('idle-connections', values['idle-connections'], 50_000);
const channels = positive('channels', values.channels, 50_000);
const batches = positive('batches', values.batches, 1_000_000);
const burstBatches = positive('burst-batches', values['burst-batches'], 1_000_000);
const scenario = SCENARIOS.find((s) => s.id === values.scenario);
if (scenario === undefined) throw new Error(`unknown --scenario ${values.scenario}`);
const targets = values.target === undefined ? TARGETS : TARGETS.filter((t) => values.target!.includes(t));
if (targets.length === 0) throw new Error('no target selected');
const withSmall = !values['no-small'];
const BATCH_SIZE = 10;
/** Sequential /metrics scrapes of the connection phase (enough for the server CPU per scrape at 10 ms ticks). */
const SCRAPES = 21;
/** Many small channels: requests before the measured ones, so the batch path runs at its steady state (as the fan-out's warm-up). */
const SMALL_WARMUP_BATCHES = 2000;

/** A running target, scraped every second meanwhile when it serves /metrics (as Prometheus would). */
interface Scraped extends ServerProcess {
  /** Stops the scraper and the server. */
  close(): Promise<void>;
}

async function startScraped(target: TargetId, otlpEndpoint: string): Promise<Scraped> {
  const server = await startServer(target, { otlpEndpoint });
  const metricsUrl = server.metricsUrl;
  const scraper =
    metricsUrl === undefined
      ? undefined
      : setInterval(() => void fetch(metricsUrl, { signal: AbortSignal.timeout(5000) }).then((r) => r.arrayBuffer()).catch(() => undefined), 1000);
  return {
    ...server,
    close: async () => {
      if (scraper !== undefined) clearInterval(scraper);
      await server.stop();
    },
  };
}

/** Fan-out publishes per slice of each phase (1 s at the default rate, 2 s at the latency rate), and burst requests per slice. */
const SLICE: Record<LoadStep, number> = { rate: 50, latency: 10, throughput: 50 };
const BURST_SLICE = 10;
/** Many-small-channels requests per slice (2 500 deliveries). */
const SMALL_SLICE = 250;
/** Subscribed connects per slice of the connection phase's two storms (50 at a time). */
const CONNECT_SLICE = 500;

/**
 * One stepped load process per running target (`script`, set up one after another), then every step of `steps` measured
 * in slices of `size` units, the targets taking turns in `order`; each target's result goes to `keep`. A target whose
 * load process fails gets the error in its record and drops out; the others go on.
 */
async function sliced<S extends string, R>(
  what: string,
  script: string,
  order: readonly TargetId[],
  servers: ReadonlyMap<TargetId, Scraped>,
  records: ReadonlyMap<TargetId, RunRecord>,
  options: (server: Scraped) => object,
  steps: ReadonlyArray<{ step: S; total: number; size: number }>,
  keep: (record: RunRecord, result: R) => void,
): Promise<void> {
  const loads = new Map<TargetId, SteppedChild<S, R>>();
  const failed = (target: TargetId, err: unknown): void => {
    records.get(target)!.errors.push(`${what}: ${(err as Error).message}`);
    loads.get(target)?.kill();
    loads.delete(target);
  };
  try {
    for (const target of order) {
      const server = servers.get(target);
      if (server === undefined) continue;
      try {
        loads.set(target, await startStepped<S, R>(script, options(server)));
      } catch (err) {
        failed(target, err);
      }
    }
    for (const { step, total, size } of steps) {
      for (let done = 0; done < total; done += size) {
        for (const target of order) {
          await loads
            .get(target)
            ?.step(step, Math.min(size, total - done))
            .catch((err: unknown) => failed(target, err));
        }
      }
    }
    for (const target of order) {
      const load = loads.get(target);
      if (load === undefined) continue;
      try {
        keep(records.get(target)!, await load.finish());
      } catch (err) {
        failed(target, err);
      }
    }
  } finally {
    for (const load of loads.values()) load.kill();
  }
}

/**
 * Starts every target's server into `servers`; a target that fails to start gets the error in its record, under `phase`,
 * and is left out of the phase.
 */
async function startEach(
  order: readonly TargetId[],
  otlpEndpoint: string,
  servers: Map<TargetId, Scraped>,
  records: Map<TargetId, RunRecord>,
  phase: string,
): Promise<void> {
  for (const target of order) {
    try {
      servers.set(target, await startScraped(target, otlpEndpoint));
    } catch (err) {
      records.get(target)!.errors.push(`${phase}: ${(err as Error).message}`);
    }
  }
}

/**
 * One repetition. Every target's server runs at once, and the fan-out phases, the bursts and the connection storms are
 * measured in slices the targets take in turn: this machine's speed for the same work wandered by up to 2x from one
 * minute to the next, so targets measured whole, one after another, were compared across different stretches. Then the
 * many-small-channels load the same way, on a fresh server per target.
 */
async function runRound(order: readonly TargetId[], repetition: number, otlpEndpoint: string, progress: (stage: string) => void): Promise<RunRecord[]> {
  const records = new Map<TargetId, RunRecord>(order.map((target) => [target, { target, repetition, errors: [] }]));
  const servers = new Map<TargetId, Scraped>();
  try {
    await startEach(order, otlpEndpoint, servers, records, 'fan-out');
    progress('fan-out');
    await sliced<LoadStep, LoadResult>(
      'fan-out',
      'bench/fanout/load.ts',
      order,
      servers,
      records,
      (server): LoadOptions => ({
        scenario: scenario!.id,
        target: server.target,
        port: server.port,
        serverPid: server.pid,
        subscribers,
        rateMessages,
        ratePerSecond,
        latencyMessages,
        latencyPerSecond,
        messages,
        warmupMessages,
        warmupRequests,
        window,
        payloadBytes,
        drainTimeoutMs: 10_000,
      }),
      [
        { step: 'rate', total: rateMessages, size: SLICE.rate },
        { step: 'latency', total: latencyMessages, size: SLICE.latency },
        { step: 'throughput', total: messages, size: SLICE.throughput },
      ],
      (record, result) => (record.fanout = result),
    );
    progress('bursts');
    await sliced<'burst', BurstResult>(
      'burst',
      'bench/fanout/burst.ts',
      order,
      servers,
      records,
      (server): BurstOptions => ({
        target: server.target,
        port: server.port,
        serverPid: server.pid,
        subscribers,
        batches: burstBatches,
        warmupBatches: 10,
        batchSize: BATCH_SIZE,
        inFlight: 2,
        payloadBytes,
        drainTimeoutMs: 10_000,
      }),
      [{ step: 'burst', total: burstBatches, size: BURST_SLICE }],
      (record, result) => (record.burst = result),
    );
    progress('connections');
    await sliced<IdleStep, IdleResult>(
      'connections',
      'bench/fanout/idle.ts',
      order,
      servers,
      records,
      (server): IdleOptions => ({
        target: server.target,
        port: server.port,
        serverPid: server.pid,
        connections: idleConnections,
        warmup: 200,
        concurrency: 50,
        settleMs: 1500,
        metricsUrl: server.metricsUrl,
        scrapes: SCRAPES,
      }),
      [
        { step: 'first', total: idleConnections, size: CONNECT_SLICE },
        { step: 'settle', total: 1, size: 1 },
        { step: 'second', total: idleConnections, size: CONNECT_SLICE },
      ],
      (record, result) => (record.idle = result),
    );
  } finally {
    await Promise.allSettled([...servers.values()].map((server) => server.close()));
  }
  if (withSmall) {
    progress('small channels');
    // A fresh server per target (the fan-out's heap and connections gone), all at once again, measured in slices.
    const fresh = new Map<TargetId, Scraped>();
    try {
      await startEach(order, otlpEndpoint, fresh, records, 'small channels');
      await sliced<'batches', SmallChannelsResult>(
        'small channels',
        'bench/fanout/small-channels.ts',
        order,
        fresh,
        records,
        (server): SmallChannelsOptions => ({
          target: server.target,
          port: server.port,
          serverPid: server.pid,
          channels,
          batches,
          warmupBatches: SMALL_WARMUP_BATCHES,
          batchSize: BATCH_SIZE,
          inFlight: 4,
          concurrency: 50,
          payloadBytes,
          drainTimeoutMs: 10_000,
        }),
        [{ step: 'batches', total: batches, size: SMALL_SLICE }],
        (record, result) => (record.small = result),
      );
    } finally {
      await Promise.allSettled([...fresh.values()].map((server) => server.close()));
    }
  }
  return order.map((target) => records.get(target)!);
}

// Beacon is measured compiled, as production runs it: (re)build dist/ when a source is newer.
execFileSync(process.execPath, ['scripts/ensure-built.mjs'], { cwd: ROOT, stdio: 'inherit' });

const sink = await startSink();
const started = Date.now();
const stages = withSmall ? 4 : 3;
const bar = new cliProgress.SingleBar(
  { format: 'bench [{bar}] {value}/{total} | {eta_formatted} left | {current}', hideCursor: true, etaBuffer: stages * 2 },
  cliProgress.Presets.shades_classic,
);
const records: RunRecord[] = [];
bar.start(runs * stages, 0, { current: '' });
try {
  for (let repetition = 0; repetition < runs; repetition++) {
    // Rotated per repetition: no target always takes the first turn of a slice (or follows the same neighbour).
    const order = targets.map((_, i) => targets[(i + repetition) % targets.length]!);
    let stage = 0;
    const progress = (current: string): void => {
      if (stage++ > 0) bar.increment();
      bar.update({ current: `${current} (run ${repetition + 1})` });
    };
    records.push(...(await runRound(order, repetition, sink.url, progress)));
    bar.increment(stages - stage + 1);
  }
} finally {
  bar.stop();
  sink.server.close();
}

for (const r of records) for (const e of r.errors) process.stderr.write(`failed: ${r.target} run ${r.repetition + 1}: ${e}\n`);
process.stderr.write(`${lossNote(records)}\n`);
const minutes = Math.round((Date.now() - started) / 60_000);
const stamp = machineStamp(['src', 'otel', 'bench/common', 'bench/fanout', 'bench/run.ts']);
const common = [
  `Every server is a fresh child process on 127.0.0.1 per repetition. Fan-out, bursts and connections: every target's server runs at once and each phase is measured in slices the targets take in turn, in an order rotated per repetition (fan-out ${SLICE.rate} publishes at the fixed rate, ${SLICE.latency} at the low rate, ${SLICE.throughput} in the closed loop; bursts ${BURST_SLICE} requests; connections ${CONNECT_SLICE} connects), each target's CPU and time summed over its slices — this machine's speed for the same work wanders by up to 2x from one minute to the next, and slices taken in turn share every slow stretch alike (until commit 0762987 each target ran whole, one after another, and per-repetition ratios spread 0.7–1.2). Many small channels: the same way, on a fresh server per target, ${SMALL_SLICE} requests per slice (at 3ed7c00 they still ran target after target, 1 500 requests, ~1 s each, and Beacon's per-repetition ratios spread 1.16–1.40 × bare ws). The load processes (Node, \`ws\` / socket.io-client; one per target and load, the idle ones waiting for their turn) share the 2-core machine with the servers${' '}— and with other work: read the ratios, each a median of per-repetition ratios. ${runs} repetitions, whole run ${minutes} min.`,
  'CPU = utime + stime of the server process (all threads: GC, pino, exporters) from /proc/<pid>/stat over the measured phase ÷ deliveries (10 ms tick resolution).',
  `Beacon runs compiled (\`node ${startArgs(ROOT).join(' ')}\`, as \`npm start\`) with 10 apps (APPS_FILE). Telemetry off: OTEL_SDK_DISABLED=true, LOG_LEVEL=warn. Telemetry on: the Prometheus exporter scraped every second, spans exported over OTLP/HTTP (protobuf, BatchSpanProcessor) to a sink of the runner that discards, sampled at 5 % (parentbased_traceidratio) or always_on, LOG_LEVEL=info to stdout (a pipe the runner drains). The baselines run through tsx (transpiled at load time).`,
];
const fanout: BenchResults = {
  scenario: 'fanout',
  title: 'Fan-out and connections: Beacon vs bare ws, the limit probe, the syscall floor, the stack floor and Socket.IO',
  command: commandLine('bench'),
  ...stamp,
  runs,
  columns: FANOUT_COLUMNS,
  rows: fanoutRows(records, targets),
  notes: [
    `Fan-out: ${subscribers} subscribers on one channel (Beacon: public \`bench\`), one publisher: ${scenario.description} Payload ${payloadBytes} bytes of JSON carrying its publish time.`,
    `Burst CPU µs / delivery: the same ${subscribers} subscribers on one channel get batches of ${BATCH_SIZE} events to that channel per HTTP request (Beacon \`POST /apps/app-id/batch_events\`; baselines \`POST /publish\` with a batch), 2 requests in flight, ${burstBatches} requests measured after 10 warm-up ones: ${BATCH_SIZE} frames per subscriber per event-loop turn, which Beacon coalesces into one socket write.`,
    `CPU µs / delivery: the fixed-rate phase, ${rateMessages} publishes at ${ratePerSecond}/s (${ratePerSecond * subscribers} deliveries/s) after a warm-up: ${warmupRequests} publishes to a channel nobody subscribes to (4 in flight), so the publish path runs at its steady state (V8 optimises a function only after thousands of calls; bench/README.md, "Warm-up"), then ${warmupMessages} fan-out publishes. At that rate the load process (one Node process receiving every delivery) and the servers queue, so latency is measured apart: the low-rate phase right after, ${latencyMessages} publishes at ${latencyPerSecond}/s (${latencyPerSecond * subscribers} deliveries/s), publish → receipt by each subscriber (same process, same clock), p50/p99 over every delivery of the phase; p99 × bare ws is the median of per-repetition ratios. deliveries/s (closed loop): ${messages} publishes with at most ${window} not yet received by all.`,
    `Connections: after 200 warm-up connections (opened and closed), ${idleConnections} subscribed connections opened 50 at a time (Beacon: spread over its 10 apps, one public channel per app; handshake, connection_established, subscribe, subscription_succeeded; bare ws and the probe take the same steps — a greeting frame, a subscribe frame from the client, an acknowledgement — and Socket.IO its handshake and an acknowledged join; until commit 698738c the bare ws baseline joined its room from the URL and acknowledged at once, one round trip fewer than Beacon). RSS KiB / idle subscribed conn is the growth of the server's VmRSS (1.5 s after the last one) ÷ their count. /metrics ms: median of ${SCRAPES} sequential scrapes (time to the last byte) with those ${idleConnections} connections open; /metrics server CPU ms: the server's CPU over those ${SCRAPES} scrapes ÷ ${SCRAPES}. Then they are closed (the load process drops them, no close frame), the server is left to go idle (under 2 % of a core over 250 ms) — server CPU µs / close is its CPU from the drop until then ÷ their count, one target at a time (not in slices) — and ${idleConnections} are opened again the same way: connects/s is their count ÷ the time to open them all (client and server share the machine), server CPU µs / connect the server's CPU over that time ÷ their count — the connect path at its steady state, as the fan-out's warm-up gives the publish path (V8 optimises the connect path only after thousands of connects; bench/README.md, "Warm-up").`,
    firstStormNote(records, targets),
    fanoutSpread(records, targets),
    lossNote(records),
    ...common,
  ],
};
const small: BenchResults = {
  scenario: 'fanout-small-channels',
  title: 'Many small channels: one subscriber per channel, batch publishes',
  command: commandLine('bench'),
  ...stamp,
  runs,
  columns: SMALL_COLUMNS,
  rows: smallRows(records, targets),
  notes: [
    `${channels} connections, each the only subscriber of its own channel (Beacon \`private-user-<i>\`, authorised; baselines a room per connection); publishes of ${BATCH_SIZE} events to ${BATCH_SIZE} distinct channels per HTTP request (Beacon: \`POST /apps/app-id/batch_events\` signed by the \`pusher\` SDK; baselines: an unsigned \`POST /publish\` with a batch), 4 requests in flight, ${batches} requests measured after ${SMALL_WARMUP_BATCHES} warm-up requests (100 until the request-path warm-up of the fan-out was added). Every event has one recipient, so per-publish costs weigh on every delivery.`,
    smallSpread(records, targets),
    ...common,
  ],
};

process.stdout.write(`\n${fanout.title} — medians of ${runs} runs (${fanout.commit})\n`);
console.table(Object.fromEntries(fanout.rows.map(({ name, ...m }) => [name, m])));
if (withSmall) {
  process.stdout.write(`\n${small.title}\n`);
  console.table(Object.fromEntries(small.rows.map(({ name, ...m }) => [name, m])));
}
if (!values['no-write']) {
  writeResults(join(RESULTS_DIR, 'fanout.json'), fanout);
  if (withSmall) writeResults(join(RESULTS_DIR, 'fanout-small-channels.json'), small);
  const rendered = renderResults();
  process.stdout.write(`wrote bench/results; bench/RESULTS.md from ${rendered.join(', ')}\n`);
}
if (records.some((r) => r.errors.length > 0)) process.exitCode = 1;

