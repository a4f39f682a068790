/**
 * beacon-monitor against a real Beacon process, run as an operator runs it (tools/bin/beacon-monitor.mjs): it reads the
 * real /metrics, /healthz and /readyz, sees a connection and a fan-out happen, picks an injected error line out of a
 * followed log file and out of stdin, renders plain, tty and json output, and ends by itself with its summary. Then
 * against endpoints that accept connections and never answer: it ends on time (and on SIGINT) and says what did not answer.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { appendFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import Pusher from 'pusher';
import WebSocket from 'ws';
import { spawnBeacon, type BeaconProcess } from '../helpers/beacon-process.js';
import { freePort } from '../helpers/free-port.js';
import { within } from '../helpers/wait.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = 'tools/bin/beacon-monitor.mjs';
const ANSI = /\u001b\[[0-9;]*m/g;

interface Monitor {
  child: ReturnType<typeof spawn>;
  lines: string[];
  stdin: NodeJS.WritableStream;
  /** Resolves once a stdout line matches. */
  line(match: RegExp, what: string): Promise<string>;
  exited: Promise<number | null>;
  stderr(): string;
}

function startMonitor(args: string[]): Monitor {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '' } });
  const lines: string[] = [];
  let partial = '';
  let stderr = '';
  const waiters = new Set<() => void>();
  child.stdout.on('data', (b: Buffer) => {
    const parts = (partial + b.toString('utf8')).split('\n');
    partial = parts.pop() ?? '';
    lines.push(...parts);
    for (const wake of waiters) wake();
  });
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  void exited.then(() => clearTimeout(killer));
  return {
    child,
    lines,
    stdin: child.stdin,
    exited,
    stderr: () => stderr,
    line(match, what) {
      return within(
        new Promise<string>((resolve) => {
          const check = () => {
            const found = lines.find((l) => match.test(l));
            if (found === undefined) return;
            waiters.delete(check);
            resolve(found);
          };
          waiters.add(check);
          check();
        }),
        `${what}\n${lines.join('\n')}\n${stderr}`,
        15_000,
      );
    },
  };
}

/** A raw Pusher protocol client subscribed to `channel`, resolving with its socket and the next channel event. */
async function subscriber(beacon: BeaconProcess, channel: string): Promise<{ ws: WebSocket; event: Promise<unknown> }> {
  const ws = new WebSocket(`ws://127.0.0.1:${beacon.port}/app/app-key?protocol=7`);
  let gotEvent: (frame: unknown) => void = () => {};
  const event = new Promise<unknown>((resolve) => (gotEvent = resolve));
  const subscribed = new Promise<void>((resolve) => {
    ws.on('message', (raw: Buffer) => {
      const frame = JSON.parse(raw.toString()) as { event: string };
      if (frame.event === 'pusher:connection_established') ws.send(JSON.stringify({ event: 'pusher:subscribe', data: { channel } }));
      else if (frame.event === 'pusher_internal:subscription_succeeded') resolve();
      else if (frame.event === 'tick') gotEvent(frame);
    });
  });
  await within(subscribed, 'subscription');
  return { ws, event };
}

describe('beacon-monitor against a real Beacon', () => {
  let beacon: BeaconProcess;
  let dir: string;
  before(async () => {
    beacon = await spawnBeacon();
    dir = await mkdtemp(join(tmpdir(), 'beacon-monitor-'));
  });
  after(async () => {
    await beacon.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const target = () => ['--metrics', `http://127.0.0.1:${beacon.metricsPort}/metrics`, '--host', `ws://127.0.0.1:${beacon.port}`];

  it('plain: a line per snapshot from the real /metrics, an injected error line from a followed file, a summary', { timeout: 40_000 }, async () => {
    const file = join(dir, 'beacon.log');
    await writeFile(file, '{"level":"error","msg":"an old line, before the monitor started"}\n');
    const monitor = startMonitor(['4', '--interval', '1', '--mode', 'plain', '--log-file', file, '--no-stack', ...target()]);
    await monitor.line(/^snapshot /, 'the first snapshot');
    // A client with an unknown key: refused (logged at info), counted in /metrics as rejected:unknown_app.
    const refused = new WebSocket(`ws://127.0.0.1:${beacon.port}/app/no-such-key?protocol=7`);
    refused.on('error', () => {});
    await within(once(refused, 'close'), 'the refused connection closed');
    const { ws, event } = await subscriber(beacon, 'monitored');
    const sdk = new Pusher({ appId: 'app-id', key: 'app-key', secret: 'app-secret', host: '127.0.0.1', port: String(beacon.port), useTLS: false });
    await sdk.trigger('monitored', 'tick', { n: 1 });
    await within(event, 'the published event');
    await appendFile(
      file,
      `${JSON.stringify({ level: 'info', time: new Date().toISOString(), event: 'subscribed', msg: 'not a problem' })}\n` +
        `${JSON.stringify({ level: 'error', time: new Date().toISOString(), event: 'injected_failure', msg: 'injected by the test' })}\n`,
    );
    await monitor.line(/^log .*level=error event=injected_failure msg="injected by the test"/, 'the injected error line');
    assert.equal(await monitor.exited, 0, monitor.stderr());
    ws.close();

    const snapshots = monitor.lines.filter((l) => l.startsWith('snapshot '));
    assert.ok(snapshots.length >= 4, snapshots.join('\n'));
    for (const s of snapshots) assert.match(s, /healthz=200 readyz=200/);
    assert.ok(snapshots.some((s) => / connections=1 /.test(s)), 'a snapshot with the one connection');
    assert.ok(snapshots.some((s) => / messages_out_per_s=(?!0 )[\d.]+ /.test(s)), 'frames out per second');
    assert.ok(snapshots.some((s) => / broadcast_p99_ms=[\d.]+ /.test(s)), 'broadcast p99 from the buckets');
    assert.ok(snapshots.every((s) => / eventloop_lag_p99_ms=[\d.]+ rss_bytes=\d+ /.test(s)));
    // The old line was there before the monitor started: only the new error counts, the info line not at all.
    assert.equal(monitor.lines.filter((l) => l.startsWith('log ')).length, 1);
    const text = monitor.lines.join('\n');
    assert.match(text, /^summary: \d+ s, \d+ snapshots, 0 unhealthy$/m);
    assert.match(text, /peaks: connections 1,/);
    assert.match(text, /totals: connections_opened 1, /);
    assert.match(text, /^ {2}errors in \/metrics: rejected:unknown_app 1 \(refusals a client caused are logged at info: not among the log lines\)$/m);
    assert.match(text, /log lines: 0 fatal, 1 error, 0 warn/);
    assert.match(text, /distinct errors \(1\):\n\s+1× error injected_failure: injected by the test$/m);
  });

  it('tty: aligned columns, red for a failing health check and an error line from stdin', { timeout: 40_000 }, async () => {
    const closedPort = await freePort();
    const monitor = startMonitor([
      '2', '--interval', '0.5', '--mode', 'tty', '--log-file', '-', '--no-stack',
      '--metrics', `http://127.0.0.1:${beacon.metricsPort}/metrics`, '--host', `http://127.0.0.1:${closedPort}`,
    ]);
    await monitor.line(/ECONNREFUSED/, 'a snapshot');
    monitor.stdin.write('{"level":"error","event":"stdin_failure","msg":"from stdin"}\n{"level":"warn","msg":"a warning"}\n');
    await monitor.line(/stdin_failure: from stdin/, 'the stdin error line');
    await monitor.line(/a warning/, 'the stdin warn line');
    assert.equal(await monitor.exited, 0, monitor.stderr());

    const raw = monitor.lines;
    const header = raw.find((l) => l.replace(ANSI, '').startsWith('time '));
    assert.ok(header !== undefined && header.startsWith('\u001b[1m'), 'a bold header');
    const rows = raw.filter((l) => /^\d\d:\d\d:\d\d /.test(l.replace(ANSI, '')));
    assert.ok(rows.length >= 3, raw.join('\n'));
    // Every row is as wide as the header up to the last, free-width column: the columns line up.
    const plainHeader = header.replace(ANSI, '');
    for (const row of rows) {
      const plain = row.replace(ANSI, '');
      assert.equal(plain.length - '-'.length, plainHeader.length - 'stack'.length, `${plainHeader}\n${plain}`);
      assert.match(row, /\u001b\[31m\s*ECONNREFUSED\u001b\[0m/, 'a failing health check is red');
    }
    assert.ok(raw.some((l) => l.startsWith('\u001b[31m') && l.includes('ERROR stdin_failure: from stdin')), 'error lines are red');
    assert.ok(raw.some((l) => l.startsWith('\u001b[33m') && l.includes('WARN  a warning')), 'warn lines are yellow');
    assert.ok(raw.some((l) => l.replace(ANSI, '').startsWith('summary: ') && /, \d+ unhealthy/.test(l)));
  });

  it('a --metrics that is not Beacon\'s (its /healthz answers 200): said, and no snapshot reads as an idle healthy node', { timeout: 40_000 }, async () => {
    const wrong = `http://127.0.0.1:${beacon.port}/healthz`;
    const monitor = startMonitor(['1', '--interval', '0.5', '--mode', 'plain', '--no-stack', '--metrics', wrong, '--host', `http://127.0.0.1:${beacon.port}`]);
    assert.equal(await monitor.exited, 0, monitor.stderr());
    const text = monitor.lines.join('\n');
    const problems = monitor.lines.filter((l) => l.startsWith('problem '));
    assert.equal(problems.length, 1, text);
    assert.match(problems[0] as string, /is not a Beacon \/metrics endpoint: no websocket_build_info or other websocket_\* series \(no Prometheus sample at all\); is --metrics right\?/);
    const snapshots = monitor.lines.filter((l) => l.startsWith('snapshot '));
    assert.ok(snapshots.length >= 2, text);
    for (const s of snapshots) {
      assert.match(s, / connections=- /);
      assert.match(s, /metrics_error="http:\/\/127\.0\.0\.1:\d+\/healthz is not a Beacon \/metrics endpoint/);
    }
    assert.match(text, new RegExp(`^summary: \\d+ s, ${snapshots.length} snapshots, ${snapshots.length} unhealthy$`, 'm'));
  });

  it('json: one object per line, snapshots with numbers, the summary last', { timeout: 40_000 }, async () => {
    const monitor = startMonitor(['1.5', '--interval', '0.5', '--json', '--no-stack', ...target()]);
    assert.equal(await monitor.exited, 0, monitor.stderr());
    const objects = monitor.lines.filter((l) => l !== '').map((l) => JSON.parse(l) as { type: string; [k: string]: unknown });
    const snapshots = objects.filter((o) => o.type === 'snapshot');
    assert.ok(snapshots.length >= 3);
    for (const s of snapshots) {
      assert.equal(typeof s.connections, 'number');
      assert.equal(typeof s.rssBytes, 'number');
      assert.deepEqual(s.readyz, { status: 200 });
    }
    assert.equal(typeof snapshots[1]?.messagesInPerSecond, 'number');
    const last = objects[objects.length - 1];
    assert.equal(last?.type, 'summary');
    assert.deepEqual((last as { distinctErrors?: unknown }).distinctErrors, []);
  });
});

/** A TCP listener that accepts connections and never answers (a hung Loki or node); counts the connections. */
async function silentListener(): Promise<{ url: string; connections: () => number; connected: (n: number) => Promise<void>; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  let connections = 0;
  const waiters = new Set<() => void>();
  const server = createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
    for (const wake of waiters) wake();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    connections: () => connections,
    connected: (n) =>
      within(
        new Promise<void>((resolve) => {
          const check = () => {
            if (connections < n) return;
            waiters.delete(check);
            resolve();
          };
          waiters.add(check);
          check();
        }),
        `${n} connections to the silent listener`,
        15_000,
      ),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

interface SummaryJson {
  type: 'summary';
  seconds: number;
  skippedSnapshots: number;
  unansweredAtEnd: string[];
  logSources: Array<{ source: string; polls: number; failedPolls: number; unansweredAtEnd: boolean }>;
}

function summaryOf(monitor: Monitor): SummaryJson {
  const last = monitor.lines.filter((l) => l !== '').map((l) => JSON.parse(l) as { type: string }).pop();
  assert.equal(last?.type, 'summary', monitor.lines.join('\n'));
  return last as SummaryJson;
}

describe('beacon-monitor against endpoints that accept connections and never answer', () => {
  let silent: Awaited<ReturnType<typeof silentListener>>;
  before(async () => {
    silent = await silentListener();
  });
  after(async () => {
    await silent.close();
  });
  const hung = () => ['--no-stack', '--json', '--metrics', `${silent.url}/metrics`, '--host', silent.url, '--loki', silent.url];

  it('[seconds] ends within 1 s of its time, skipping snapshots behind the waiting one, naming what did not answer', { timeout: 40_000 }, async () => {
    const before = silent.connections();
    const monitor = startMonitor(['2', '--interval', '0.5', ...hung()]);
    // The three requests of the first snapshot: the monitor's run has started.
    await silent.connected(before + 3);
    const running = Date.now();
    assert.equal(await monitor.exited, 0, monitor.stderr());
    const took = Date.now() - running;
    assert.ok(took < 3000 + 500, `exited ${took} ms after its first requests, for a 2 s run`);
    const summary = summaryOf(monitor);
    assert.ok(summary.seconds <= 3, `summary.seconds ${summary.seconds}`);
    // Ticks at 0.5, 1 and 1.5 s came while the first snapshot still waited: skipped, not queued.
    assert.ok(summary.skippedSnapshots >= 2, `skipped ${summary.skippedSnapshots}`);
    assert.deepEqual(summary.unansweredAtEnd.slice(0, 3), [`${silent.url}/metrics`, `${silent.url}/healthz`, `${silent.url}/readyz`]);
    assert.equal(summary.logSources[0]?.source, `loki ${silent.url}`);
    assert.equal(summary.logSources[0]?.failedPolls, summary.logSources[0]?.polls);
    assert.ok(monitor.lines.some((l) => l.includes('snapshot skipped: the previous one is still waiting for')));
  });

  it('SIGINT on an unbounded run ends within 1 s, with exit 0 and the summary', { timeout: 40_000 }, async () => {
    const before = silent.connections();
    const monitor = startMonitor(['--interval', '0.5', ...hung()]);
    await silent.connected(before + 3);
    const interrupted = Date.now();
    monitor.child.kill('SIGINT');
    assert.equal(await monitor.exited, 0, monitor.stderr());
    const took = Date.now() - interrupted;
    assert.ok(took < 1500, `exited ${took} ms after SIGINT`);
    const summary = summaryOf(monitor);
    assert.ok(summary.unansweredAtEnd.includes(`${silent.url}/metrics`), summary.unansweredAtEnd.join(', '));
  });
});
