/**
 * The metrics port's server (otel/metrics-server.ts): GET and HEAD of /metrics render, another method gets 405 and another
 * path 404; a socket that pipelines requests gets one rendered and a 429, then its socket closed — not a render per request
 * (the exporter's own server rendered every one). Refusals are counted by reason.
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { metrics } from '@opentelemetry/api';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import type { Server } from 'node:http';
import { startMetricsServer } from '../../otel/metrics-server.js';
import { parseExposition, sumOf } from '../helpers/exposition.js';
import { exchange } from '../helpers/raw-http.js';

let provider: MeterProvider;
let server: Server;
let port: number;
let renders = 0;

before(async () => {
  const exporter = new PrometheusExporter({ preventServerStart: true, withoutScopeInfo: true, withoutTargetInfo: true });
  provider = new MeterProvider({ readers: [exporter] });
  metrics.setGlobalMeterProvider(provider);
  // Counts the renders: one observation per collection.
  provider.getMeter('test').createObservableGauge('renders').addCallback((r) => r.observe(++renders));
  server = await startMetricsServer(exporter, { host: '127.0.0.1', port: 0 });
  port = (server.address() as AddressInfo).port;
});
after(async () => {
  server.close();
  await provider.shutdown();
});

const refusals = async (reason: string): Promise<number> =>
  sumOf(parseExposition(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()), 'websocket_metrics_requests_refused_total', { reason });

/** The status codes in `text`, in order. */
const statuses = (text: string): string[] => [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => m[1]!);

test('GET and HEAD of /metrics render; another method gets 405 with Allow; another path 404', async () => {
  const get = await fetch(`http://127.0.0.1:${port}/metrics`);
  assert.equal(get.status, 200);
  assert.match(await get.text(), /^# HELP renders/m);
  const head = await fetch(`http://127.0.0.1:${port}/metrics`, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(await head.text(), '');
  const before = await refusals('bad_method');
  for (const method of ['POST', 'DELETE']) {
    const refused = await fetch(`http://127.0.0.1:${port}/metrics`, { method });
    assert.equal(refused.status, 405, method);
    assert.equal(refused.headers.get('allow'), 'GET, HEAD');
  }
  assert.equal(await refusals('bad_method'), before + 2);
  assert.equal((await fetch(`http://127.0.0.1:${port}/nope`)).status, 404);
});

test('requests pipelined on one socket: one rendered, one 429, the socket closed; the rest counted, not rendered', async () => {
  const before = await refusals('pipelined');
  const rendersBefore = renders;
  const answered = await exchange(port, 'GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(200));
  assert.deepEqual(statuses(answered), ['200', '429']);
  assert.equal(renders - rendersBefore, 1, 'one render for 200 requests');
  assert.equal(await refusals('pipelined'), before + 199);
});
