/**
 * beacon-load against a real Beacon process (telemetry on), run exactly as an operator runs it: `tools/bin/beacon-load.mjs`
 * with flags, its --json report read from stdout. A clean run's audit finds no difference between the server's counters
 * and what the clients saw; a run against a server that cuts slow consumers (a tiny SEND_BUFFER_MAX_BYTES and a socket that
 * stops reading) reports the lost deliveries, and the audit shows where the server counted them. A run that failed in any
 * other way — publishes refused or unanswered, client events refused, connections closed under it, a server that died
 * (its /metrics with it), nothing to connect to — fails the verdict (or exits 2 when it could not start), and a run
 * interrupted by SIGINT or SIGTERM still reports, as interrupted. Refusals at the upgrade are audited as refusals.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { spawnBeacon, type BeaconProcess } from '../helpers/beacon-process.js';
import { freePort } from '../helpers/prometheus.js';
import type { LoadReport } from '../../tools/load/report.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = 'tools/bin/beacon-load.mjs';

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs beacon-load with `args` (bounded: the tool stops by itself; the child is killed past 60 s). */
function load(args: string[]): Promise<Outcome> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { cwd: ROOT, timeout: 60_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

/** A beacon-load still running: its outcome once it exits, and a wait for a line of its stderr (progress, notices). */
interface Running {
  done: Promise<Outcome & { signal: NodeJS.Signals | null }>;
  /** Resolves once stderr matches `re`; rejects if the tool exits first. */
  stderrMatches(re: RegExp): Promise<void>;
  kill(signal: NodeJS.Signals): void;
}

/** Starts beacon-load with `args` (killed past 60 s), for a test that acts while it runs. */
function startLoad(args: string[]): Running {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let waiters: Array<{ re: RegExp; resolve: () => void }> = [];
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr.on('data', (b: Buffer) => {
    stderr += b.toString();
    const ready = waiters.filter((w) => w.re.test(stderr));
    waiters = waiters.filter((w) => !ready.includes(w));
    for (const w of ready) w.resolve();
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const done = new Promise<Outcome & { signal: NodeJS.Signals | null }>((resolve) => {
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, signal, stdout, stderr });
    });
  });
  return {
    done,
    stderrMatches(re) {
      if (re.test(stderr)) return Promise.resolve();
      return new Promise((resolve, reject) => {
        waiters.push({ re, resolve });
        void done.then((o) => reject(new Error(`beacon-load exited (${o.code}) before stderr matched ${re}:\n${o.stderr}`)));
      });
    },
    kill: (signal) => child.kill(signal),
  };
}

/** The plain progress line of the steady state (stderr is no terminal: a line at 1 s, then every 5 s). */
const STEADY = /^\[steady /m;

function target(beacon: BeaconProcess): string[] {
  return ['--host', `ws://127.0.0.1:${beacon.port}`, '--metrics', `http://127.0.0.1:${beacon.metricsPort}/metrics`, '--json'];
}

function report(outcome: Outcome): LoadReport {
  try {
    return JSON.parse(outcome.stdout) as LoadReport;
  } catch {
    throw new Error(`no JSON report (exit ${outcome.code}):\n${outcome.stdout}\n${outcome.stderr}`);
  }
}

describe('beacon-load against a healthy server', () => {
  let beacon: BeaconProcess;
  before(async () => {
    beacon = await spawnBeacon({ APP_ENABLE_CLIENT_EVENTS: 'true' });
  });
  after(async () => {
    await beacon.stop();
  });

  it('5 s with 50 sockets over HTTP publishes: every message arrives and the audit finds no difference', { timeout: 60_000 }, async () => {
    const outcome = await load([
      ...target(beacon),
      '--sockets', '50', '--rate', '200', '--duration', '5', '--send-rate', '1', '--channels', '5',
    ]);
    const r = report(outcome);
    assert.equal(outcome.code, 0, `${outcome.stderr}\n${JSON.stringify(r.verdict)}`);
    assert.deepEqual(r.verdict, { ok: true, interrupted: null, reasons: [] });
    assert.equal(r.connections.opened, 50);
    assert.equal(r.connections.close_codes['1000'], 50);
    assert.equal(r.messages.publish_via, 'http');
    assert.ok(r.messages.sent >= 200, `sent ${r.messages.sent}`);
    assert.equal(r.messages.expected_deliveries, r.messages.http_accepted * 10);
    assert.equal(r.messages.received, r.messages.expected_deliveries);
    assert.equal(r.messages.lost, 0);
    assert.equal(r.messages.latency_ms.count, r.messages.received);
    assert.ok(r.messages.latency_ms.p50 > 0 && r.messages.latency_ms.p50 <= r.messages.latency_ms.max);
    assert.ok(r.audit !== null);
    assert.equal(r.audit.settled, true);
    assert.deepEqual(r.audit.rows.filter((row) => row.difference !== 0), []);
    const opened = r.audit.rows.find((row) => row.what === 'connections opened');
    assert.deepEqual([opened?.server, opened?.clients], [50, 50]);
    const delivered = r.audit.rows.find((row) => row.what === 'frames sent: channel_event');
    assert.equal(delivered?.server, r.messages.received);
    const published = r.audit.rows.find((row) => row.what === 'events published: http_api');
    assert.equal(published?.server, r.messages.http_accepted);
  });

  it('presence channels with client events: signed subscriptions, client events, the audit matches', { timeout: 60_000 }, async () => {
    const outcome = await load([
      ...target(beacon),
      '--sockets', '20', '--rate', '200', '--duration', '2', '--send-rate', '2', '--channels', '2', '--channel-type', 'presence',
    ]);
    const r = report(outcome);
    assert.equal(outcome.code, 0, `${outcome.stderr}\n${JSON.stringify(r.verdict)}`);
    assert.equal(r.connections.subscribed, 20);
    assert.equal(r.messages.publish_via, 'client');
    assert.equal(r.messages.lost, 0);
    // Each client event reaches the 9 other members of its channel.
    assert.equal(r.messages.expected_deliveries, r.messages.sent * 9);
    assert.ok(r.audit !== null);
    assert.deepEqual(r.audit.rows.filter((row) => row.difference !== 0), []);
    const kinds = r.audit.rows.map((row) => row.what);
    for (const kind of ['frames sent: presence', 'frames sent: client_event', 'events published: client_event']) {
      assert.ok(kinds.includes(kind), `${kind} in ${kinds.join(', ')}`);
    }
  });
});

describe('beacon-load runs that measure nothing', () => {
  let beacon: BeaconProcess;
  before(async () => {
    beacon = await spawnBeacon({ APP_ENABLE_CLIENT_EVENTS: 'true', LOG_LEVEL: 'warn' });
  });
  after(async () => {
    await beacon.stop();
  });

  it('client events on channels of one socket: FAILED, "nothing measured", exit 1', { timeout: 60_000 }, async () => {
    const alone = await load([...target(beacon), '--sockets', '4', '--rate', '200', '--duration', '1', '--send-rate', '2', '--channel-type', 'private']);
    const ra = report(alone);
    assert.equal(alone.code, 1, JSON.stringify(ra.verdict));
    assert.equal(ra.messages.publish_via, 'client');
    assert.ok(ra.messages.sent > 0 && ra.messages.expected_deliveries === 0, JSON.stringify(ra.messages));
    assert.deepEqual(ra.verdict.reasons.map((x) => x.split(':')[0]), ['nothing measured']);
    assert.match(ra.verdict.reasons[0] as string, /had no recipient.*--sockets 4 over --channels 4: 1 socket a channel/);
    // The default --channels 10 is cut to the 4 sockets without a warning about a flag nobody gave (a probe).
    assert.doesNotMatch(alone.stderr, /warning: --channels/);
    assert.deepEqual(ra.warnings, []);
  });

  it('the steady state sends every message due, the first at once: 0.5 due is 1 sent, 200 due are 200 sent', { timeout: 60_000 }, async () => {
    // Message k is due k / (senders × send-rate) s in: the first one used to wait a whole interval (0 sent of 0.5 due,
    // "nothing measured"), and the last fell off the end of the steady state (199 of 200).
    const short = await load([...target(beacon), '--sockets', '5', '--rate', '200', '--duration', '1', '--channels', '1']);
    const rs = report(short);
    assert.equal(short.code, 0, JSON.stringify(rs.verdict));
    assert.deepEqual([rs.messages.due, rs.messages.sent, rs.messages.received], [1, 1, 5]);
    const full = await load([...target(beacon), '--sockets', '5', '--rate', '200', '--duration', '2', '--send-rate', '20', '--channels', '1']);
    const rf = report(full);
    assert.equal(full.code, 0, JSON.stringify(rf.verdict));
    assert.deepEqual([rf.messages.due, rf.messages.sent, rf.messages.received], [200, 200, 1000]);
  });
});

describe('beacon-load against a presence channel that fills up (MAX_PRESENCE_MEMBERS)', () => {
  let beacon: BeaconProcess;
  before(async () => {
    beacon = await spawnBeacon({ APP_ENABLE_CLIENT_EVENTS: 'true', MAX_PRESENCE_MEMBERS: '4', LOG_LEVEL: 'warn' });
  });
  after(async () => {
    await beacon.stop();
  });

  it('subscriptions refused as the channel is full are counted once, as failed connections, not as closed sockets', { timeout: 60_000 }, async () => {
    const outcome = await load([
      ...target(beacon), '--sockets', '6', '--rate', '200', '--duration', '2', '--send-rate', '2', '--channels', '1', '--channel-type', 'presence',
    ]);
    const r = report(outcome);
    assert.equal(outcome.code, 1, JSON.stringify(r.verdict));
    assert.equal(r.connections.subscribed, 4);
    assert.equal(r.connections.failed, 2);
    assert.equal(r.messages.publish_via, 'client');
    // The 4 members send (the 2 refused sockets send nothing): nothing skipped as "socket had closed".
    assert.equal(r.messages.skipped_socket_closed, 0, JSON.stringify(r.messages));
    assert.equal(r.messages.sent, r.messages.due);
    assert.equal(r.messages.expected_deliveries, r.messages.sent * 3);
    assert.equal(r.messages.lost, 0);
    assert.deepEqual(r.verdict.reasons, ['2 of 6 connections failed (33.33 %)']);
    assert.ok(Object.keys(r.errors).some((e) => e.startsWith('subscription_error')), JSON.stringify(r.errors));
    assert.equal(r.errors['send skipped: socket not open'], undefined);
  });
});

describe('beacon-load next to another run on the same server', () => {
  let beacon: BeaconProcess;
  before(async () => {
    beacon = await spawnBeacon({ LOG_LEVEL: 'warn' });
  });
  after(async () => {
    await beacon.stop();
  });

  it('two runs at once: each counts only its own messages, and the audited one says other load was there', { timeout: 60_000 }, async () => {
    // B runs longer than A, so B's sockets are open through A's steady state and drain.
    const b = startLoad([
      '--host', `ws://127.0.0.1:${beacon.port}`, '--json', '--sockets', '10', '--rate', '200', '--duration', '6', '--send-rate', '2', '--channels', '2',
    ]);
    await b.stderrMatches(STEADY);
    const a = await load([...target(beacon), '--sockets', '10', '--rate', '200', '--duration', '2', '--send-rate', '2', '--channels', '2']);
    const ra = report(a);
    const rb = report(await b.done);
    assert.notEqual(ra.run_id, rb.run_id);
    for (const r of [ra, rb]) {
      // Before run ids, both used beacon-load-0 and -1: each counted the other's messages too (received = 2 × expected).
      assert.equal(r.messages.received, r.messages.expected_deliveries, JSON.stringify(r.messages));
      assert.equal(r.messages.lost, 0);
      assert.equal(r.messages.foreign, 0);
      assert.ok(r.messages.received > 0);
    }
    assert.equal(rb.verdict.ok, true, JSON.stringify(rb.verdict));
    // A's audit sees B's connections and traffic on the server, and says why its counters differ.
    assert.ok(ra.audit !== null);
    assert.ok(ra.audit.otherLoad.some((x) => /connection\(s\) of app app-id were open/.test(x)), JSON.stringify(ra.audit.otherLoad));
  });

  it('a shorter run inside the audited one: its connections, opened and closed meanwhile, are named as other load', { timeout: 60_000 }, async () => {
    // They are in neither gauge (open before, open at the end of the drain): the audit failed, naming none (a probe).
    const a = startLoad([...target(beacon), '--json', '--sockets', '10', '--rate', '200', '--duration', '5', '--send-rate', '2', '--channels', '2']);
    await a.stderrMatches(STEADY);
    const b = report(await load(['--host', `ws://127.0.0.1:${beacon.port}`, '--json', '--sockets', '5', '--rate', '200', '--duration', '1', '--send-rate', '2', '--channels', '1']));
    assert.equal(b.verdict.ok, true, JSON.stringify(b.verdict));
    const ra = report(await a.done);
    assert.ok(ra.audit !== null);
    assert.ok(
      ra.audit.otherLoad.some((x) => /^the server opened 15 connection\(s\) of app app-id during the run, which attempted 10$/.test(x)),
      JSON.stringify(ra.audit.otherLoad),
    );
  });
});

describe('beacon-load against a server that drops messages', () => {
  let beacon: BeaconProcess;
  before(async () => {
    beacon = await spawnBeacon({ SEND_BUFFER_MAX_BYTES: '131072', LOG_LEVEL: 'warn' });
  });
  after(async () => {
    await beacon.stop();
  });

  it('a stalled socket is cut as a slow consumer: the loss is reported and the audit accounts for it', { timeout: 60_000 }, async () => {
    // 100 publishes/s of 60 kB for 4 s: far more than loopback socket buffers plus 128 KiB hold for the stalled socket.
    const outcome = await load([
      ...target(beacon),
      '--sockets', '5', '--rate', '200', '--duration', '4', '--send-rate', '20', '--channels', '1', '--stall', '1',
      '--payload-bytes', '60000',
    ]);
    const r = report(outcome);
    assert.equal(outcome.code, 1);
    assert.equal(r.verdict.ok, false);
    assert.ok(r.messages.lost > 0, 'deliveries lost');
    assert.ok(r.verdict.reasons.some((reason) => reason.includes('deliveries lost')), r.verdict.reasons.join('; '));
    assert.equal(r.connections.failed, 0);
    assert.ok(r.audit !== null);
    // The stalled socket is cut; on a busy machine a reader that falls 128 KiB behind may be cut too.
    const cut = r.audit.context['websocket_connections_closed_total{reason="slow_consumer"}'] ?? 0;
    assert.ok(cut >= 1, `slow consumers cut: ${cut}`);
    assert.equal(r.audit.context['websocket_backpressure_events_total{action="disconnected"}'], cut);
    assert.equal((r.connections.close_codes['4110'] ?? 0) + (r.connections.close_codes['1006'] ?? 0), cut);
    // The server's counters say where the loss went, and the parts add up to what the clients missed.
    const { loss } = r.audit;
    assert.equal(loss.lost, r.messages.lost);
    assert.equal(loss.writtenThenCut + loss.droppedCounted + loss.notRecipient, loss.lost);
    assert.ok(loss.writtenThenCut + loss.droppedCounted > 0, JSON.stringify(loss));
    const lostRow = r.audit.rows.find((row) => row.what === 'deliveries lost (until the drain)');
    assert.equal(lostRow?.server, loss.droppedCounted);
    assert.equal(lostRow?.clients, r.messages.lost);
    // Nothing that was not part of the loss differs: connections and inbound frames still match exactly.
    for (const what of ['connections opened', 'connections closed', 'frames received: subscribe', 'events published: http_api']) {
      assert.equal(r.audit.rows.find((row) => row.what === what)?.difference, 0, what);
    }
  });
});

describe('beacon-load fails a run that did not do what it was asked', () => {
  let beacon: BeaconProcess;
  before(async () => {
    beacon = await spawnBeacon({ LOG_LEVEL: 'warn' }); // client events off, as by default
  });
  after(async () => {
    await beacon.stop();
  });

  it('HTTP publishes refused with 401 (a wrong --app-secret): FAILED, nothing delivered', { timeout: 60_000 }, async () => {
    const outcome = await load([
      ...target(beacon), '--sockets', '5', '--rate', '200', '--duration', '1', '--send-rate', '2', '--app-secret', 'wrong',
    ]);
    const r = report(outcome);
    assert.equal(outcome.code, 1, JSON.stringify(r.verdict));
    assert.equal(r.verdict.ok, false);
    assert.ok(r.messages.http_refused > 0 && r.messages.http_refused === r.messages.sent, JSON.stringify(r.messages));
    assert.ok(r.verdict.reasons.some((x) => /HTTP publishes refused \(401×\d+\)/.test(x)), r.verdict.reasons.join('\n'));
    assert.ok(r.verdict.reasons.some((x) => x.startsWith('nothing was delivered')), r.verdict.reasons.join('\n'));
    // The audit agrees with the clients: nothing was published (the server counts 401s elsewhere).
    assert.ok(r.audit !== null);
    assert.deepEqual(r.audit.rows.filter((row) => row.difference !== 0), []);
  });

  it('client events refused with pusher:error 4310 (not enabled): FAILED', { timeout: 60_000 }, async () => {
    const outcome = await load([
      ...target(beacon), '--sockets', '4', '--rate', '200', '--duration', '1', '--send-rate', '2', '--channels', '1',
      '--channel-type', 'private', '--publish-via', 'client',
    ]);
    const r = report(outcome);
    assert.equal(outcome.code, 1, JSON.stringify(r.verdict));
    assert.ok(r.messages.pusher_errors > 0 && r.messages.pusher_errors === r.messages.sent, JSON.stringify(r.messages));
    assert.ok(r.verdict.reasons.some((x) => /pusher:error \(4310×\d+\)/.test(x)), r.verdict.reasons.join('\n'));
    assert.ok(r.verdict.reasons.some((x) => x.startsWith('nothing was delivered')), r.verdict.reasons.join('\n'));
  });

  it('a --metrics that is not Beacon\'s, or a wrong --app-id: could not start (exit 2), not "a telemetry bug"', { timeout: 60_000 }, async () => {
    const healthz = await load([
      '--host', `ws://127.0.0.1:${beacon.port}`, '--metrics', `http://127.0.0.1:${beacon.port}/healthz`, '--json',
      '--sockets', '2', '--rate', '200', '--duration', '1', '--send-rate', '0',
    ]);
    assert.equal(healthz.code, 2, healthz.stdout);
    assert.match(
      healthz.stderr,
      /^beacon-load: could not start: http:\/\/127\.0\.0\.1:\d+\/healthz is not a Beacon \/metrics endpoint: no websocket_build_info or other websocket_\* series \(no Prometheus sample at all\); is --metrics right\?/m,
    );
    assert.equal(healthz.stdout, '');
    const appId = await load([...target(beacon), '--app-id', 'no-such-app', '--sockets', '2', '--rate', '200', '--duration', '1', '--send-rate', '0']);
    assert.equal(appId.code, 2, appId.stdout);
    assert.match(
      appId.stderr,
      /^beacon-load: could not start: http:\/\/127\.0\.0\.1:\d+\/metrics counts no connection of app_id "no-such-app" although 2 connection\(s\) of this run are open \(opened since the run began: app_id="app-id" 2\); is --app-id right\?/m,
    );
    assert.equal(appId.stdout, '');
  });

  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    it(`${signal} during the steady state: the run stops early, reports, verdict "interrupted", exit ${code}`, { timeout: 60_000 }, async () => {
      const running = startLoad([...target(beacon), '--sockets', '5', '--rate', '200', '--duration', '30', '--send-rate', '1']);
      await running.stderrMatches(STEADY);
      running.kill(signal);
      const outcome = await running.done;
      assert.equal(outcome.code, code, outcome.stderr);
      const r = report(outcome);
      assert.deepEqual(r.verdict, { ok: false, interrupted: { by: signal, phase: 'steady' }, reasons: [] });
      assert.ok(r.phases_seconds.steady < 30, `steady ${r.phases_seconds.steady} s`);
      assert.equal(r.connections.close_codes['1000'], 5);
      assert.ok(r.audit !== null);
    });
  }
});

describe('beacon-load against a server that refuses connections at the upgrade (MAX_CONNECTIONS)', () => {
  let beacon: BeaconProcess;
  before(async () => {
    beacon = await spawnBeacon({ MAX_CONNECTIONS: '8', LOG_LEVEL: 'warn' });
  });
  after(async () => {
    await beacon.stop();
  });

  it('the refusals are audited as refusals, not as frames, and --max-error-rate tolerates them', { timeout: 60_000 }, async () => {
    const outcome = await load([
      ...target(beacon), '--sockets', '10', '--rate', '200', '--duration', '1', '--send-rate', '2', '--channels', '2',
      '--max-error-rate', '0.5',
    ]);
    const r = report(outcome);
    assert.equal(r.connections.refused, 2);
    assert.equal(r.connections.close_codes['4100'], 2);
    assert.equal(r.frames.received_on_refused_sockets, 2);
    assert.ok(r.audit !== null);
    assert.deepEqual(r.audit.rows.filter((row) => row.difference !== 0), []);
    const refused = r.audit.rows.find((row) => row.what === 'upgrades refused');
    assert.deepEqual([refused?.server, refused?.clients], [2, 2]);
    assert.equal(outcome.code, 0, JSON.stringify(r.verdict));
    assert.deepEqual(r.verdict, { ok: true, interrupted: null, reasons: [] });
    // Without the tolerance the refused connections fail the run, and only they do.
    const strict = report(await load([...target(beacon), '--sockets', '10', '--rate', '200', '--duration', '0', '--channels', '2']));
    assert.deepEqual(strict.verdict.reasons, ['2 of 10 connections failed (20.00 %, 2 of them refused by the server)']);
    assert.equal(strict.messages.publish_via_reason, '--duration 0: connections only');
  });
});

describe('beacon-load against a server whose frame budget refuses client events (FRAME_RATE_LIMIT_PER_SECOND)', () => {
  let beacon: BeaconProcess;
  before(async () => {
    beacon = await spawnBeacon({ FRAME_RATE_LIMIT_PER_SECOND: '3', APP_ENABLE_CLIENT_EVENTS: 'true', LOG_LEVEL: 'warn' });
  });
  after(async () => {
    await beacon.stop();
  });

  it('the refused frames are audited as the server counts them (received as invalid), not as lost or other load', { timeout: 60_000 }, async () => {
    // Before: "frames received: client_event −N (lost with a connection cut, or a telemetry bug)" and "invalid +N (other
    // clients of this app)", on a server with no other client and no connection cut (a probe).
    const outcome = await load([
      ...target(beacon), '--sockets', '6', '--rate', '100', '--duration', '3', '--send-rate', '8', '--channels', '2',
      '--channel-type', 'private', '--publish-via', 'client',
    ]);
    const r = report(outcome);
    assert.ok(Object.keys(r.errors).some((e) => e.startsWith('pusher:error 4301 Frame rate limit (3/s)')), JSON.stringify(r.errors));
    assert.ok(r.audit !== null);
    assert.deepEqual(r.audit.rows.filter((row) => row.difference !== 0), []);
    const invalid = r.audit.rows.find((row) => row.what === 'frames received: invalid');
    assert.ok(invalid !== undefined && invalid.server > 0, JSON.stringify(invalid));
  });
});

describe('beacon-load while the server goes away', () => {
  it('SIGKILLed mid-run: the clients\' report is printed, the audit could not be done, the steady state ends early, exit 1', { timeout: 60_000 }, async () => {
    const beacon = await spawnBeacon({ LOG_LEVEL: 'warn' });
    try {
      const running = startLoad([...target(beacon), '--sockets', '5', '--rate', '200', '--duration', '30', '--send-rate', '2']);
      await running.stderrMatches(STEADY);
      await beacon.stop('SIGKILL');
      const outcome = await running.done;
      assert.equal(outcome.code, 1, outcome.stderr);
      const r = report(outcome);
      assert.equal(r.audit, null);
      assert.match(r.audit_error ?? '', /cannot read http:\/\/127\.0\.0\.1:\d+\/metrics: ECONNREFUSED/);
      assert.match(r.steady_ended_early ?? '', /no socket left open \(0 of 5\)/);
      assert.ok(r.phases_seconds.steady < 30, `steady ${r.phases_seconds.steady} s`);
      assert.equal(r.connections.closed_during_run, 5);
      assert.equal(r.errors['connection lost (1006, no close frame)'], 5);
      assert.ok(r.messages.received > 0, 'deliveries before the kill are in the report');
      const reasons = r.verdict.reasons.join('\n');
      assert.match(reasons, /^5 of 5 subscribed connections were closed during the run by the server or lost: 1006 \(lost, no close frame\)×5/m);
      assert.match(reasons, /^the steady state ended after [\d.]+ of 30 s: no socket left open/m);
      assert.match(reasons, /^the audit could not be done: cannot read/m);
    } finally {
      await beacon.stop('SIGKILL');
    }
  });

  it('shut down gracefully mid-run (4200): the closes fail the run', { timeout: 60_000 }, async () => {
    const beacon = await spawnBeacon({ LOG_LEVEL: 'warn' });
    try {
      const running = startLoad([
        '--host', `ws://127.0.0.1:${beacon.port}`, '--json', '--sockets', '5', '--rate', '200', '--duration', '30', '--send-rate', '2',
      ]);
      await running.stderrMatches(STEADY);
      await beacon.stop('SIGTERM');
      const outcome = await running.done;
      assert.equal(outcome.code, 1, outcome.stderr);
      const r = report(outcome);
      assert.equal(r.connections.close_codes['4200'], 5);
      assert.ok(r.verdict.reasons.some((x) => /^5 of 5 subscribed connections were closed during the run by the server or lost: 4200×5/.test(x)), r.verdict.reasons.join('\n'));
    } finally {
      await beacon.stop('SIGKILL');
    }
  });
});

describe('beacon-load safety and help', () => {
  it('refuses a host outside loopback without --allow-remote, before connecting anywhere', { timeout: 20_000 }, async () => {
    const outcome = await load(['--host', 'ws://192.0.2.10:6001', '--sockets', '1', '--duration', '1']);
    assert.equal(outcome.code, 2);
    assert.match(outcome.stderr, /192\.0\.2\.10 is not a loopback address.*--allow-remote/);
    assert.equal(outcome.stdout, '');
  });

  it('a --host that does not resolve is said as such, not as "not a loopback address"', { timeout: 20_000 }, async () => {
    const outcome = await load(['--host', 'ws://no-such-host.invalid:6001', '--sockets', '1', '--duration', '1']);
    assert.equal(outcome.code, 2);
    assert.match(outcome.stderr, /^beacon-load: no-such-host\.invalid does not resolve \([A-Z_]+\): is --host right\?$/m);
    assert.doesNotMatch(outcome.stderr, /loopback/);
    assert.equal(outcome.stdout, '');
  });

  it('a negative value and a payload smaller than its header are refused in one beacon-load: line', { timeout: 20_000 }, async () => {
    const negative = await load(['--duration', '-1']);
    assert.equal(negative.code, 2);
    assert.match(negative.stderr, /--duration must be a number ≥ 0, got "-1"/);
    for (const line of negative.stderr.trimEnd().split('\n')) assert.match(line, /^beacon-load: /);
    const small = await load(['--payload-bytes', '10']);
    assert.equal(small.code, 2);
    assert.match(small.stderr, /^beacon-load: --payload-bytes must be an integer ≥ 56/);
  });

  it('nothing listening at --host: stops after the connect phase with exit 2, "could not start"', { timeout: 25_000 }, async () => {
    // A free port nobody listens on. Running the 30 s steady state would outlive this test's 25 s.
    const port = await freePort();
    const outcome = await load(['--host', `ws://127.0.0.1:${port}`, '--sockets', '5', '--duration', '30', '--json']);
    assert.equal(outcome.code, 2, outcome.stderr);
    assert.match(outcome.stderr, /^beacon-load: could not start: none of the 5 sockets could subscribe at ws:\/\/127\.0\.0\.1:\d+ \(5× socket error: ECONNREFUSED\)/m);
    assert.equal(outcome.stdout, '');
  });

  it('SIGINT while sockets still connect to a server that accepts and never answers: exits at once, not after their connect timeout', { timeout: 30_000 }, async () => {
    // A probe: the notice came at once, the exit 8.5 s later (the ramp waited for every socket's 10 s connect timeout).
    const silent = createServer((socket) => socket.on('error', () => undefined));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const port = (silent.address() as AddressInfo).port;
      const running = startLoad(['--host', `ws://127.0.0.1:${port}`, '--sockets', '3', '--rate', '1000', '--duration', '30']);
      await running.stderrMatches(/^\[ramp /m);
      const killedAt = Date.now();
      running.kill('SIGINT');
      const outcome = await running.done;
      const waited = Date.now() - killedAt;
      assert.equal(outcome.code, 130, outcome.stderr);
      assert.ok(waited < 5000, `exited ${waited} ms after SIGINT`);
    } finally {
      silent.close();
    }
  });

  it('rejects an unknown flag or a bad value with exit code 2', { timeout: 20_000 }, async () => {
    const unknown = await load(['--sockets', '1', '--bogus']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /bogus/);
    const bad = await load(['--channel-type', 'secret']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--channel-type must be one of public, private, presence/);
  });

  it('--help explains every flag', { timeout: 20_000 }, async () => {
    const outcome = await load(['--help']);
    assert.equal(outcome.code, 0);
    for (const flag of [
      '--sockets', '--rate', '--duration', '--host', '--send-rate', '--channels', '--channel-type', '--payload-bytes',
      '--json', '--metrics', '--max-error-rate', '--allow-remote', '--app-key', '--app-id', '--app-secret', '--stall',
    ]) {
      assert.match(outcome.stdout, new RegExp(`^  ${flag} `, 'm'), flag);
    }
  });
});
