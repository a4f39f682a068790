/**
 * Refused upgrades that never answer the close frame: how many file descriptors they hold, and for how long. Each checkout
 * given (`--root`, default this one) runs as a child process from its sources (OTEL_SDK_DISABLED, LOG_LEVEL warn); `--sockets`
 * raw TCP clients (test/helpers/silent-socket.ts) upgrade to an unknown app key — refused with 4001 — and never write again.
 * The server's open fds (/proc/<pid>/fd) are sampled before, and at fixed times after, the last socket was refused.
 *
 *   node --import tsx bench/refused-fds/run.ts [--root /path/to/old/checkout --root .] [--sockets 1000]
 *
 * Writes bench/results/refused-fds.json; `node --import tsx bench/render-results.ts` renders RESULTS.md.
 */
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { freePort } from '../../test/helpers/free-port.js';
import { silentSocket, type SilentSocket } from '../../test/helpers/silent-socket.js';
import { commandLine, machineStamp, writeResults, type ResultRow } from '../results-format.js';
import { checkoutLabel } from '../common/checkout.js';

const { values } = parseArgs({
  options: { root: { type: 'string', multiple: true, default: ['.'] }, sockets: { type: 'string', default: '1000' } },
});
const SOCKETS = Number(values.sockets);
const SAMPLES_S = [0, 1, 3, 5, 10];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const fds = (pid: number): number => readdirSync(`/proc/${pid}/fd`).length;

const rows: ResultRow[] = [];
for (const rootArg of values.root) {
  const root = resolve(rootArg);
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: root,
    env: { ...process.env, HOST: '127.0.0.1', PORT: String(port), OTEL_SDK_DISABLED: 'true', LOG_LEVEL: 'warn', SHUTDOWN_GRACE_MS: '0' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  while ((await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.status !== 200) await sleep(100);
  const pid = child.pid as number;
  const row: ResultRow = { name: checkoutLabel(root), fds_before: fds(pid) };
  const sockets: SilentSocket[] = [];
  for (let i = 0; i < SOCKETS; i += 50) {
    sockets.push(...(await Promise.all(Array.from({ length: Math.min(50, SOCKETS - i) }, () => silentSocket(port, '/app/no-such-key?protocol=7')))));
  }
  const refusedAt = Date.now();
  for (const s of SAMPLES_S) {
    await sleep(Math.max(0, refusedAt + s * 1000 - Date.now()));
    row[`fds_after_${s}s`] = fds(pid);
  }
  for (const s of sockets) s.destroy();
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  process.stdout.write(`${JSON.stringify(row)}\n`);
  rows.push(row);
}
writeResults('bench/results/refused-fds.json', {
  scenario: 'refused-fds',
  title: 'Refused upgrades that never answer the close frame: server file descriptors over time',
  command: commandLine('bench:refused-fds'),
  ...machineStamp(['src/transport']),
  runs: 1,
  rows,
  notes: [
    `${SOCKETS} raw clients upgrade to an unknown app key (refused with 4001 after the upgrade) and never answer the close frame; open fds of the server process from /proc/<pid>/fd.`,
    'Each row is one checkout (its path), a fresh child process from its own sources under tsx; MAX_REFUSED_SOCKETS at its default (1000).',
  ],
});
