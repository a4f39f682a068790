/**
 * `npm run bench`: the fan-out benchmark. For each repetition, each scenario (bench/fanout/scenario-*.ts) and each target
 * (Beacon, bare ws, Socket.IO, in an order rotated per repetition) it starts the server as a child process, runs the load
 * process (bench/fanout/load.ts) against it, and stops both. Then it writes bench/results/fanout.json (medians, ratios
 * against ws and Socket.IO) and regenerates bench/RESULTS.md from every bench/results/*.json.
 *
 *   npm run bench -- [--runs 5] [--subscribers 500] [--messages 600] [--rate 40] [--rate-messages 80]
 *                    [--warmup-messages 100] [--window 50] [--payload-bytes 200] [--scenario client-event] [--target beacon] [--no-write]
 */
import { execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import cliProgress from 'cli-progress';
import type { LoadOptions, LoadResult } from './fanout/load.js';
import { FANOUT_COLUMNS, fanoutRows, type RunRecord } from './fanout/report.js';
import { SCENARIOS } from './fanout/scenarios.js';
import { median } from './fanout/stats.js';
import { ROOT, startServer, TARGET_LABELS, TARGETS, type ServerProcess, type TargetId } from './fanout/targets.js';
import { renderResults, RESULTS_DIR } from './render-results.js';
import { commandLine, machineStamp, writeResults, type BenchResults } from './results-format.js';

const HELP = `Usage: npm run bench -- [options]
  --runs N            repetitions of every (scenario, server) run (default 5)
  --subscribers N     subscribers on the one channel/room (default 500)
  --messages N        messages in the throughput phase (default 600)
  --rate N            messages per second in the latency phase (default 40)
  --rate-messages N   messages in the latency phase (default 80)
  --warmup-messages N messages sent before measuring, not measured (default 100)
  --window N          throughput phase: messages in flight (not yet received by all) (default 50)
  --payload-bytes N   size of each message's JSON payload (default 200)
  --scenario ID       only this scenario (repeatable): ${SCENARIOS.map((s) => s.id).join(', ')}
  --target ID         only this server (repeatable): ${TARGETS.join(', ')}
  --no-write          print the results, do not write bench/results/fanout.json or RESULTS.md
`;

/** A load run that has not finished in this long is killed (and recorded as failed). */
const LOAD_TIMEOUT_MS = 120_000;

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    subscribers: { type: 'string', default: '500' },
    messages: { type: 'string', default: '600' },
    rate: { type: 'string', default: '40' },
    'rate-messages': { type: 'string', default: '80' },
    'warmup-messages': { type: 'string', default: '100' },
    window: { type: 'string', default: '50' },
    'payload-bytes': { type: 'string', default: '200' },
    scenario: { type: 'string', multiple: true },
    target: { type: 'string', multiple: true },
    'no-write': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
  strict: true,
});
if (values.help) {
  process.stdout.write(HELP);
  process.exit(0);
}

function positive(name: string, raw: string, max: number): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new Error(`--${name} must be an integer in 1..${max}, got "${raw}"`);
  return n;
}
const runs = positive('runs', values.runs, 100);
const subscribers = positive('subscribers', values.subscribers, 20_000);
const messages = positive('messages', values.messages, 1_000_000);
const ratePerSecond = positive('rate', values.rate, 100_000);
const rateMessages = positive('rate-messages', values['rate-messages'], 1_000_000);
const warmupMessages = positive('warmup-messages', values['warmup-messages'], 1_000_000);
const window = positive('window', values.window, 100_000);
const payloadBytes = positive('payload-bytes', values['payload-bytes'], 64_000);
const scenarios = values.scenario === undefined ? SCENARIOS : SCENARIOS.filter((s) => values.scenario!.includes(s.id));
const targets = values.target === undefined ? TARGETS : TARGETS.filter((t) => values.target!.includes(t));
if (scenarios.length === 0 || targets.length === 0) throw new Error('no scenario or no target selected');

/** Runs the load process against a started server; resolves with its RESULT line (bounded by LOAD_TIMEOUT_MS). */
function runLoad(options: LoadOptions): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'bench/fanout/load.ts', JSON.stringify(options)], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-8192)));
    const timer = setTimeout(() => child.kill('SIGKILL'), LOAD_TIMEOUT_MS);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      const line = stdout.split('\n').find((l) => l.startsWith('RESULT '));
      if (code === 0 && line !== undefined) resolve(JSON.parse(line.slice('RESULT '.length)) as LoadResult);
      else reject(new Error(`load exited ${signal ?? code}: ${stderr.trim().split('\n').slice(-3).join(' | ')}`));
    });
  });
}

async function runOne(scenario: string, target: TargetId): Promise<LoadResult> {
  let server: ServerProcess | undefined;
  try {
    server = await startServer(target);
    return await runLoad({
      scenario,
      target,
      port: server.port,
      serverPid: server.pid,
      subscribers,
      rateMessages,
      ratePerSecond,
      messages,
      warmupMessages,
      window,
      payloadBytes,
      drainTimeoutMs: 10_000,
    });
  } finally {
    await server?.stop();
  }
}

// Beacon is measured compiled, as production runs it: (re)build dist/ when a source is newer.
execFileSync(process.execPath, ['scripts/ensure-built.mjs'], { cwd: ROOT, stdio: 'inherit' });

const records: RunRecord[] = [];
const bar = new cliProgress.SingleBar(
  { format: 'fan-out [{bar}] {value}/{total} runs | {eta_formatted} left | {current}', hideCursor: true, etaBuffer: 6 },
  cliProgress.Presets.shades_classic,
);
const started = Date.now();
bar.start(runs * scenarios.length * targets.length, 0, { current: '' });
try {
  for (let repetition = 0; repetition < runs; repetition++) {
    for (const scenario of scenarios) {
      // Rotated per repetition so no server always runs first (or right after the same neighbour).
      const order = targets.map((_, i) => targets[(i + repetition) % targets.length]!);
      for (const target of order) {
        bar.update({ current: `${scenario.id} ${TARGET_LABELS[target]} (run ${repetition + 1})` });
        try {
          records.push({ scenario: scenario.id, target, repetition, result: await runOne(scenario.id, target) });
        } catch (err) {
          records.push({ scenario: scenario.id, target, repetition, error: (err as Error).message });
        }
        bar.increment();
      }
    }
  }
} finally {
  bar.stop();
}

for (const r of records) if (r.error !== undefined) process.stderr.write(`failed: ${r.scenario} ${r.target} run ${r.repetition + 1}: ${r.error}\n`);
const rows = fanoutRows(records, [...scenarios], targets);
const connectMs = median(records.flatMap((r) => (r.result === undefined ? [] : [r.result.connectMs])));
const results: BenchResults = {
  scenario: 'fanout',
  title: 'Fan-out: Beacon vs bare ws vs Socket.IO',
  command: commandLine('bench'),
  ...machineStamp(['src', 'otel', 'bench/fanout']),
  runs,
  columns: FANOUT_COLUMNS,
  rows,
  notes: [
    `Workload: ${subscribers} subscribers on one channel/room and one publisher, all in one load process (bench/fanout/load.ts) on 127.0.0.1; payload ${payloadBytes} bytes of JSON carrying its publish time. Each server is a fresh child process per run; the three servers of a repetition run back to back in a rotated order.`,
    ...scenarios.map((s) => s.description),
    `Before measuring, ${warmupMessages} warm-up messages go through the closed loop (JIT, keep-alive sockets, lazy modules).`,
    `Latency columns: the fixed-rate phase, ${rateMessages} messages at ${ratePerSecond}/s (${ratePerSecond * subscribers} deliveries/s), publish → receipt by each subscriber, p50/p99 over every delivery of the run, median over runs.`,
    `Throughput columns: the closed-loop phase, ${messages} messages with at most ${window} not yet received by every subscriber; deliveries/s = deliveries ÷ (first publish → last delivery). Server CPU = utime+stime of the server process (all threads) from /proc/<pid>/stat over that phase ÷ deliveries (10 ms tick resolution).`,
    'Ratios are medians of per-repetition ratios; throughput ÷ X > 1 and CPU/delivery ÷ X < 1 favour the row. "load process CPU" near 1.0 means the single load process, not the server, bounded the throughput: the CPU column is then the fairer comparison.',
    'Beacon runs compiled (`node --enable-source-maps --import ./dist/otel/register.js dist/src/main.js`, as `npm start`) with OTEL_SDK_DISABLED=true and LOG_LEVEL=warn; the baselines run through tsx, which only transpiles at load time. Beacon and bare ws subscribers use the `ws` client; Socket.IO subscribers use socket.io-client (WebSocket transport).',
    `Median connect time of ${subscribers} subscribers + publisher: ${Math.round(connectMs)} ms. Whole run: ${Math.round((Date.now() - started) / 1000)} s.`,
  ],
};

process.stdout.write(`\n${results.title} — medians of ${runs} runs (${results.commit}, ${results.cpu} × ${results.cores})\n`);
console.table(Object.fromEntries(rows.map(({ name, ...metrics }) => [name, metrics])));
if (!values['no-write']) {
  writeResults(join(RESULTS_DIR, 'fanout.json'), results);
  const rendered = renderResults();
  process.stdout.write(`wrote bench/results/fanout.json; bench/RESULTS.md from ${rendered.join(', ')}\n`);
}
if (records.some((r) => r.error !== undefined)) process.exitCode = 1;
