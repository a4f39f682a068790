/**
 * `npm run bench:cluster`: Beacon as a cluster on Redis against one node, measured in the same run. For each repetition and
 * each topology (bench/cluster/topology.ts: one node with the local adapter, one node on Redis, three nodes on one Redis,
 * three nodes on a 3-master Redis Cluster — in an order rotated per repetition) it starts the topology fresh and runs
 *   A. the fan-out of the single-node benchmark (fanout-load.ts: subscribers on one channel spread over the nodes, HTTP
 *      publishes round robin over the nodes, fixed rate then closed loop; not on the Redis Cluster, where one channel is
 *      one shard);
 *   B. then sparse channels (sparse-load.ts: one subscriber per `private-user-*` channel spread over the nodes,
 *      `/batch_events` publishes), reading each node's `websocket_adapter_messages_total{direction="received"}`), and stops it.
 * CPU per delivery is the nodes' summed CPU; Redis's CPU is reported separately. Writes bench/results/cluster-fanout.json
 * and bench/results/cluster-sparse.json and regenerates bench/RESULTS.md (every results file, so other sections stay).
 *
 *   npm run bench:cluster -- [--runs 3] [--topology three-redis] [--no-fanout] [--no-sparse] [--no-write] [--help]
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseCommand, positive } from '../common/cli.js';
import { runRotated } from '../common/rotated-runs.js';
import { loadErrorLine, runChild } from '../fanout/child.js';
import { ROOT } from '../fanout/targets.js';
import { startArgs } from '../../test/helpers/start-command.js';
import { renderResults, RESULTS_DIR } from '../render-results.js';
import { commandLine, machineStamp, writeResults, type BenchResults } from '../results-format.js';
import type { ClusterFanoutOptions, ClusterFanoutResult } from './fanout-load.js';
import { commandMix, fanoutRows, FANOUT_COLUMNS, sparseRows, SPARSE_COLUMNS, type ClusterRunRecord } from './report.js';
import type { SparseOptions, SparseResult } from './sparse-load.js';
import { startTopology, TOPOLOGY_LABELS, type Topology, type TopologyId } from './topology.js';

const TOPOLOGIES: readonly TopologyId[] = ['single-local', 'single-redis', 'three-redis', 'three-redis-cluster'];
/** The fan-out on one channel lands on one Redis Cluster shard: it would measure one Redis again, so it is not run there. */
const FANOUT_TOPOLOGIES: readonly TopologyId[] = ['single-local', 'single-redis', 'three-redis'];

const HELP = `Usage: npm run bench:cluster -- [options]
  --runs N              repetitions (default 3); rows are medians, ratios medians of per-repetition ratios
  --subscribers N       fan-out: subscribers on the one channel, spread over the nodes (default 1000)
  --rate N              fan-out: publishes per second in the fixed-rate phase (default 20)
  --rate-messages N     fan-out: publishes in the fixed-rate phase, where CPU/delivery is measured (default 200)
  --messages N          fan-out: publishes in the closed-loop phase (default 200)
  --window N            fan-out closed loop: publishes not yet received by all (default 20)
  --channels N          sparse: channels, one subscriber each, spread over the nodes (default 3000)
  --batches N           sparse: /batch_events requests of 10 events measured (default 600)
  --payload-bytes N     JSON payload size (default 150)
  --topology ID         only this topology (repeatable): ${TOPOLOGIES.join(', ')}
  --no-fanout           skip the fan-out scenario
  --no-sparse           skip the sparse scenario
  --no-write            print the results, do not write bench/results/*.json or RESULTS.md
`;

const BATCH_SIZE = 10;

const values = parseCommand(HELP, {
  runs: { type: 'string', default: '3' },
  subscribers: { type: 'string', default: '1000' },
  rate: { type: 'string', default: '20' },
  'rate-messages': { type: 'string', default: '200' },
  messages: { type: 'string', default: '200' },
  window: { type: 'string', default: '20' },
  channels: { type: 'string', default: '3000' },
  batches: { type: 'string', default: '600' },
  'payload-bytes': { type: 'string', default: '150' },
  topology: { type: 'string', multiple: true },
  'no-fanout': { type: 'boolean', default: false },
  'no-sparse': { type: 'boolean', default: false },
});

const runs = positive('runs', values.runs, 100);
const subscribers = positive('subscribers', values.subscribers, 20_000);
const ratePerSecond = positive('rate', values.rate, 100_000);
const rateMessages = positive('rate-messages', values['rate-messages'], 1_000_000);
const messages = positive('messages', values.messages, 1_000_000);
const window = positive('window', values.window, 100_000);
const channels = positive('channels', values.channels, 30_000);
const batches = positive('batches', values.batches, 1_000_000);
const payloadBytes = positive('payload-bytes', values['payload-bytes'], 64_000);
const selected = values.topology === undefined ? TOPOLOGIES : TOPOLOGIES.filter((t) => values.topology!.includes(t));
if (selected.length === 0) throw new Error(`no topology selected (known: ${TOPOLOGIES.join(', ')})`);
const withFanout = !values['no-fanout'];
const withSparse = !values['no-sparse'];

/** Runs `work` against a fresh topology `id`, stopped afterwards whatever happens. */
let current: Topology | undefined;
// Interrupted (Ctrl-C, kill): stop the running topology's children rather than leave them behind.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void (current?.stop() ?? Promise.resolve()).finally(() => process.exit(130));
  });
}

async function withTopology<T>(id: TopologyId, work: (t: Topology) => Promise<T>): Promise<T> {
  let t0 = performance.now();
  const topology = await startTopology(id);
  current = topology;
  if (process.env.BENCH_VERBOSE) process.stderr.write(`\n${id}: started in ${Math.round(performance.now() - t0)} ms\n`);
  try {
    t0 = performance.now();
    return await work(topology);
  } finally {
    if (process.env.BENCH_VERBOSE) process.stderr.write(`\n${id}: ran in ${Math.round(performance.now() - t0)} ms\n`);
    current = undefined;
    await topology.stop();
  }
}

/** What every load process needs to reach and measure a topology. */
function targetsOf(t: Topology): Pick<ClusterFanoutOptions, 'ports' | 'nodePids' | 'redisPorts' | 'metricsUrls'> {
  return { ports: t.nodes.map((n) => n.port), nodePids: t.nodes.map((n) => n.pid), redisPorts: t.redisPorts, metricsUrls: t.nodes.map((n) => n.metricsUrl) };
}

async function runTopology(id: TopologyId, repetition: number): Promise<ClusterRunRecord> {
  const record: ClusterRunRecord = { topology: id, repetition, errors: [] };
  try {
    // One topology per repetition for both scenarios (each scenario's clients are gone before the next starts): starting
    // three nodes and a Redis Cluster takes seconds on a busy machine.
    await withTopology(id, async (t) => {
      if (withFanout && FANOUT_TOPOLOGIES.includes(id)) {
        const options: ClusterFanoutOptions = {
          ...targetsOf(t),
          subscribers,
          ratePerSecond,
          rateMessages,
          messages,
          warmupMessages: 50,
          window,
          payloadBytes,
          drainTimeoutMs: 10_000,
        };
        try {
          record.fanout = await runChild<ClusterFanoutResult>('bench/cluster/fanout-load.ts', options, loadErrorLine);
        } catch (err) {
          record.errors.push(`fan-out: ${(err as Error).message}`);
        }
      }
      if (withSparse) {
        const options: SparseOptions = {
          ...targetsOf(t),
          channels,
          batches,
          warmupBatches: 50,
          batchSize: BATCH_SIZE,
          inFlight: 4,
          concurrency: 50,
          payloadBytes,
          drainTimeoutMs: 10_000,
        };
        try {
          record.sparse = await runChild<SparseResult>('bench/cluster/sparse-load.ts', options, loadErrorLine);
        } catch (err) {
          record.errors.push(`sparse: ${(err as Error).message}`);
        }
      }
    });
  } catch (err) {
    // The first line, and the node's adapter lines if it wrote any (why a node did not become ready).
    const lines = (err as Error).message.split('\n');
    record.errors.push(`topology: ${[lines[0], ...lines.filter((l) => l.includes('"adapter_')).map((l) => l.slice(0, 300))].join(' | ')}`);
  }
  return record;
}

// Beacon is measured compiled, as production runs it: (re)build dist/ when a source is newer.
execFileSync(process.execPath, ['scripts/ensure-built.mjs'], { cwd: ROOT, stdio: 'inherit' });

const started = Date.now();
const records = await runRotated({ name: 'bench:cluster', runs, items: selected, etaBuffer: 4, run: runTopology });

for (const r of records) for (const e of r.errors) process.stderr.write(`failed: ${r.topology} run ${r.repetition + 1}: ${e}\n`);
const minutes = Math.round((Date.now() - started) / 60_000);
const stamp = machineStamp(['src', 'otel', 'bench/common', 'bench/fanout', 'bench/cluster']);
const common = [
  `Every topology is started fresh (redis-server and/or Beacon child processes on 127.0.0.1) for each repetition and runs the fan-out, then the sparse scenario; the topologies of a repetition run back to back in an order rotated per repetition. Everything — the nodes, Redis and the load process (Node, \`ws\` clients, the \`pusher\` SDK) — shares one 2-core machine, with other work running on it too: read the ratios (each a median of per-repetition ratios against ${TOPOLOGY_LABELS['single-local']} measured in the same repetition). ${runs} repetitions, whole run ${minutes} min.`,
  `Beacon runs compiled (\`node ${startArgs(ROOT).join(' ')}\`, as \`npm start\`) with the default app, metrics on (/metrics scraped every second, as Prometheus would), no traces, LOG_LEVEL=info to a pipe the runner drains. Redis: \`redis-server\` 7 with no persistence, started by the test helpers (test/helpers/redis.ts; the Redis Cluster by test/helpers/redis-cluster.ts: 3 masters, no replicas).`,
  'Nodes CPU = utime + stime of every Beacon process (all threads) from /proc/<pid>/stat over the measured phase, summed over the nodes, ÷ deliveries (10 ms tick resolution per node). Redis CPU = used_cpu_user + used_cpu_sys of `INFO cpu` (getrusage, all threads) over the same phase, summed over the Redis processes. Cross-node messages = the growth of `websocket_adapter_messages_total{direction="received"}` of each node over the phase (what Redis pushed to it).',
    '(net) = CPU over the phase minus the background (the rate measured over 1.5 s of quiet just before the phase, clients connected, × the phase’s length) ÷ publications or deliveries: the marginal cost, what a saturated node or Redis pays. "idle CPU ms/s" is that background: for a node its timers, heartbeats, GC and the /metrics scrapes; for Redis its cron, the cluster bus and the nodes’ heartbeats. Redis commands / publication counts every command Redis ran over the phase (`INFO commandstats`) ÷ publications.',
];
/** Per topology with Redis, the commands Redis ran per publication in the first repetition that measured it. */
function mixNotes(scenario: 'fanout' | 'sparse'): string[] {
  const notes: string[] = [];
  for (const id of selected) {
    if (id === 'single-local') continue;
    const r = records.find((x) => x.topology === id && x[scenario] !== undefined);
    const phase = scenario === 'fanout' ? r?.fanout?.rate : r?.sparse;
    if (r === undefined || phase === undefined) continue;
    notes.push(`Redis commands per publication, ${TOPOLOGY_LABELS[id]} (run ${r.repetition + 1}): ${commandMix(phase.cost, phase.published)}.`);
  }
  return notes;
}

/** Every failed phase, for the notes: a row's "runs ok" below n/n says which and why here. */
const failures = records.flatMap((r) => r.errors.map((e) => `Failed: ${TOPOLOGY_LABELS[r.topology]}, run ${r.repetition + 1}: ${e.slice(0, 600)}`));

const fanout: BenchResults = {
  scenario: 'cluster-fanout',
  title: 'Cluster fan-out: 3 nodes on one Redis vs one node',
  command: commandLine('bench:cluster'),
  ...stamp,
  runs,
  columns: FANOUT_COLUMNS,
  rows: fanoutRows(records, FANOUT_TOPOLOGIES.filter((t) => selected.includes(t))),
  notes: [
    `Fan-out as in the single-node benchmark: ${subscribers} subscribers on the public channel \`bench\`, spread round robin over the nodes; every message one \`POST /apps/app-id/events\` signed by the \`pusher\` SDK, sent to the nodes round robin (as a load balancer would). Payload ${payloadBytes} bytes of JSON carrying its publish time.`,
    `CPU / delivery, cross-node messages and latency: the fixed-rate phase, ${rateMessages} publishes at ${ratePerSecond}/s (${ratePerSecond * subscribers} deliveries/s) after 50 warm-up publishes (the single-node benchmark runs 50/s: here three nodes, Redis and the load process share the two cores, and the rate stays below what they deliver together, so CPU per delivery and latency are measured unsaturated); latency is publish → receipt by each subscriber (same clock), p50/p99 over every delivery. deliveries/s: ${messages} publishes in a closed loop with at most ${window} not yet received by all. On one machine the closed loop measures the machine, not the cluster: 3 nodes add no cores here.`,
    'With Redis every publication goes through it even on one node (the publishing node delivers from its own subscriber connection, one path for all): `1 node on one Redis` isolates what Redis costs from what a second and third node cost. Cross-node messages / publication: 1 per node that has subscribers of the channel.',
    ...mixNotes('fanout'),
    ...failures.filter((f) => !f.includes(': sparse: ')),
    ...common,
  ],
};
const sparse: BenchResults = {
  scenario: 'cluster-sparse',
  title: 'Cluster sparse channels: interest routing, one subscriber per channel',
  command: commandLine('bench:cluster'),
  ...stamp,
  runs,
  columns: SPARSE_COLUMNS,
  rows: sparseRows(records, selected),
  notes: [
    `${channels} channels \`private-user-<i>\`, one subscriber each (authorised as an auth endpoint would), channel i on node i mod nodes; ${batches} \`POST /apps/app-id/batch_events\` of ${BATCH_SIZE} events to distinct channels (signed by the \`pusher\` SDK, 4 requests in flight, sent to the nodes round robin) measured after 50 warm-up ones. Every event has one recipient on one node. Subscribed connects: the ${channels} connections opened 50 at a time (handshake, connection_established, signed subscribe, subscription_succeeded — on Redis the join script and, for a node's first subscriber of a channel, a SUBSCRIBE), and what they cost the nodes and Redis.`,
    'received node k = publications Redis pushed to node k in the measured phase. With interest routing each node receives only its own channels’ publications, ≈ published ÷ 3, and all nodes together ≈ published (× 1.0); with one Redis channel per app every node would receive all of them (× 3.0). On the Redis Cluster the channels spread over the 3 shards by hash slot; "busiest Redis share" is the busiest process’s share of the Redis CPU (1.0 with one Redis, ⅓ when the shards share evenly).',
    ...mixNotes('sparse'),
    ...failures.filter((f) => !f.includes(': fan-out: ')),
    ...common,
  ],
};
if (values['no-write']) {
  process.stdout.write(`${JSON.stringify([fanout, sparse], null, 2)}\n`);
} else {
  if (withFanout && fanout.rows.length > 0) writeResults(join(RESULTS_DIR, 'cluster-fanout.json'), fanout);
  if (withSparse) writeResults(join(RESULTS_DIR, 'cluster-sparse.json'), sparse);
  const files = renderResults();
  process.stdout.write(`bench/RESULTS.md: ${files.length} section(s)\n`);
}
for (const table of [fanout, sparse]) {
  process.stdout.write(`\n${table.title}\n`);
  for (const row of table.rows) process.stdout.write(`${JSON.stringify(row)}\n`);
}
