/**
 * beacon-monitor's parts on their own: quantiles from cumulative buckets as PromQL computes them, which log lines count as
 * problems, and the Loki source's query_range polling (against a stand-in answering Loki's HTTP API on 127.0.0.1: no
 * Loki runs on the test machine) — the LogQL query, nanosecond bounds, and no line reported twice across polls.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { histogramQuantile } from '../../tools/monitor/histogram-quantile.js';
import { parseLogLine, type LogEvent } from '../../tools/monitor/log-line.js';
import { followLoki } from '../../tools/monitor/log-sources.js';
import { DEFAULT_LOKI_QUERY } from '../../tools/monitor/options.js';
import { buildSnapshot } from '../../tools/monitor/snapshot.js';
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
    await source.stop();
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
