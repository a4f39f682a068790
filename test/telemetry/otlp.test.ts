/**
 * The OpenTelemetry bootstrap (otel/register.ts) in a real child process: spans reach an OTLP/HTTP collector as protobuf
 * only when an endpoint is configured, a server span continues the caller's `traceparent` through the installed propagator,
 * the standard OTEL_* variables apply, export failures neither crash nor hang, and OTEL_SDK_DISABLED switches
 * everything off.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { freePort } from '../helpers/free-port.js';
import { startOtlpReceiver, SpanKindOtlp, type OtlpReceiver, type ReceivedSpan } from '../helpers/otlp-receiver.js';
import { parseExposition } from '../helpers/exposition.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CALLER_TRACE_ID = '0af7651916cd43dd8448eb211c80319c';
const CALLER_SPAN_ID = 'b7ad6b7169203331';
const CALLER_TRACEPARENT = `00-${CALLER_TRACE_ID}-${CALLER_SPAN_ID}-01`;

interface AppReport {
  seen: Array<{ path: string; activeTraceId: string | null; propagatedTraceId: string | null; publishRecording: boolean }>;
  metrics: string | null;
  shutdownMs: number;
}

/** Runs the fixture app under the bootstrap with `env` (on top of a clean OTEL-free environment). */
async function runApp(env: Record<string, string>): Promise<{ code: number | null; report: AppReport; stderr: string }> {
  const base: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith('OTEL_') && k !== 'NODE_OPTIONS') base[k] = v;
  }
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', '--import', './otel/register.ts', 'test/telemetry/fixtures/traced-app.ts'],
    { cwd: ROOT, env: { ...base, CALLER_TRACEPARENT, ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
  const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  clearTimeout(killer);
  const line = stdout.split('\n').find((l) => l.startsWith('{"seen"'));
  assert.ok(line, `the app reported (exit ${code}); stdout: ${stdout}\nstderr: ${stderr}`);
  return { code, report: JSON.parse(line) as AppReport, stderr };
}

describe('OpenTelemetry bootstrap', () => {
  let collector: OtlpReceiver;
  before(async () => {
    collector = await startOtlpReceiver();
  });
  after(async () => {
    await collector.close();
  });

  describe('with an OTLP endpoint', () => {
    let spans: ReceivedSpan[];
    let report: AppReport;
    before(async () => {
      const metricsPort = await freePort();
      const run = await runApp({
        OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
        OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=ci,team=realtime',
        METRICS_HOST: '127.0.0.1',
        METRICS_PORT: String(metricsPort),
      });
      assert.equal(run.code, 0, run.stderr);
      report = run.report;
      // shutdownTelemetry flushed the batch before the app exited: no waiting needed.
      spans = collector.spans().filter((s) => s.traceId === CALLER_TRACE_ID);
    });

    it('sends http/protobuf to /v1/traces', () => {
      assert.ok(collector.requests.length >= 1);
      assert.ok(collector.requests.every((r) => r.contentType === 'application/x-protobuf'));
    });

    it('continues the caller traceparent in the HTTP server span, with the app span as its child', () => {
      const server = spans.find((s) => s.kind === SpanKindOtlp.SERVER);
      assert.ok(server, `a server span in the caller's trace; got ${spans.map((s) => s.name).join(', ')}`);
      assert.equal(server.parentSpanId, CALLER_SPAN_ID);
      assert.equal(server.attributes['http.method'] ?? server.attributes['http.request.method'], 'POST');
      const publish = spans.find((s) => s.name === 'publish public');
      assert.ok(publish);
      assert.equal(publish.kind, SpanKindOtlp.PRODUCER);
      assert.equal(publish.parentSpanId, server.spanId);
      assert.equal(publish.attributes['app.id'], 'app-1');
      assert.ok(publish.endTimeUnixNano >= publish.startTimeUnixNano);
    });

    it('propagates the caller context to every handler, and exports only the spans the app started', () => {
      const servers = collector.spans().filter((s) => s.kind === SpanKindOtlp.SERVER);
      assert.equal(servers.length, 1, 'only the API request, not /healthz');
      const health = report.seen.find((s) => s.path === '/healthz');
      assert.equal(health?.propagatedTraceId, CALLER_TRACE_ID, 'the W3C propagator is installed');
      assert.equal(health?.activeTraceId, null, 'no HTTP instrumentation makes a span active behind the app');
    });

    it('describes the service with the standard resource attributes', () => {
      const resource = spans[0]?.resource;
      assert.ok(resource);
      assert.equal(resource['service.name'], 'beacon');
      assert.equal(resource['deployment.environment.name'], 'ci');
      assert.equal(resource.team, 'realtime');
      assert.equal(typeof resource['service.version'], 'string');
    });

    it('serves /metrics without otel_scope_ labels, with runtime and process metrics and target_info', () => {
      assert.ok(report.metrics);
      assert.doesNotMatch(report.metrics, /otel_scope_/);
      const families = parseExposition(report.metrics);
      for (const name of [
        'process_cpu_seconds_total',
        'process_resident_memory_bytes',
        'process_open_fds',
        'process_max_fds',
        'process_start_time_seconds',
        'nodejs_eventloop_utilization',
        'v8js_memory_heap_used',
        'target_info',
      ]) {
        assert.ok(families.has(name), `${name} is exposed`);
      }
      const openFds = families.get('process_open_fds')?.samples[0]?.value ?? 0;
      assert.ok(openFds > 3 && openFds < 10_000, `process_open_fds = ${openFds}`);
      assert.equal(families.get('target_info')?.samples[0]?.labels.service_name, 'beacon');
      // The HTTP instrumentation's own duration histograms are dropped in favour of the contract's.
      assert.ok(![...families.keys()].some((n) => n.startsWith('http_server_duration') || n.startsWith('http_client')));
    });
  });

  describe('environment variables', () => {
    it('OTEL_SERVICE_NAME names the service', async () => {
      const before = collector.spans().length;
      const run = await runApp({ OTEL_EXPORTER_OTLP_ENDPOINT: collector.url, OTEL_SERVICE_NAME: 'beacon-eu', METRICS_PORT: String(await freePort()) });
      assert.equal(run.code, 0, run.stderr);
      const fresh = collector.spans().slice(before);
      assert.ok(fresh.length > 0);
      assert.ok(fresh.every((s) => s.resource['service.name'] === 'beacon-eu'));
    });

    it('OTEL_TRACES_SAMPLER=always_off records nothing, while propagation still works', async () => {
      const before = collector.spans().length;
      const run = await runApp({
        OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
        OTEL_TRACES_SAMPLER: 'always_off',
        METRICS_PORT: String(await freePort()),
      });
      assert.equal(run.code, 0, run.stderr);
      assert.equal(collector.spans().length, before);
      const api = run.report.seen.find((s) => s.path === '/apps/app-1/events');
      assert.equal(api?.publishRecording, false);
    });

    it('OTEL_TRACES_SAMPLER=parentbased_traceidratio: Beacon builds it (root draw); a bad argument warns and keeps all, as the SDK', async () => {
      const before = collector.spans().length;
      const run = await runApp({
        OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
        OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
        OTEL_TRACES_SAMPLER_ARG: 'half',
        METRICS_PORT: String(await freePort()),
      });
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stderr, /otel_diagnostic.*OTEL_TRACES_SAMPLER_ARG.*defaulting to 1/);
      const api = run.report.seen.find((s) => s.path === '/apps/app-1/events');
      assert.equal(api?.publishRecording, true);
      assert.ok(collector.spans().slice(before).some((s) => s.name === 'publish public'));
    });

    it('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is used as the full URL and http/json is honoured', async () => {
      const before = collector.requests.length;
      const run = await runApp({
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${collector.url}/v1/traces`,
        OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json',
        METRICS_PORT: String(await freePort()),
      });
      assert.equal(run.code, 0, run.stderr);
      const fresh = collector.requests.slice(before);
      assert.ok(fresh.length > 0);
      assert.ok(fresh.every((r) => r.contentType.startsWith('application/json')));
      assert.ok(fresh.some((r) => r.spans.some((s) => s.name === 'publish public' && s.traceId === CALLER_TRACE_ID)));
    });
  });

  describe('without an OTLP endpoint', () => {
    it('records no span, sends nothing and installs no async context tracking', async () => {
      const before = collector.requests.length;
      const run = await runApp({ METRICS_PORT: String(await freePort()) });
      assert.equal(run.code, 0, run.stderr);
      assert.equal(collector.requests.length, before);
      const api = run.report.seen.find((s) => s.path === '/apps/app-1/events');
      assert.ok(api);
      assert.equal(api.publishRecording, false);
      // No HTTP instrumentation and no AsyncLocalStorage: nothing is active in the handler (see sync-context-manager.ts).
      assert.equal(api.activeTraceId, null);
      assert.ok(run.report.metrics?.includes('process_open_fds'), 'metrics are still served');
    });
  });

  describe('export failures', () => {
    it('an unreachable collector neither crashes the app nor holds its shutdown past the bound', async () => {
      const deadPort = await freePort();
      const run = await runApp({
        OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${deadPort}`,
        METRICS_PORT: String(await freePort()),
      });
      assert.equal(run.code, 0, run.stderr);
      assert.ok(run.report.shutdownMs < 6000, `shutdown took ${run.report.shutdownMs} ms`);
      assert.match(run.stderr, /otel_diagnostic/, 'the failure is reported on stderr');
    });
  });

  describe('OTEL_SDK_DISABLED=true', () => {
    it('switches off tracing, propagation and the metrics server', async () => {
      const before = collector.requests.length;
      const metricsPort = await freePort();
      const run = await runApp({
        OTEL_SDK_DISABLED: 'true',
        OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
        METRICS_PORT: String(metricsPort),
      });
      assert.equal(run.code, 0, run.stderr);
      assert.equal(collector.requests.length, before);
      assert.equal(run.report.metrics, null, 'no /metrics server');
      const api = run.report.seen.find((s) => s.path === '/apps/app-1/events');
      assert.equal(api?.activeTraceId, null);
      assert.equal(api?.publishRecording, false);
      assert.ok(run.report.shutdownMs < 100);
    });
  });
});
