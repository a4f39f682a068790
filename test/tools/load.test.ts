/**
 * beacon-load against a real Beacon process (telemetry on), run exactly as an operator runs it: `tools/bin/beacon-load.mjs`
 * with flags, its --json report read from stdout. A clean run's audit finds no difference between the server's counters
 * and what the clients saw; a run against a server that cuts slow consumers (a tiny SEND_BUFFER_MAX_BYTES and a socket that
 * stops reading) reports the lost deliveries, and the audit shows where the server counted them.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { spawnBeacon, type BeaconProcess } from '../helpers/beacon-process.js';
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
    assert.deepEqual(r.verdict, { ok: true, reasons: [] });
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

describe('beacon-load safety and help', () => {
  it('refuses a host outside loopback without --allow-remote, before connecting anywhere', { timeout: 20_000 }, async () => {
    const outcome = await load(['--host', 'ws://192.0.2.10:6001', '--sockets', '1', '--duration', '1']);
    assert.equal(outcome.code, 2);
    assert.match(outcome.stderr, /192\.0\.2\.10 is not a loopback address.*--allow-remote/);
    assert.equal(outcome.stdout, '');
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
