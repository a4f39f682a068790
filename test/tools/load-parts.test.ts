/**
 * beacon-load's verdict on its own: a run's tally in, the report's verdict out (tools/load/report.ts). Every count of
 * something that went wrong fails the verdict with one line, each within --max-error-rate the same way (its share of what
 * it is a share of); a run that delivered nothing when messages were due, and an interrupted run, are never "ok".
 * The runs behind these tallies are in load.test.ts, against a real server.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { describe, it, mock } from 'node:test';
import { LoadSocket } from '../../tools/load/load-socket.js';
import { isLoopbackAddress, notLoopback } from '../../tools/load/loopback.js';
import { parseLoadOptions, type LoadOptions } from '../../tools/load/options.js';
import { decodePayload, encodePayload, newRunId } from '../../tools/load/payload.js';
import { buildReport, renderReport } from '../../tools/load/report.js';
import { channelName, checkAppId, restartBetween, type RunResult } from '../../tools/load/run.js';
import { buildAudit } from '../../tools/load/audit.js';
import { parseExposition } from '../../tools/prometheus/exposition.js';
import { Tally } from '../../tools/load/tally.js';
import { drain } from '../../tools/load/wind-down.js';

function options(args: string[] = []): LoadOptions {
  const parsed = parseLoadOptions(['--sockets', '10', '--channels', '2', ...args], {});
  assert.ok(parsed !== null);
  return parsed;
}

/** A healthy HTTP run of 10 subscribed sockets on 2 channels: `messages` publishes, each delivered to 5 sockets. */
function healthyRun(messages: number): RunResult {
  const tally = new Tally();
  tally.attempted = 10;
  tally.established = 10;
  tally.subscribed = 10;
  tally.messagesSent = messages;
  tally.httpAttempted = messages;
  tally.httpPublished = messages;
  tally.expectedDeliveries = messages * 5;
  for (let seq = 1; seq <= messages; seq++) for (let i = 0; i < 5; i++) tally.delivered(seq, 1000);
  return {
    runId: '0a1b2c3d',
    tally,
    publishVia: 'http',
    publishViaReason: 'public channels take no client events',
    startedAt: new Date(0).toISOString(),
    phases: { rampSeconds: 0.1, steadySeconds: 10, drainSeconds: 0.1, closeSeconds: 0.1 },
    before: undefined,
    drained: undefined,
    after: undefined,
    settled: true,
    auditError: undefined,
    due: messages,
    steadyEndedEarly: undefined,
    interrupted: undefined,
  };
}

const verdict = (o: LoadOptions, r: RunResult) => buildReport(o, r, null).verdict;

describe('beacon-load verdict', () => {
  it('a healthy run is ok', () => {
    assert.deepEqual(verdict(options(), healthyRun(100)), { ok: true, interrupted: null, reasons: [] });
  });

  it('HTTP publishes refused (401: a wrong --app-secret) fail it, and nothing delivered fails it whatever the tolerance', () => {
    const r = healthyRun(0);
    r.due = 2;
    r.tally.messagesSent = 2;
    r.tally.httpAttempted = 2;
    r.tally.httpRefused = 2;
    r.tally.httpRefusedStatuses.set(401, 2);
    const v = verdict(options(), r);
    assert.equal(v.ok, false);
    assert.ok(v.reasons.some((x) => /^2 of 2 HTTP publishes refused \(401×2\).*--app-secret/.test(x)), v.reasons.join('\n'));
    assert.ok(v.reasons.some((x) => x.startsWith('nothing was delivered')), v.reasons.join('\n'));
    // Tolerating every refusal still leaves a run that measured nothing.
    const tolerant = verdict(options(['--max-error-rate', '1']), r);
    assert.deepEqual(tolerant.ok, false);
    assert.deepEqual(tolerant.reasons.map((x) => x.split(':')[0]), ['nothing was delivered']);
  });

  it('HTTP publishes that got no answer (ECONNREFUSED) fail it, within --max-error-rate like the other counts', () => {
    const r = healthyRun(100);
    r.due = 110;
    r.tally.messagesSent = 110;
    r.tally.httpAttempted = 110;
    r.tally.httpNoAnswer.set('ECONNREFUSED', 10);
    for (let seq = 101; seq <= 110; seq++) r.tally.unansweredPublish(seq, 5);
    const v = verdict(options(), r);
    assert.equal(v.ok, false);
    assert.deepEqual(v.reasons, ['10 of 110 HTTP publishes got no answer (ECONNREFUSED×10) and none of their deliveries arrived (9.09 %)']);
    assert.equal(verdict(options(['--max-error-rate', '0.1']), r).ok, true);
    assert.equal(verdict(options(['--max-error-rate', '0.05']), r).ok, false);
    // A publish without an answer whose deliveries arrived was accepted: no reason.
    const proven = healthyRun(100);
    proven.tally.httpNoAnswer.set('TimeoutError', 1);
    proven.tally.httpAcceptedUnanswered = 1;
    assert.equal(verdict(options(), proven).ok, true);
  });

  it('subscribed connections closed during the run (1006 lost, 4200 shutdown) fail it, as a share of those subscribed', () => {
    const r = healthyRun(100);
    r.tally.closedDuringRun.set(1006, 1);
    r.tally.closedDuringRun.set(4200, 1);
    const v = verdict(options(), r);
    assert.equal(v.ok, false);
    assert.deepEqual(v.reasons, [
      '2 of 10 subscribed connections were closed during the run by the server or lost: 1006 (lost, no close frame)×1, 4200×1 (20.00 %)',
    ]);
    assert.equal(verdict(options(['--max-error-rate', '0.2']), r).ok, true);
  });

  it('pusher:error answers to client events (4310: not enabled) fail it; the probe answer does not count', () => {
    const r = healthyRun(0);
    r.publishVia = 'client';
    r.due = 9;
    r.tally.messagesSent = 9;
    r.tally.clientEventsRejected = 10; // the probe's answer and the 9 client events
    r.tally.pusherErrors.set('4310', 9);
    const v = verdict(options(), r);
    assert.equal(v.ok, false);
    assert.ok(v.reasons.includes('the server answered 9 pusher:error (4310×9) to 9 client events (100.00 %)'), v.reasons.join('\n'));
    assert.ok(v.reasons.some((x) => x.startsWith('nothing was delivered')), v.reasons.join('\n'));
    // A client run whose only refusal was the probe's is ok.
    const probed = healthyRun(100);
    probed.publishVia = 'client';
    probed.tally.clientEventsRejected = 1;
    assert.equal(verdict(options(), probed).ok, true);
  });

  it('client events due on a closed socket are sends not made: they fail it like skipped sends', () => {
    const r = healthyRun(100);
    r.publishVia = 'client';
    r.due = 120;
    r.tally.skippedSocketClosed = 20;
    const v = verdict(options(), r);
    assert.deepEqual(v.reasons, ['20 of 120 client events were not sent: their socket had closed (16.67 %)']);
    assert.equal(verdict(options(['--max-error-rate', '0.2']), r).ok, true);
  });

  it('a steady state ended early and an audit that could not be done fail it whatever the tolerance', () => {
    const r = healthyRun(100);
    r.steadyEndedEarly = 'ended after 2.1 of 30 s: no socket left open (0 of 10)';
    r.auditError = 'cannot read http://127.0.0.1:1/metrics: ECONNREFUSED (after the drain)';
    const report = buildReport(options(['--max-error-rate', '1', '--metrics', 'http://127.0.0.1:1/metrics']), r, null);
    assert.deepEqual(report.verdict.reasons, [
      'the steady state ended after 2.1 of 30 s: no socket left open (0 of 10)',
      'the audit could not be done: cannot read http://127.0.0.1:1/metrics: ECONNREFUSED (after the drain)',
    ]);
    assert.equal(report.audit_error, r.auditError);
    const text = renderReport(report);
    assert.match(text, /could not be done: cannot read http:\/\/127\.0\.0\.1:1\/metrics: ECONNREFUSED/);
    assert.match(text, /^verdict: FAILED$/m);
  });

  it('a run that was to send messages and owed no delivery measured nothing: FAILED whatever the tolerance, saying why', () => {
    // Client events on channels of one socket each: sent and accepted, no recipient.
    const alone = healthyRun(0);
    alone.publishVia = 'client';
    alone.due = 20;
    alone.tally.messagesSent = 20;
    const o = options(['--sockets', '10', '--channels', '10', '--channel-type', 'private', '--max-error-rate', '1']);
    const v = verdict(o, alone);
    assert.equal(v.ok, false);
    assert.deepEqual(v.reasons, [
      'nothing measured: the 20 client event(s) had no recipient: a client event is not delivered to its sender, and no other socket was subscribed to their channel (--sockets 10 over --channels 10: 1 socket a channel); use fewer --channels',
    ]);
    // No message due at all: 5 sockets × 0.1/s × 1 s.
    const none = healthyRun(0);
    none.due = 0;
    none.tally.subscribed = 5;
    const short = verdict(options(['--sockets', '5', '--duration', '1']), none);
    assert.deepEqual(short.reasons, [
      'nothing measured: no message was due: --sockets 5 × --send-rate 0.1 × --duration 1 s is 0.5 message(s), less than one; raise --duration or --send-rate',
    ]);
    assert.match(renderReport(buildReport(options(['--sockets', '5', '--duration', '1']), none, null)), /^verdict: FAILED\n {2}nothing measured: no message was due/m);
    // Connections only (--send-rate 0) is what was asked: ok.
    const connectionsOnly = healthyRun(0);
    connectionsOnly.publishVia = 'none';
    connectionsOnly.due = 0;
    assert.equal(verdict(options(['--send-rate', '0']), connectionsOnly).ok, true);
  });

  it('an interrupted run is not ok, and says so', () => {
    const r = healthyRun(100);
    r.interrupted = { by: 'SIGINT', phase: 'steady' };
    const report = buildReport(options(), r, null);
    assert.deepEqual(report.verdict, { ok: false, interrupted: { by: 'SIGINT', phase: 'steady' }, reasons: [] });
    assert.match(renderReport(report), /^verdict: interrupted \(SIGINT during the steady state\): the run was cut short$/m);
  });
});

describe('beacon-load latency percentiles', () => {
  it('no percentile is above max: HDR\'s bucket bound is clamped to the largest value recorded', () => {
    // A probe printed "p99 19.807 p99.9 19.807 max 19.805": a percentile answered with its bucket's highest value.
    const r = healthyRun(0);
    for (const us of [1000, 2000, 19_805]) r.tally.latency.recordValue(us);
    r.tally.connectTime.recordValue(24_961);
    const report = buildReport(options(), r, null);
    const latency = report.messages.latency_ms;
    assert.deepEqual([latency.p99, latency.p999, latency.max], [19.805, 19.805, 19.805]);
    assert.equal(latency.p50, 2);
    const connect = report.connections.connect_ms;
    assert.deepEqual([connect.p50, connect.p99, connect.max], [24.961, 24.961, 24.961]);
  });
});

describe('beacon-load run ids', () => {
  it('each run has its own id, in its channel names (short, with the channel type\'s prefix) and in its messages', () => {
    const a = newRunId();
    const b = newRunId();
    assert.match(a, /^[0-9a-f]{8}$/);
    assert.notEqual(a, b);
    assert.equal(channelName({ channelType: 'public', channels: 10 }, a, 13), `beacon-load-${a}-3`);
    const presence = channelName({ channelType: 'presence', channels: 100_000 }, a, 99_999);
    assert.equal(presence, `presence-beacon-load-${a}-99999`);
    assert.ok(presence.length <= 40, presence);
    assert.equal(channelName({ channelType: 'private', channels: 2 }, a, 1), `private-beacon-load-${a}-1`);
    // The message carries the run id: a run tells its own messages from another run's.
    const data = encodePayload(a, 7, 100);
    assert.equal(data.length, 100);
    assert.deepEqual({ ...decodePayload(data), t: 0 }, { r: a, t: 0, s: 7 });
    assert.equal(decodePayload(encodePayload(b, 7, 56))?.r, b);
    assert.ok(encodePayload(a, 9_999_999, 56).length <= 56);
    // A message without a run id (an older beacon-load, anyone's publish) is not a load message of this run.
    assert.equal(decodePayload('{"t":12.5,"s":3,"p":"xx"}'), undefined);
  });
});

describe('beacon-load flags', () => {
  it('--payload-bytes below the header size is refused', () => {
    assert.throws(() => options(['--payload-bytes', '10']), /--payload-bytes must be an integer ≥ 56/);
    assert.equal(options(['--payload-bytes', '56']).payloadBytes, 56);
  });

  it('a --host with credentials, a path or a query is refused naming what to drop', () => {
    // Accepted before: credentials failed every HTTP publish ("got no answer: TypeError", fetch refuses them), a query
    // had the socket's /app/… pasted after it (4005 Path not found).
    assert.throws(() => options(['--host', 'ws://user:pw@127.0.0.1:6001']), /--host must be ws:\/\/host:port only \(no credentials, path or query\), got "ws:\/\/user:pw@127.0.0.1:6001"/);
    assert.throws(() => options(['--host', 'ws://127.0.0.1:6001?x=1']), /--host must be ws:\/\/host:port only/);
    assert.throws(() => options(['--host', 'ws://127.0.0.1:6001/app']), /--host must be ws:\/\/host:port only/);
    assert.throws(() => options(['--host', 'ws://127.0.0.1:6001#f']), /--host must be ws:\/\/host:port only/);
    assert.equal(options(['--host', 'ws://127.0.0.1:6001/']).host, 'ws://127.0.0.1:6001');
  });

  it('--channels above --sockets is reduced to --sockets, with a warning in the report', () => {
    const o = parseLoadOptions(['--sockets', '4', '--channels', '10', '--channel-type', 'private'], {});
    assert.ok(o !== null);
    assert.equal(o.channels, 4);
    assert.deepEqual(o.warnings, [
      '--channels 10 is more than --sockets 4: 4 channel(s) used, one socket each (a client event reaches no one on a channel of one socket: use fewer --channels)',
    ]);
    const report = buildReport(o, healthyRun(10), null);
    assert.deepEqual(report.warnings, o.warnings);
    assert.equal('warnings' in report.options, false);
    assert.match(renderReport(report), /^warning: --channels 10 is more than --sockets 4: 4 channel\(s\) used/m);
    assert.deepEqual(parseLoadOptions(['--sockets', '4', '--channels', '4'], {})?.warnings, []);
  });

  it('the default --channels (10) is cut to fewer --sockets without a warning about a flag nobody gave', () => {
    // `--sockets 5` alone warned "--channels 10 is more than --sockets 5".
    const o = parseLoadOptions(['--sockets', '5'], {});
    assert.equal(o?.channels, 5);
    assert.deepEqual(o?.warnings, []);
    assert.equal(parseLoadOptions(['--sockets', '50'], {})?.channels, 10);
  });

  it('a blank value, a value past what the process can do, a --metrics URL it cannot scrape are refused naming the flag', () => {
    // `--duration=` was read as 0 (a connections-only run, "ok"); huge values ran the process out of memory or timers.
    assert.throws(() => options(['--duration=']), /--duration must be a number ≥ 0, got ""/);
    assert.throws(() => options(['--duration', '3000000']), /--duration must be at most 2147483/);
    assert.throws(() => options(['--sockets', '5000000']), /--sockets must be at most 1000000/);
    assert.throws(() => options(['--payload-bytes', '1000000000']), /--payload-bytes must be at most 10485760/);
    // A send rate past any process's reach made one tick's batch endless: the tool ignored every signal (a probe).
    assert.throws(() => options(['--send-rate', '1e308']), /--send-rate × --sockets must be at most 1000000 messages a second, got 1e308 × 10/);
    assert.equal(options(['--send-rate', '100000']).sendRate, 100000);
    assert.throws(() => options(['--metrics', 'ftp://127.0.0.1:9464/metrics']), /--metrics must be an http:\/\/ or https:\/\/ URL/);
    assert.equal(options(['--metrics', 'http://127.0.0.1:9464/metrics']).metrics, 'http://127.0.0.1:9464/metrics');
  });

  it('a negative value reaches the range check, in one line', () => {
    assert.throws(() => options(['--duration', '-1']), (err: Error) => {
      assert.equal(err.message, '--duration must be a number ≥ 0, got "-1"');
      return true;
    });
    assert.throws(() => options(['--sockets']), (err: Error) => !err.message.includes('\n'));
  });
});

describe('beacon-load audit of frames refused past the frame budget', () => {
  it('a refusal the clients cannot attribute (a pong\'s, taken as a client event\'s) is no difference: kinds as one sum', () => {
    // 13 refusals past the budget: 10 of client events, 3 of pongs (the answer names neither). Counted as 13 client events
    // refused, the audit found client_event +3 and pong −3, published and deliveries +3 (a review).
    const tally = new Tally();
    for (let i = 0; i < 100; i++) tally.sent('client_event');
    for (let i = 0; i < 10; i++) tally.sent('pong');
    tally.clientEventsRejected = 13;
    tally.framesOverBudget = 13;
    tally.expectedDeliveries = 87;
    tally.deliveriesUnexpectedOverBudget = 13;
    // Every event the server published reached its one recipient.
    tally.framesReceived.set('client_event', 90);
    tally.deliveries = 90;
    const scrape = (received: Record<string, number>, published: number, written: number) =>
      parseExposition(
        [
          ...Object.entries(received).map(([kind, n]) => `websocket_messages_received_total{app_id="app-id",kind="${kind}"} ${n}`),
          `websocket_events_published_total{app_id="app-id",source="client_event"} ${published}`,
          `websocket_messages_sent_total{app_id="app-id",kind="client_event"} ${written}`,
          `websocket_message_errors_total{app_id="app-id",reason="frame_rate_limited"} ${published === 0 ? 0 : 13}`,
        ].join('\n') + '\n',
      );
    const before = scrape({ client_event: 0, pong: 0, invalid: 0 }, 0, 0);
    const after = scrape({ client_event: 90, pong: 7, invalid: 13 }, 90, 90);
    const audit = buildAudit(tally, before, after, after, { appId: 'app-id', metricsUrl: 'http://127.0.0.1:1/metrics', settled: true });
    assert.deepEqual(audit.rows.filter((r) => r.difference !== 0).map((r) => `${r.what} ${r.difference}`), []);
    const sum = audit.rows.find((r) => r.what === 'frames received: all kinds');
    assert.deepEqual([sum?.server, sum?.clients], [110, 110]);
    // More than the refusals explain is still a difference.
    const worse = buildAudit(tally, before, scrape({ client_event: 80, pong: 7, invalid: 13 }, 80, 80), scrape({ client_event: 80, pong: 7, invalid: 13 }, 80, 80), {
      appId: 'app-id',
      metricsUrl: 'http://127.0.0.1:1/metrics',
      settled: true,
    });
    assert.deepEqual(
      worse.rows.filter((r) => r.difference !== 0).map((r) => `${r.what} ${r.difference}`),
      [
        'frames received: client_event -7',
        'frames received: all kinds -10',
        'frames sent: client_event -10',
        'events published: client_event -7',
        'deliveries accounted for (until the drain) -7',
      ],
    );
  });
});

describe('beacon-load audit across a server restart', () => {
  it('a scrape of another process is told apart: a new process_start_time_seconds, or a counter that went down', () => {
    // The audit subtracted the new process's counters from the old one's: every row "a telemetry bug" or "lost silently".
    const scrapeOf = (started: number, opened: number) =>
      parseExposition(
        `process_start_time_seconds ${started}\nwebsocket_connections_opened_total{app_id="app-id"} ${opened}\n`,
      );
    assert.equal(restartBetween(scrapeOf(100, 5), scrapeOf(100, 50)), undefined);
    assert.equal(restartBetween(scrapeOf(100, 5), scrapeOf(160, 50)), 'a new process_start_time_seconds');
    assert.equal(
      restartBetween(parseExposition('websocket_connections_opened_total{app_id="app-id"} 40\n'), parseExposition('websocket_connections_opened_total{app_id="app-id"} 3\n')),
      'websocket_connections_opened_total went down',
    );
    assert.equal(restartBetween(scrapeOf(100, 5), undefined), undefined);
  });
});

describe('beacon-load sockets that never open', () => {
  it('a connect timeout is one error and no close code; a refused connection is its error and no close code', async () => {
    // The timeout was counted twice (ws also said "closed before the connection was established") and as a 1006,
    // "connection lost", for a connection that never was.
    const silent = createServer(() => undefined);
    silent.listen(0, '127.0.0.1');
    await once(silent, 'listening');
    const port = (silent.address() as AddressInfo).port;
    const plan = (url: string) => ({ index: 0, runId: 'r', url, channel: 'c', appKey: 'k', appSecret: 's' });
    try {
      const tally = new Tally();
      // Given up while its upgrade waits for an answer that never comes (the server only accepted the TCP connection).
      const socket = new LoadSocket(plan(`ws://127.0.0.1:${port}/app/k`), tally);
      await once(silent, 'connection');
      socket.timeOut();
      await socket.closed;
      assert.deepEqual([...tally.errors], [['connect timeout', 1]]);
      assert.deepEqual([...tally.closeCodes], []);
    } finally {
      silent.close();
    }
    const tally = new Tally();
    const refused = new LoadSocket(plan(`ws://127.0.0.1:${port}/app/k`), tally);
    await refused.closed;
    assert.deepEqual([...tally.errors], [['socket error: ECONNREFUSED', 1]]);
    assert.deepEqual([...tally.closeCodes], []);
  });
});

describe('beacon-load loopback check', () => {
  it('an IPv4-mapped loopback address is loopback however the URL parser writes it; its neighbours are not', async () => {
    // ws://[::ffff:127.0.0.1]:PORT reaches the tool as [::ffff:7f00:1]: it was refused as "not a loopback address".
    const hostname = new URL('ws://[::ffff:127.0.0.1]:19001').hostname;
    assert.equal(hostname, '[::ffff:7f00:1]');
    assert.equal(await notLoopback(hostname), undefined);
    for (const a of ['127.0.0.1', '127.255.255.254', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', '::ffff:7f00:1', '::ffff:7fff:ffff']) {
      assert.equal(isLoopbackAddress(a), true, a);
    }
    for (const a of ['128.0.0.1', '126.255.255.255', '::2', '::7f00:1', '::ffff:8000:1', '::ffff:c000:20a', 'localhost', '']) {
      assert.equal(isLoopbackAddress(a), false, a);
    }
    assert.match((await notLoopback('[::ffff:c000:20a]')) ?? '', /is not a loopback address/);
  });
});

describe('beacon-load drain after HTTP publishes that got no answer', () => {
  const metricsUrl = 'http://127.0.0.1:19464/metrics';
  /** /metrics (fetch stubbed: no server) counting `published()` events of the app; returns how many times it was read. */
  function standInMetrics(published: () => number): { scrapes: () => number; restore: () => void } {
    let scrapes = 0;
    const stub = mock.method(globalThis, 'fetch', async () => {
      scrapes++;
      return new Response(`websocket_events_published_total{app_id="app-id",source="http_api"} ${published()}\n`);
    });
    return { scrapes: () => scrapes, restore: () => stub.mock.restore() };
  }
  const failed = (causes: Record<string, number>): Tally => {
    const tally = new Tally();
    for (const [cause, n] of Object.entries(causes)) {
      tally.httpNoAnswer.set(cause, n);
      tally.httpAttempted += n;
    }
    return tally;
  };

  it('publishes that failed before reaching the server (EMFILE, ECONNREFUSED) are not owed: the drain does not wait 30 s for them', { timeout: 40_000 }, async () => {
    // A probe under `ulimit -n 120`: 143 publishes failed with EMFILE, and the drain waited its whole 30 s for the server
    // to count them as published.
    const metrics = standInMetrics(() => 2);
    try {
      const tally = failed({ EMFILE: 140, ECONNREFUSED: 3 });
      tally.httpAttempted += 2;
      tally.httpPublished = 2;
      const started = performance.now();
      const drained = await drain(options(['--metrics', metricsUrl]), 'http', tally, undefined);
      assert.equal(drained.error, undefined);
      assert.ok(performance.now() - started < 2000, `drained in ${Math.round(performance.now() - started)} ms`);
    } finally {
      metrics.restore();
    }
  });

  it('a publish that timed out or was reset may have reached the server: the drain waits until the server counts it', { timeout: 40_000 }, async () => {
    const metrics = standInMetrics(() => (metrics.scrapes() >= 4 ? 2 : 0));
    try {
      const drained = await drain(options(['--metrics', metricsUrl]), 'http', failed({ TimeoutError: 1, ECONNRESET: 1 }), undefined);
      assert.equal(drained.error, undefined);
      // Three scrapes counted nothing yet; the fourth counted both, and the drain's own last scrape follows.
      assert.equal(metrics.scrapes(), 5);
    } finally {
      metrics.restore();
    }
  });
});

describe('beacon-load could not start: the run\'s connections are not in --metrics', () => {
  const url = 'http://127.0.0.1:19464/metrics';
  const before = parseExposition('websocket_connections_opened_total{app_id="app-id"} 10\n');
  /** Why checkAppId refused, against a /metrics (fetch stubbed: no server) answering `page`. */
  async function refusal(page: string): Promise<string> {
    const stub = mock.method(globalThis, 'fetch', async () => new Response(page));
    try {
      await checkAppId(url, 'app-id', before, 5);
    } catch (err) {
      return (err as Error).message;
    } finally {
      stub.mock.restore();
    }
    return 'not refused';
  }

  it('a node that counted no connection at all is named as another node than --host\'s, not as a wrong --app-id', { timeout: 10_000 }, async () => {
    // A probe with --metrics of another node: "is --app-id right?", while --app-id was right and --metrics was not.
    const other = await refusal('target_info{service_instance_id="node-b"} 1\nwebsocket_connections_opened_total{app_id="app-id"} 10\n');
    assert.match(other, /counts no connection of app_id "app-id" although 5 connection\(s\) of this run are open \(opened since the run began: none\); does --metrics read another node than the one --host reaches \(it reads node-b\)\?/);
    assert.doesNotMatch(other, /--app-id right/);
  });

  it('this run\'s connections under another app id: a wrong --app-id first, the other node as the other possibility', { timeout: 10_000 }, async () => {
    const wrongId = await refusal('websocket_connections_opened_total{app_id="app-id"} 10\nwebsocket_connections_opened_total{app_id="real"} 5\n');
    assert.match(wrongId, /\(opened since the run began: app_id="real" 5\); is --app-id right\? \(--app-key chose the app; .*\) Or does --metrics read another node than the one --host reaches\?$/);
  });
});
