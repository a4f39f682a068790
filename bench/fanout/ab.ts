/**
 * `npm run bench:ab -- --root . --root /tmp/prev`: the fixed-rate fan-out of `npm run bench` (its load process and phase),
 * with Beacon run from each checkout given and the limit probe beside them, every server measured in slices of publishes
 * taken in turn, in an order reversed every other slice. Prints each server's CPU per delivery and its ratio to the first
 * checkout, paired slice by slice: an A/B of two commits on the same machine, for changes smaller than the spread of
 * `npm run bench`'s whole-run ratios. Prints only; never writes bench/results.
 *
 * `--phase connects` does the same for `npm run bench`'s connection phase (its load process, bench/fanout/idle.ts): a first
 * storm of subscribed connects, not measured (the connect path at its steady state), then the second storm in slices
 * taken in turn, server CPU per connect; bare `ws` stands beside the Beacons instead of the probe.
 *
 * `--variant` runs the target in several environments from every checkout (what info logs add: `--variant warn:LOG_LEVEL=warn
 * --variant info:LOG_LEVEL=info`).
 */
import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { startSink } from '../common/otlp-sink.js';
import { checkoutLabel } from '../common/checkout.js';
import { positive } from '../common/cli.js';
import { startStepped, type Stepped } from './child.js';
import type { IdleOptions, IdleResult, IdleStep } from './idle.js';
import type { LoadOptions, LoadResult, LoadStep } from './load.js';
import { cpuMs } from './proc-cpu.js';
import { startServer, type ServerProcess, type TargetId } from './targets.js';

const HELP = `Usage: npm run bench:ab -- --root DIR [--root DIR ...] [options]
  --root DIR            a checkout to run Beacon from (repeatable; default this one). Ratios are to the first one. For
                        the commit before: git worktree add /tmp/prev HEAD~1 && (cd /tmp/prev && npm ci)
                        (its own node_modules: a symlink to this one's would be emptied by the npm ci the build
                        check runs there, as the worktree's lock file is newer)
  --target ID           which Beacon (default beacon): beacon (telemetry off), beacon-sampled, beacon-otel
  --phase NAME          fanout (default): CPU per delivery; connects: CPU per subscribed connect
  --no-probe            leave out the baseline: the limit probe (bare ws, frames written raw), or bare ws for connects
  --node-arg ARG        an option for node running each Beacon (repeatable), e.g. --node-arg=--cpu-prof
                        --node-arg=--cpu-prof-dir=/tmp/prof: a CPU profile of each, written when it stops
  --variant SPEC        a variant of the Beacon target, run from every checkout: NAME or NAME:KEY=VALUE,KEY=VALUE
                        (variables set over the target's own, e.g. info:LOG_LEVEL=info or warn:LOG_LEVEL=warn);
                        repeatable, ratios are to the first checkout's first variant (default: the target as it is)
fanout:
  --slices N            measured slices per server (default 24)
  --slice-publishes N   publishes per slice, at --rate (default 50)
  --subscribers N       subscribers on the one fan-out channel (default 1000)
  --rate N              publishes per second (default 50)
connects:
  --connections N       subscribed connections per storm (default 10000; the second storm is measured)
  --slice-connects N    connects per slice, 50 at a time (default 500)
`;
const { values: args } = parseArgs({
  options: {
    root: { type: 'string', multiple: true, default: ['.'] },
    target: { type: 'string', default: 'beacon' },
    slices: { type: 'string', default: '24' },
    'slice-publishes': { type: 'string', default: '50' },
    subscribers: { type: 'string', default: '1000' },
    rate: { type: 'string', default: '50' },
    'no-probe': { type: 'boolean', default: false },
    variant: { type: 'string', multiple: true, default: [] },
    'node-arg': { type: 'string', multiple: true, default: [] },
    phase: { type: 'string', default: 'fanout' },
    connections: { type: 'string', default: '10000' },
    'slice-connects': { type: 'string', default: '500' },
    help: { type: 'boolean', short: 'h', default: false },
  },
  strict: true,
});
if (args.help) {
  process.stdout.write(HELP);
  process.exit(0);
}
const BEACONS = ['beacon', 'beacon-sampled', 'beacon-otel'];
if (!BEACONS.includes(args.target)) throw new Error(`--target must be one of ${BEACONS.join(', ')}, got "${args.target}"`);
const SLICES = positive('slices', args.slices, 1000);
const PER_SLICE = positive('slice-publishes', args['slice-publishes'], 10_000);
const SUBSCRIBERS = positive('subscribers', args.subscribers, 20_000);
const RATE = positive('rate', args.rate, 10_000);
if (args.phase !== 'fanout' && args.phase !== 'connects') throw new Error(`--phase must be fanout or connects, got "${args.phase}"`);
const CONNECTS = args.phase === 'connects';
const CONNECTIONS = positive('connections', args.connections, 20_000);
const PER_CONNECT_SLICE = positive('slice-connects', args['slice-connects'], CONNECTIONS);
const roots = args.root.map((dir) => resolve(dir));
for (const root of roots) execFileSync(process.execPath, ['scripts/ensure-built.mjs'], { cwd: root, stdio: 'inherit' });

/** A variant of the Beacon target: `NAME` or `NAME:KEY=VALUE,KEY=VALUE` (variables set over the target's environment). */
function parseVariant(spec: string): { name: string; env: Record<string, string> } {
  const colon = spec.indexOf(':');
  const name = colon < 0 ? spec : spec.slice(0, colon);
  const env: Record<string, string> = {};
  for (const pair of colon < 0 ? [] : spec.slice(colon + 1).split(',').filter((p) => p !== '')) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new Error(`--variant ${spec}: "${pair}" is not KEY=VALUE`);
    env[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  if (name === '') throw new Error(`--variant ${spec}: no name`);
  return { name, env };
}
const variants = args.variant.length === 0 ? [undefined] : args.variant.map(parseVariant);
const entries: { name: string; target: TargetId; root?: string; env?: Record<string, string> }[] = [
  ...(args['no-probe'] ? [] : [CONNECTS ? { name: 'bare ws', target: 'ws' as TargetId } : { name: 'limit probe', target: 'ws-raw' as TargetId }]),
  ...roots.flatMap((root) =>
    variants.map((variant) => ({
      name: `${args.target}${variant === undefined ? '' : ` (${variant.name})`} @ ${checkoutLabel(root)}`,
      target: args.target as TargetId,
      root,
      env: variant?.env,
    })),
  ),
];
const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
/** The first Beacon (the first checkout, its first variant): every ratio is to it. */
const FIRST = entries.findIndex((entry) => entry.root !== undefined);
/** Each server's per-slice cost over the first Beacon's in the same slice: the paired ratios' median. */
const pairedMedian = (perSlice: number[][], i: number): number =>
  median(perSlice[i]!.map((cost, slice) => cost / perSlice[FIRST]![slice]!));
/** Runs `slices` rounds in which every server takes one `measure` in turn (the order reversed every other round). */
async function inTurn(slices: number, measure: (i: number) => Promise<number>): Promise<number[][]> {
  const perSlice = entries.map((): number[] => []);
  for (let slice = 0; slice < slices; slice++) {
    const order = entries.map((_, i) => i);
    if (slice % 2 === 1) order.reverse();
    for (const i of order) perSlice[i]!.push(await measure(i));
  }
  return perSlice;
}

/** The fixed-rate fan-out in slices of publishes: CPU per delivery. */
async function fanout(servers: ServerProcess[]): Promise<void> {
  const loads = await Promise.all(
    servers.map((server) => {
      const options: LoadOptions = {
        scenario: 'http-publish',
        target: server.target,
        port: server.port,
        serverPid: server.pid,
        subscribers: SUBSCRIBERS,
        rateMessages: SLICES * PER_SLICE,
        ratePerSecond: RATE,
        latencyMessages: 0,
        latencyPerSecond: 5,
        messages: 0,
        warmupMessages: 100,
        warmupRequests: 10_000,
        window: 20,
        payloadBytes: 150,
        drainTimeoutMs: 10_000,
      };
      return startStepped<LoadStep, LoadResult>('bench/fanout/load.ts', options);
    }),
  );
  const perSlice = await inTurn(SLICES, async (i) => {
    const before = cpuMs(servers[i]!.pid);
    await loads[i]!.step('rate', PER_SLICE);
    return ((cpuMs(servers[i]!.pid) - before) * 1000) / (PER_SLICE * SUBSCRIBERS);
  });
  const results: LoadResult[] = [];
  for (const load of loads) results.push(await load.finish());
  console.table(
    entries.map((entry, i) => ({
      server: entry.name,
      'CPU µs / delivery (whole run)': Number(results[i]!.rate.serverCpuUsPerDelivery.toFixed(2)),
      '× first Beacon, whole run': Number((results[i]!.rate.serverCpuUsPerDelivery / results[FIRST]!.rate.serverCpuUsPerDelivery).toFixed(3)),
      'median of slices': Number(median(perSlice[i]!).toFixed(2)),
      '× first Beacon, paired median': Number(pairedMedian(perSlice, i).toFixed(3)),
      'lost deliveries': results[i]!.rate.expected - results[i]!.rate.delivered,
    })),
  );
  console.log(`${SLICES} slices of ${PER_SLICE} publishes at ${RATE}/s, ${SUBSCRIBERS} subscribers; CPU from /proc (10 ms ticks).`);
}

/** The connection phase: a first storm not measured, its connections closed, then the second storm in slices: CPU per connect. */
async function connects(servers: ServerProcess[]): Promise<void> {
  const loads: Stepped<IdleStep, IdleResult>[] = [];
  for (const server of servers) {
    const options: IdleOptions = {
      target: server.target,
      port: server.port,
      serverPid: server.pid,
      connections: CONNECTIONS,
      warmup: 200,
      concurrency: 50,
      settleMs: 1500,
      metricsUrl: server.metricsUrl,
      scrapes: 1,
    };
    loads.push(await startStepped<IdleStep, IdleResult>('bench/fanout/idle.ts', options));
  }
  for (const load of loads) await load.step('first', CONNECTIONS);
  for (const load of loads) await load.step('settle', 1);
  const slices = Math.floor(CONNECTIONS / PER_CONNECT_SLICE);
  const perSlice = await inTurn(slices, async (i) => {
    const before = cpuMs(servers[i]!.pid);
    await loads[i]!.step('second', PER_CONNECT_SLICE);
    return ((cpuMs(servers[i]!.pid) - before) * 1000) / PER_CONNECT_SLICE;
  });
  const results: IdleResult[] = [];
  for (const load of loads) results.push(await load.finish());
  console.table(
    entries.map((entry, i) => ({
      server: entry.name,
      'CPU µs / connect (whole storm)': Number(results[i]!.serverCpuUsPerConnect.toFixed(0)),
      // The storm's slices together: 1 µs resolution, where one slice of 500 connects has ~20 µs (10 ms ticks).
      '× first Beacon, whole storm': Number((results[i]!.serverCpuUsPerConnect / results[FIRST]!.serverCpuUsPerConnect).toFixed(3)),
      'connects/s': Number(results[i]!.connectsPerSecond.toFixed(0)),
      'median of slices': Number(median(perSlice[i]!).toFixed(0)),
      '× first Beacon, paired median': Number(pairedMedian(perSlice, i).toFixed(3)),
      'CPU µs / close': Number(results[i]!.serverCpuUsPerClose.toFixed(0)),
      '× first Beacon, close': Number((results[i]!.serverCpuUsPerClose / results[FIRST]!.serverCpuUsPerClose).toFixed(3)),
    })),
  );
  console.log(
    `${slices} slices of ${PER_CONNECT_SLICE} subscribed connects (50 at a time) after a storm of ${CONNECTIONS} not measured; CPU from /proc (10 ms ticks).`,
  );
  console.log(
    `CPU / close: the first storm's ${CONNECTIONS} connections dropped by the load process (no close frame), the server's CPU until idle, one server at a time.`,
  );
}

const sink = await startSink();
const servers: ServerProcess[] = [];
try {
  for (const entry of entries) {
    const nodeArgs = entry.root === undefined ? undefined : args['node-arg'];
    servers.push(await startServer(entry.target, { otlpEndpoint: sink.url, root: entry.root, env: entry.env, nodeArgs }));
  }
  if (CONNECTS) await connects(servers);
  else await fanout(servers);
} finally {
  for (const server of servers) await server.stop();
  sink.server.close();
}
