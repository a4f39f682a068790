/**
 * beacon-monitor's parts on their own: quantiles from cumulative buckets as PromQL computes them, which log lines count as
 * problems, and the Loki source's query_range polling (against a stand-in answering Loki's HTTP API on 127.0.0.1: no
 * Loki runs on the test machine) — the LogQL query, nanosecond bounds, and no line reported twice across polls; against a
 * Loki that accepts connections and never answers, one poll at a time and a stop bounded by its deadline; and what the
 * summary says when the log source never answered, and about the refusals /metrics counted.
 */
import assert from 'node:assert/strict';
import { appendFile, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { test } from 'node:test';
import { histogramQuantile } from '../../tools/monitor/histogram-quantile.js';
import { parseLogLine, type LogEvent } from '../../tools/monitor/log-line.js';
import { followFile, followLoki, followStream } from '../../tools/monitor/log-sources.js';
import { DEFAULT_LOKI_QUERY, parseMonitorOptions } from '../../tools/monitor/options.js';
import { createRenderer } from '../../tools/monitor/render.js';
import { buildSnapshot } from '../../tools/monitor/snapshot.js';
import { SummaryBuilder } from '../../tools/monitor/summary.js';
import { parseExposition, sum, sumBy } from '../../tools/prometheus/exposition.js';
import { until } from '../helpers/wait.js';

test('histogramQuantile interpolates inside the bucket the rank falls in, like histogram_quantile()', () => {
  const buckets = [
    { le: 0.001, count: 10 },
    { le: 0.01, count: 20 },
    { le: Number.POSITIVE_INFINITY, count: 20 },
  ];
  assert.equal(histogramQuantile(0.5, buckets), 0.001);
  assert.ok(Math.abs((histogramQuantile(0.99, buckets) as number) - 0.00982) < 1e-12);
  assert.equal(histogramQuantile(0.25, buckets), 0.0005);
  // A rank in the +Inf bucket answers the highest finite bound; no observation, no quantile.
  assert.equal(histogramQuantile(0.99, [{ le: 0.1, count: 1 }, { le: Number.POSITIVE_INFINITY, count: 10 }]), 0.1);
  assert.equal(histogramQuantile(0.5, [{ le: 0.1, count: 0 }, { le: Number.POSITIVE_INFINITY, count: 0 }]), undefined);
});

test('the exposition parser reads labels, escapes and +Inf', () => {
  const scrape = parseExposition(
    [
      '# HELP websocket_connections Open connections now',
      '# TYPE websocket_connections gauge',
      'websocket_connections{app_id="a"} 3',
      'websocket_connections{app_id="b"} 4',
      'x_bucket{le="+Inf",note="say \\"hi\\""} 7 1700000000000',
    ].join('\n'),
  );
  assert.equal(sum(scrape, 'websocket_connections'), 7);
  assert.equal(sum(scrape, 'websocket_connections', { app_id: 'b' }), 4);
  assert.deepEqual([...sumBy(scrape, 'websocket_connections', 'app_id')], [['a', 3], ['b', 4]]);
  assert.deepEqual(scrape.samples[2]?.labels, { le: '+Inf', note: 'say "hi"' });
});

test('err/s counts every refusal counter by reason: frames, handshakes, API signatures and checks, HTTP parsing, abnormal closes', () => {
  const scrape = (at: number, n: number) =>
    parseExposition(
      [
        `websocket_message_errors_total{reason="too_large"} ${n}`,
        `websocket_connections_rejected_total{reason="bad_handshake"} ${n}`,
        `websocket_api_auth_failures_total{reason="bad_signature"} ${n}`,
        `websocket_api_refusals_total{reason="invalid_json"} ${n}`,
        `websocket_api_refusals_total{reason="data_too_large"} 0`,
        `websocket_http_malformed_requests_total{reason="pipelined"} ${n}`,
        `websocket_connections_closed_total{reason="client_close",code="1000"} ${n}`,
        `websocket_connections_closed_total{reason="pong_timeout",code="4201"} ${n}`,
      ].join('\n'),
      at,
    );
  const probe = { status: 200 };
  const snapshot = buildSnapshot({ cur: scrape(12_000, 30), prev: scrape(2_000, 10), metricsError: undefined, healthz: probe, readyz: probe, stack: undefined });
  assert.deepEqual(snapshot.errorsByReason, {
    'frame:too_large': 2,
    'rejected:bad_handshake': 2,
    'api_auth:bad_signature': 2,
    'api:invalid_json': 2,
    'http:pipelined': 2,
    'closed:pong_timeout': 2,
  });
  assert.equal(snapshot.errorsPerSecond, 12);
});

test('log lines: warn and worse from JSON (word or pino number) or text; the rest is ignored', () => {
  const at = new Date('2026-01-01T00:00:00Z');
  assert.deepEqual(parseLogLine('{"level":"error","time":"2026-02-02T00:00:00.000Z","event":"adapter_down","msg":"gone"}', at), {
    time: '2026-02-02T00:00:00.000Z',
    level: 'error',
    event: 'adapter_down',
    message: 'gone',
    key: 'error adapter_down: gone',
  });
  assert.equal(parseLogLine('{"level":40,"msg":"slow"}', at)?.level, 'warn');
  assert.equal(parseLogLine('{"level":60,"msg":"dead"}', at)?.level, 'fatal');
  assert.equal(parseLogLine('{"level":"info","msg":"fine"}', at), undefined);
  assert.equal(parseLogLine('{"level":30,"msg":"error in the message of an info line"}', at), undefined);
  assert.equal(parseLogLine('2026 WARNING disk almost full', at)?.level, 'warn');
  assert.equal(parseLogLine('all good', at), undefined);
  assert.equal(parseLogLine('', at), undefined);
});

test('--loki polls query_range with the LogQL selector and nanosecond bounds, and reports each line once', { timeout: 20_000 }, async () => {
  const requests: URLSearchParams[] = [];
  const t0 = BigInt(Date.now()) * 1_000_000n + 1_000_000_000n; // a second from now: inside every poll's window
  const line = (n: number, level: string) => JSON.stringify({ level, time: new Date().toISOString(), event: `e${n}`, msg: `line ${n}` });
  // The stand-in answers every poll with everything it holds: the source must skip what it already reported.
  const held: Array<[string, string]> = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname !== '/loki/api/v1/query_range') {
      res.writeHead(404).end();
      return;
    }
    requests.push(url.searchParams);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ status: 'success', data: { resultType: 'streams', result: [{ stream: { level: 'error' }, values: held }] } }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const events: LogEvent[] = [];
  const problems: string[] = [];
  const source = followLoki(`http://127.0.0.1:${port}`, DEFAULT_LOKI_QUERY, (e) => events.push(e), (p) => problems.push(p));
  try {
    held.push([String(t0), line(1, 'error')], [String(t0), line(2, 'warn')]);
    await until(() => events.length >= 2, 'the first two lines', 8000);
    held.push([String(t0 + 5n), line(3, 'error')]);
    const polls = requests.length;
    await until(() => requests.length >= polls + 2, 'two more polls', 8000);
  } finally {
    await source.stop(Date.now() + 1000);
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
  assert.deepEqual(problems, []);
  assert.deepEqual(events.map((e) => `${e.level} ${e.event}`), ['error e1', 'warn e2', 'error e3']);
  const first = requests[0] as URLSearchParams;
  assert.equal(first.get('query'), '{service_name="beacon", level=~"warn|error|fatal"}');
  assert.equal(first.get('direction'), 'forward');
  assert.match(first.get('start') ?? '', /^\d{19}$/);
  assert.ok(BigInt(first.get('end') ?? '0') >= BigInt(first.get('start') ?? '0'));
  // After a line is seen, polls start at its timestamp (lines at that same nanosecond are deduplicated).
  assert.equal(requests[requests.length - 1]?.get('start'), String(t0 + 5n));
});

/** A Loki stand-in that accepts every request and never answers; counts the requests. */
async function silentLoki(): Promise<{ url: string; requests: () => number; close: () => Promise<void> }> {
  let requests = 0;
  const server = createServer(() => {
    requests++;
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests: () => requests,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

test('--loki that never answers: no second poll while one waits (ticks skipped and counted), stop ends at its deadline', { timeout: 20_000 }, async () => {
  const loki = await silentLoki();
  const problems: string[] = [];
  const source = followLoki(loki.url, DEFAULT_LOKI_QUERY, () => {}, (p) => problems.push(p), { everyMs: 20, timeoutMs: 60_000 });
  try {
    await until(() => source.status().skippedPolls >= 5, 'five ticks skipped behind the waiting poll', 8000);
    assert.equal(loki.requests(), 1, 'one request, not one per tick');
    const stopping = Date.now();
    await source.stop(stopping + 200);
    const took = Date.now() - stopping;
    assert.ok(took >= 150 && took < 1000, `stop took ${took} ms for a 200 ms deadline`);
  } finally {
    await loki.close();
  }
  const st = source.status();
  assert.equal(st.polls, 1);
  assert.equal(st.failedPolls, 1);
  assert.equal(st.unansweredAtEnd, true);
  assert.equal(st.lastError, 'no answer by the end of the run');
  assert.match(st.failingSince ?? '', /^\d{4}-\d\d-\d\dT/);
  // Said once, not once per skipped tick; nothing said after the end.
  assert.equal(problems.length, 1, problems.join('\n'));
  assert.match(problems[0] as string, /^loki http:\/\/127\.0\.0\.1:\d+: a poll is still waiting for an answer \(since \d\d:\d\d:\d\d\); later ones are skipped/);
});

test('--loki polls that time out are not queued: every request is a counted poll, the ticks between them skipped', { timeout: 20_000 }, async () => {
  const loki = await silentLoki();
  const problems: string[] = [];
  const source = followLoki(loki.url, DEFAULT_LOKI_QUERY, () => {}, (p) => problems.push(p), { everyMs: 20, timeoutMs: 1100 });
  try {
    await until(() => source.status().failedPolls >= 2, 'two polls timed out', 8000);
    const st = source.status();
    assert.ok(st.skippedPolls >= 3, `skipped ${st.skippedPolls}`);
    assert.ok(loki.requests() <= st.polls, `${loki.requests()} requests for ${st.polls} polls`);
    assert.equal(st.lastError, 'no answer in 1.1 s');
  } finally {
    await source.stop(Date.now());
    await loki.close();
  }
  // Each message once per episode: the timeout and the skipping, not once per poll (polls over 1 s apart say a different
  // "since": still said once).
  assert.deepEqual(
    problems.map((p) => p.replace(/\(since [\d:]+\)/, '(since …)').replace(/^loki \S+: /, '')),
    ['a poll is still waiting for an answer (since …); later ones are skipped until it ends', 'no answer in 1.1 s'],
  );
});

/** The plain renderer's summary lines for `summary`. */
function summaryText(summary: SummaryBuilder, end: Parameters<SummaryBuilder['build']>[0]): string {
  let text = '';
  const out = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text += chunk.toString();
      done();
    },
  });
  createRenderer('plain', out, {}).summary(summary.build(end));
  return text;
}

test('summary: a log source that never answered is said, not read as "0 error, distinct errors: none"', () => {
  const lokiDown = {
    source: 'loki http://127.0.0.1:3100',
    polls: 3,
    failedPolls: 3,
    skippedPolls: 4,
    failingSince: '2026-01-01T10:00:02.000Z',
    lastError: 'no answer by the end of the run',
    unansweredAtEnd: true,
  };
  const dead = summaryText(new SummaryBuilder(), { logSources: [lokiDown], unansweredAtEnd: ['http://127.0.0.1:9464/metrics', lokiDown.source] });
  assert.match(dead, /^ {2}no answer by the end \(aborted\): http:\/\/127\.0\.0\.1:9464\/metrics, loki http:\/\/127\.0\.0\.1:3100$/m);
  assert.match(
    dead,
    /^ {2}log lines: unknown, no log source answered: loki http:\/\/127\.0\.0\.1:3100 not answering since 10:00:02, the whole run: 3 of 3 polls failed, 4 skipped while one was waiting; last: no answer by the end of the run$/m,
  );
  assert.match(dead, /^ {2}distinct errors: unknown$/m);
  assert.doesNotMatch(dead, /0 fatal, 0 error, 0 warn|distinct errors: none/);

  // Down for part of the run: the counts, marked incomplete.
  const partly = new SummaryBuilder();
  partly.log({ time: '2026-01-01T10:00:01.000Z', level: 'error', event: 'x', message: 'y', key: 'error x: y' });
  const text = summaryText(partly, { logSources: [{ ...lokiDown, polls: 10, failedPolls: 3, unansweredAtEnd: false }], unansweredAtEnd: [] });
  assert.match(text, /^ {2}log lines: 0 fatal, 1 error, 0 warn \(incomplete: loki \S+ not answering since 10:00:02: 3 of 10 polls failed, 4 skipped/m);
  assert.match(text, /distinct errors \(1\):/);

  // No log source at all: said, not "none".
  const none = summaryText(new SummaryBuilder(), { logSources: [], unansweredAtEnd: [] });
  assert.match(none, /^ {2}log lines: none followed \(no --loki or --log-file\)$/m);
  assert.doesNotMatch(none, /distinct errors: none/);
});

test('--log-file -: stdin that ends is said in the summary, not read as "0 error" (unknown when it ended before any line)', async () => {
  // `beacon-monitor --log-file - < /dev/null` summed up "log lines: 0 fatal, 0 error, 0 warn": an all-clear from nothing.
  const empty = new PassThrough();
  const problems: string[] = [];
  const deaf = followStream(empty, () => {}, (m) => problems.push(m));
  empty.end();
  await until(() => deaf.status().ended !== undefined, 'the end of an empty stdin');
  assert.deepEqual(problems, ['stdin: input ended after 0 line(s); later log lines are not read']);
  await deaf.stop(Date.now());
  const nothing = summaryText(new SummaryBuilder(), { logSources: [deaf.status()], unansweredAtEnd: [] });
  assert.match(nothing, /^ {2}log lines: unknown, no log source answered: stdin ended at \d\d:\d\d:\d\d after 0 line\(s\): nothing later was read$/m);
  assert.match(nothing, /^ {2}distinct errors: unknown$/m);

  // Lines, then the end (the writer died): the counts, marked incomplete.
  const input = new PassThrough();
  const summary = new SummaryBuilder();
  const partly = followStream(input, (e) => summary.log(e));
  input.end('{"level":"error","event":"x","msg":"y"}\nan info line\n');
  await until(() => partly.status().ended !== undefined, 'the end of stdin');
  await partly.stop(Date.now());
  const text = summaryText(summary, { logSources: [partly.status()], unansweredAtEnd: [] });
  assert.match(text, /^ {2}log lines: 0 fatal, 1 error, 0 warn \(incomplete: stdin ended at [\d:]+ after 2 line\(s\): nothing later was read\)$/m);

  // Stopped by the monitor while still open: no end said.
  const open = new PassThrough();
  const running = followStream(open, () => {});
  await running.stop(Date.now());
  assert.equal(running.status().ended, undefined);
  assert.match(summaryText(new SummaryBuilder(), { logSources: [running.status()], unansweredAtEnd: [] }), /^ {2}log lines: 0 fatal, 0 error, 0 warn$/m);
});

test('summary: the refusals /metrics counted (logged at info, so not among the log lines) are named with their counts', () => {
  const scrape = (at: number, n: number) =>
    parseExposition([`websocket_connections_rejected_total{reason="unknown_app"} ${n}`, `websocket_api_auth_failures_total{reason="bad_signature"} ${n > 0 ? 1 : 0}`].join('\n'), at);
  const probe = { status: 200 };
  const summary = new SummaryBuilder();
  const first = scrape(0, 0);
  summary.snapshot(buildSnapshot({ cur: first, prev: undefined, metricsError: undefined, healthz: probe, readyz: probe, stack: undefined }));
  summary.snapshot(buildSnapshot({ cur: scrape(10_000, 3), prev: first, metricsError: undefined, healthz: probe, readyz: probe, stack: undefined }));
  summary.snapshot(buildSnapshot({ cur: scrape(13_000, 7), prev: scrape(10_000, 3), metricsError: undefined, healthz: probe, readyz: probe, stack: undefined }));
  const stdin = { source: 'stdin', polls: 0, failedPolls: 0, skippedPolls: 0, failingSince: undefined, lastError: undefined, unansweredAtEnd: false };
  assert.deepEqual(summary.build({ logSources: [stdin], unansweredAtEnd: [] }).errorsByReason, { 'rejected:unknown_app': 7, 'api_auth:bad_signature': 1 });
  const text = summaryText(summary, { logSources: [stdin], unansweredAtEnd: [] });
  assert.match(
    text,
    /^ {2}errors in \/metrics: rejected:unknown_app 7, api_auth:bad_signature 1 \(refusals a client caused are logged at info: not among the log lines\)\n {2}log lines: 0 fatal, 0 error, 0 warn\n {2}distinct errors: none$/m,
  );
});

test('summary: totals add up the steps between scrapes and read a restart from zero, and the restart is said', () => {
  const scrape = (at: number, opened: number, sent: number, startedAt = 1000) =>
    parseExposition(
      [
        `process_start_time_seconds ${startedAt}`,
        `websocket_connections_opened_total{app_id="a"} ${opened}`,
        `websocket_messages_sent_total{app_id="a",kind="protocol"} ${sent}`,
      ].join('\n'),
      at,
    );
  // 100 → 150, the target restarts (30 since), then 30 → 40: 50 + 30 + 10 = 90 opened (last − first said 0).
  const restarted = new SummaryBuilder('http://127.0.0.1:9464/metrics');
  restarted.scrape(scrape(Date.parse('2026-01-01T10:00:00Z'), 100, 500));
  restarted.scrape(scrape(Date.parse('2026-01-01T10:00:10Z'), 150, 600));
  restarted.scrape(scrape(Date.parse('2026-01-01T10:00:20Z'), 30, 40, 1015));
  restarted.scrape(scrape(Date.parse('2026-01-01T10:00:30Z'), 40, 50, 1015));
  const summary = restarted.build();
  assert.equal(summary.totals?.connections_opened, 90);
  assert.equal(summary.totals?.messages_sent, 100 + 40 + 10);
  assert.deepEqual(summary.restarts, { target: 'http://127.0.0.1:9464/metrics', count: 1, at: ['2026-01-01T10:00:20.000Z'] });
  const text = summaryText(restarted, { logSources: [], unansweredAtEnd: [] });
  assert.match(text, /^ {2}totals: connections_opened 90, connections_closed 0, connections_rejected 0, messages_received 0, messages_sent 150,/m);
  assert.match(text, /^ {2}restarts: http:\/\/127\.0\.0\.1:9464\/metrics restarted 1 time\(s\) during the run \(seen at 10:00:20\); the totals count each restarted counter from zero$/m);

  // Without a start time, a counter that went down is the restart; one that is back above its old value (the new process
  // did more than the old one had) is still read from zero when the start time says so.
  const noStartTime = new SummaryBuilder();
  for (const [at, n] of [[0, 100], [10_000, 150], [20_000, 30]] as const) {
    noStartTime.scrape(parseExposition(`websocket_connections_opened_total{app_id="a"} ${n}`, at));
  }
  assert.equal(noStartTime.build().totals?.connections_opened, 80);
  assert.equal(noStartTime.build().restarts.count, 1);
  const busyAfter = new SummaryBuilder();
  busyAfter.scrape(scrape(0, 100, 0));
  busyAfter.scrape(scrape(10_000, 120, 0, 1009));
  assert.equal(busyAfter.build().totals?.connections_opened, 120);

  // No restart: the steps, and nothing said.
  const steady = new SummaryBuilder();
  steady.scrape(scrape(0, 100, 0));
  steady.scrape(scrape(10_000, 130, 0));
  assert.equal(steady.build().totals?.connections_opened, 30);
  assert.equal(steady.build().restarts.count, 0);
  assert.doesNotMatch(summaryText(steady, { logSources: [], unansweredAtEnd: [] }), /restart/);
});

test('snapshots across a restart read each counter as the summary does: the new value is the increase since', () => {
  // A probe: 5 refusals before a kill -9, 8 after the restart; the totals said 8, the rates and "errors in /metrics" 3
  // (8 − 5: a restarted counter above its old value was read as a step).
  const scrape = (at: number, startedAt: number, rejected: number, opened: number, buckets: [string, number][]) =>
    parseExposition(
      [
        `process_start_time_seconds ${startedAt}`,
        `websocket_connections_rejected_total{reason="unknown_app"} ${rejected}`,
        `websocket_connections_opened_total{app_id="a"} ${opened}`,
        ...buckets.map(([le, n]) => `websocket_broadcast_duration_seconds_bucket{app_id="a",le="${le}"} ${n}`),
      ].join('\n'),
      at,
    );
  const probe = { status: 200 };
  const before = scrape(0, 1000, 5, 40, [['0.001', 100], ['0.1', 100], ['+Inf', 100]]);
  const after = scrape(10_000, 1008, 8, 50, [['0.001', 0], ['0.1', 120], ['+Inf', 120]]);
  const summary = new SummaryBuilder();
  for (const [cur, prev] of [[before, undefined], [after, before]] as const) {
    summary.scrape(cur);
    summary.snapshot(buildSnapshot({ cur, prev, metricsError: undefined, healthz: probe, readyz: probe, stack: undefined }));
  }
  const snapshot = buildSnapshot({ cur: after, prev: before, metricsError: undefined, healthz: probe, readyz: probe, stack: undefined });
  assert.equal(snapshot.connectsPerSecond, 5);
  assert.deepEqual(snapshot.errorsByReason, { 'rejected:unknown_app': 0.8 });
  // The interval's observations are the new process's 120, all in (0.001, 0.1]: not 20 less a negative bucket.
  assert.ok(Math.abs((snapshot.broadcastP50Ms as number) - 50.5) < 1e-9, String(snapshot.broadcastP50Ms));
  const built = summary.build();
  assert.equal(built.totals?.connections_rejected, 8);
  assert.deepEqual(built.errorsByReason, { 'rejected:unknown_app': 8 });
});

test('summary: the peak broadcast p99 is of the intervals watched, not of what the first scrape held since the process started', () => {
  // A probe: an idle node watched for a few seconds; every snapshot after the first had no broadcast, the summary said
  // 5.07 ms — days of history on a node up for days.
  const scrape = (at: number, slow: number) =>
    parseExposition(
      [
        `process_start_time_seconds 1000`,
        `websocket_broadcast_duration_seconds_bucket{app_id="a",le="0.001"} 10`,
        `websocket_broadcast_duration_seconds_bucket{app_id="a",le="0.1"} ${10 + slow}`,
        `websocket_broadcast_duration_seconds_bucket{app_id="a",le="+Inf"} ${10 + slow}`,
      ].join('\n'),
      at,
    );
  const probe = { status: 200 };
  const summary = new SummaryBuilder();
  const scrapes = [scrape(0, 90), scrape(1000, 90), scrape(2000, 90)];
  scrapes.forEach((cur, i) => summary.snapshot(buildSnapshot({ cur, prev: scrapes[i - 1], metricsError: undefined, healthz: probe, readyz: probe, stack: undefined })));
  assert.equal(summary.build().peaks.broadcastP99Ms, undefined);
  // A broadcast in an interval watched is the peak.
  const later = scrape(3000, 91);
  summary.snapshot(buildSnapshot({ cur: later, prev: scrapes[2], metricsError: undefined, healthz: probe, readyz: probe, stack: undefined }));
  assert.ok((summary.build().peaks.broadcastP99Ms as number) > 1);
});

test('beacon-monitor: [seconds] and --interval past what a timer holds, or blank, are refused', () => {
  // 3 000 000 s overflowed Node's timer: the watch ended at once, and as an interval ran snapshots back to back.
  assert.throws(() => parseMonitorOptions(['3000000'], false), /\[seconds\] must be a number from 0 to 2147483, got "3000000"/);
  assert.throws(() => parseMonitorOptions(['--interval', '3000000'], false), /--interval must be a number of seconds from 0\.1 to 2147483/);
  assert.throws(() => parseMonitorOptions(['--interval='], false), /--interval must be a number of seconds/);
  assert.equal(parseMonitorOptions(['2147483', '--interval', '60'], false)?.seconds, 2147483);
});

test('beacon-monitor: a URL flag in a scheme it cannot fetch is a usage error, as beacon-load says it', () => {
  // Parsed as URLs, these ran the whole watch with every snapshot "metrics_error=TypeError" and exit 0.
  assert.throws(() => parseMonitorOptions(['--metrics', 'ftp://127.0.0.1/x'], false), /--metrics must be an http:\/\/ or https:\/\/ URL such as http:\/\/127\.0\.0\.1:9464\/metrics, got "ftp:\/\/127\.0\.0\.1\/x"/);
  assert.throws(() => parseMonitorOptions(['--host', 'foo:bar'], false), /--host must be an http:\/\/, https:\/\/, ws:\/\/ or wss:\/\/ URL/);
  assert.throws(() => parseMonitorOptions(['--loki', 'file:///tmp/x'], false), /--loki must be an http:\/\/ or https:\/\/ URL/);
  assert.throws(() => parseMonitorOptions(['--metrics', 'not a url'], false), /--metrics must be/);
  const ok = parseMonitorOptions(['--metrics', 'https://127.0.0.1:9464/metrics', '--host', 'ws://127.0.0.1:6001/', '--loki', 'http://127.0.0.1:3100'], false);
  assert.equal(ok?.httpUrl, 'http://127.0.0.1:6001');
});

test('--log-file across a rotation: the old file\'s last lines, then the new file from its start, even when it is longer', async () => {
  // Read by size alone, a new file already longer than the old one's read offset was read from that offset on: its first
  // lines were lost without a word (a probe: 3 of 6 lines of the new file reported).
  const dir = await mkdtemp(join(tmpdir(), 'beacon-monitor-rotation-'));
  const file = join(dir, 'beacon.log');
  const line = (msg: string) => `${JSON.stringify({ level: 'error', time: new Date().toISOString(), msg })}\n`;
  await writeFile(file, line('before the start'));
  const seen: string[] = [];
  const problems: string[] = [];
  const source = await followFile(file, (e) => seen.push(e.message), (p) => problems.push(p));
  try {
    await appendFile(file, line('old 1'));
    await until(() => seen.length === 1, 'the appended line');
    // Appended and rotated before the next poll: `mv` then a new, longer file. The old file's last line has no newline.
    await appendFile(file, line('old 2') + line('old 3').trimEnd());
    await rename(file, `${file}.1`);
    await writeFile(file, ['new 1', 'new 2', 'new 3', 'new 4', 'new 5', 'new 6'].map(line).join(''));
    await until(() => seen.length === 9, `every line (${seen.join(', ')})`);
    assert.deepEqual(seen, ['old 1', 'old 2', 'old 3', 'new 1', 'new 2', 'new 3', 'new 4', 'new 5', 'new 6']);
    // Truncated in place (copytruncate): read again from its start.
    await writeFile(file, line('after truncation'));
    await until(() => seen.length === 10, 'the line after the truncation');
    assert.equal(seen[9], 'after truncation');
    assert.deepEqual(problems, []);
  } finally {
    await source.stop(Date.now() + 1000);
    await rm(dir, { recursive: true, force: true });
  }
});
