/**
 * `npm run bench:ab -- --root . --root /tmp/prev`: the fixed-rate fan-out of `npm run bench` (its load process and phase),
 * with Beacon run from each checkout given and the limit probe beside them, every server measured in slices of publishes
 * taken in turn, in an order reversed every other slice. Prints each server's CPU per delivery and its ratio to the first
 * checkout, paired slice by slice: an A/B of two commits on the same machine, for changes smaller than the spread of
 * `npm run bench`'s whole-run ratios. Prints only; never writes bench/results.
 */
import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { startSink } from '../common/otlp-sink.js';
import { checkoutLabel } from '../common/checkout.js';
import { positive } from '../common/cli.js';
import { startStepped } from './child.js';
import type { LoadOptions, LoadResult, LoadStep } from './load.js';
import { cpuMs } from './proc-cpu.js';
import { startServer, type ServerProcess, type TargetId } from './targets.js';

const HELP = `Usage: npm run bench:ab -- --root DIR [--root DIR ...] [options]
  --root DIR            a checkout to run Beacon from (repeatable; default this one). Ratios are to the first one. For
                        the commit before: git worktree add /tmp/prev HEAD~1 && (cd /tmp/prev && npm ci)
  --target ID           which Beacon (default beacon): beacon (telemetry off), beacon-sampled, beacon-otel
  --slices N            measured slices per server (default 24)
  --slice-publishes N   publishes per slice, at --rate (default 50)
  --subscribers N       subscribers on the one fan-out channel (default 1000)
  --rate N              publishes per second (default 50)
  --no-probe            leave out the limit probe (bare ws, frames written raw)
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
const roots = args.root.map((dir) => resolve(dir));
for (const root of roots) execFileSync(process.execPath, ['scripts/ensure-built.mjs'], { cwd: root, stdio: 'inherit' });

const entries: { name: string; target: TargetId; root?: string }[] = [
  ...(args['no-probe'] ? [] : [{ name: 'limit probe', target: 'ws-raw' as TargetId }]),
  ...roots.map((root) => ({ name: `${args.target} @ ${checkoutLabel(root)}`, target: args.target as TargetId, root })),
];
const sink = await startSink();
const servers: ServerProcess[] = [];
try {
  for (const entry of entries) servers.push(await startServer(entry.target, { otlpEndpoint: sink.url, root: entry.root }));
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
  const perSlice = servers.map((): number[] => []);
  for (let slice = 0; slice < SLICES; slice++) {
    const order = servers.map((_, i) => i);
    if (slice % 2 === 1) order.reverse();
    for (const i of order) {
      const before = cpuMs(servers[i]!.pid);
      await loads[i]!.step('rate', PER_SLICE);
      perSlice[i]!.push(((cpuMs(servers[i]!.pid) - before) * 1000) / (PER_SLICE * SUBSCRIBERS));
    }
  }
  const results: LoadResult[] = [];
  for (const load of loads) results.push(await load.finish());
  const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  const first = entries.findIndex((entry) => entry.root !== undefined);
  console.table(
    entries.map((entry, i) => {
      const rate = results[i]!.rate;
      const paired = perSlice[i]!.map((us, slice) => us / perSlice[first]![slice]!);
      return {
        server: entry.name,
        'CPU µs / delivery (whole run)': Number(rate.serverCpuUsPerDelivery.toFixed(2)),
        'median of slices': Number(median(perSlice[i]!).toFixed(2)),
        [`× first checkout, paired median`]: Number(median(paired).toFixed(3)),
        'lost deliveries': rate.expected - rate.delivered,
      };
    }),
  );
  console.log(`${SLICES} slices of ${PER_SLICE} publishes at ${RATE}/s, ${SUBSCRIBERS} subscribers; CPU from /proc (10 ms ticks).`);
} finally {
  for (const server of servers) await server.stop();
  sink.server.close();
}
