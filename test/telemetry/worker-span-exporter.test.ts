/**
 * The OTLP span exporter that sends from a worker thread (otel/worker-span-exporter.ts): what the main thread serialises
 * reaches a real OTLP/HTTP receiver in both protocols, the worker honours the standard OTEL_EXPORTER_OTLP_* variables,
 * failures come back as failed exports, shutdown waits for the batches in flight, and the worker holds the process open
 * only while a batch is in flight.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, afterEach, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base';
import { WorkerSpanExporter } from '../../otel/worker-span-exporter.js';
import type { OtlpProtocol } from '../../otel/options.js';
import { spawnBeacon } from '../helpers/beacon-process.js';
import { freePort } from '../helpers/free-port.js';
import { ARRAY_BUFFER_DETACHED, TRACE_PROTECTORS } from '../helpers/protectors.js';
import { signedFetch } from '../helpers/signed-fetch.js';
import { startOtlpReceiver, type OtlpReceiver } from '../helpers/otlp-receiver.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const OTLP_ENV = ['OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_EXPORTER_OTLP_HEADERS', 'OTEL_EXPORTER_OTLP_COMPRESSION', 'OTEL_EXPORTER_OTLP_TIMEOUT'];

/** Finished spans named `names`, made by a real tracer. */
function spans(...names: string[]): ReadableSpan[] {
  const memory = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(memory)] });
  const tracer = provider.getTracer('worker-span-exporter.test');
  for (const name of names) tracer.startSpan(name, { attributes: { 'test.name': name } }).end();
  return memory.getFinishedSpans();
}

function exportOnce(exporter: WorkerSpanExporter, batch: ReadableSpan[]): Promise<ExportResult> {
  return new Promise((resolve) => exporter.export(batch, resolve));
}

/** An exporter whose worker (started with it) sees `env` on top of the test's environment. */
function exporterWith(protocol: OtlpProtocol, env: Record<string, string>): WorkerSpanExporter {
  for (const name of OTLP_ENV) delete process.env[name];
  Object.assign(process.env, env);
  return new WorkerSpanExporter(protocol);
}

describe('WorkerSpanExporter', () => {
  let collector: OtlpReceiver;
  const exporters: WorkerSpanExporter[] = [];
  const make = (protocol: OtlpProtocol, env: Record<string, string>): WorkerSpanExporter => {
    const exporter = exporterWith(protocol, env);
    exporters.push(exporter);
    return exporter;
  };

  before(async () => {
    collector = await startOtlpReceiver();
  });
  afterEach(async () => {
    collector.answerWith(undefined);
    collector.requests.length = 0;
    await Promise.all(exporters.splice(0).map((e) => e.shutdown()));
  });
  after(async () => {
    await collector.close();
  });

  for (const protocol of ['http/protobuf', 'http/json'] as const) {
    it(`sends ${protocol} to <endpoint>/v1/traces`, async () => {
      const exporter = make(protocol, { OTEL_EXPORTER_OTLP_ENDPOINT: collector.url });
      const batch = spans('first', 'second');
      const result = await exportOnce(exporter, batch);
      assert.equal(result.code, ExportResultCode.SUCCESS, String(result.error));
      assert.equal(collector.requests.length, 1);
      const [request] = collector.requests;
      assert.equal(request!.contentType, protocol === 'http/json' ? 'application/json' : 'application/x-protobuf');
      assert.deepEqual(
        request!.spans.map((s) => [s.name, s.traceId, s.spanId, s.attributes['test.name']]),
        batch.map((s) => [s.name, s.spanContext().traceId, s.spanContext().spanId, s.name]),
      );
    });
  }

  it('honours OTEL_EXPORTER_OTLP_HEADERS and _COMPRESSION in the worker', async () => {
    const exporter = make('http/protobuf', {
      OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
      OTEL_EXPORTER_OTLP_HEADERS: 'x-scope-orgid=tenant-7',
      OTEL_EXPORTER_OTLP_COMPRESSION: 'gzip',
    });
    const result = await exportOnce(exporter, spans('compressed'));
    assert.equal(result.code, ExportResultCode.SUCCESS, String(result.error));
    const [request] = collector.requests;
    assert.equal(request!.headers['x-scope-orgid'], 'tenant-7');
    assert.equal(request!.headers['content-encoding'], 'gzip');
    assert.deepEqual(request!.spans.map((s) => s.name), ['compressed']);
  });

  it('answers a batch the collector refuses as a failed export, and keeps working', async () => {
    const exporter = make('http/protobuf', { OTEL_EXPORTER_OTLP_ENDPOINT: collector.url });
    collector.answerWith(400);
    const refused = await exportOnce(exporter, spans('refused'));
    assert.equal(refused.code, ExportResultCode.FAILED);
    assert.ok(refused.error instanceof Error, 'the failure carries an error');
    collector.answerWith(undefined);
    const accepted = await exportOnce(exporter, spans('accepted'));
    assert.equal(accepted.code, ExportResultCode.SUCCESS, String(accepted.error));
    assert.deepEqual(collector.spans().map((s) => s.name), ['accepted']);
  });

  it('answers a batch for an unreachable collector as failed within OTEL_EXPORTER_OTLP_TIMEOUT', async () => {
    const exporter = make('http/protobuf', {
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${await freePort()}`,
      OTEL_EXPORTER_OTLP_TIMEOUT: '1500',
    });
    const result = await exportOnce(exporter, spans('lost'));
    assert.equal(result.code, ExportResultCode.FAILED);
    assert.ok(result.error instanceof Error, 'the failure carries an error');
  });

  it('shutdown waits for the batches in flight; later batches fail without a worker', async () => {
    const exporter = make('http/protobuf', { OTEL_EXPORTER_OTLP_ENDPOINT: collector.url });
    const results: ExportResult[] = [];
    for (const name of ['a', 'b', 'c']) exporter.export(spans(name), (r) => results.push(r));
    await exporter.shutdown();
    assert.deepEqual(results.map((r) => r.code), [ExportResultCode.SUCCESS, ExportResultCode.SUCCESS, ExportResultCode.SUCCESS]);
    assert.deepEqual(collector.spans().map((s) => s.name).sort(), ['a', 'b', 'c']);
    const late = await exportOnce(exporter, spans('late'));
    assert.equal(late.code, ExportResultCode.FAILED);
    assert.equal(collector.requests.length, 3, 'nothing was sent after shutdown');
  });

  it('fails the batches of a worker that died, and starts a new worker for the next batch', async () => {
    const exporter = new WorkerSpanExporter('http/protobuf', {
      workerFile: new URL('./fixtures/crashing-export-worker.mjs', import.meta.url),
    });
    exporters.push(exporter);
    const first = await exportOnce(exporter, spans('answered'));
    assert.equal(first.code, ExportResultCode.FAILED);
    const firstThread = /^thread (\d+)$/.exec(first.error?.message ?? '')?.[1];
    assert.ok(firstThread !== undefined, `the first worker answered: ${first.error?.message}`);
    const lost = await exportOnce(exporter, spans('lost with the worker'));
    assert.equal(lost.code, ExportResultCode.FAILED);
    assert.match(lost.error?.message ?? '', /exited \(code 7\)/);
    const next = await exportOnce(exporter, spans('to a new worker'));
    const nextThread = /^thread (\d+)$/.exec(next.error?.message ?? '')?.[1];
    assert.ok(nextThread !== undefined, `a worker answered the next batch: ${next.error?.message}`);
    assert.notEqual(nextThread, firstThread, 'the next batch went to a new worker');
  });

  it('holds the process open while a batch is in flight, and not after', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/telemetry/fixtures/export-and-leave.ts'], {
      cwd: ROOT,
      env: {
        ...Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('OTEL_'))),
        OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (output += c.toString('utf8')));
    const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
      child.on('exit', (c, s) => resolve([c, s])),
    );
    clearTimeout(killer);
    assert.equal(signal, null, `the process did not exit by itself: ${output}`);
    assert.equal(code, 0, output);
    const ok = ExportResultCode.SUCCESS;
    assert.match(output, new RegExp(`awaited ${ok}\\nleft behind ${ok}\\n`), 'the batch in flight was answered before the exit');
    assert.deepEqual(collector.spans().map((s) => s.name), ['awaited', 'left behind']);
  });
});

describe('the compiled server (what npm start runs)', () => {
  let collector: OtlpReceiver;
  before(async () => {
    collector = await startOtlpReceiver();
  });
  after(async () => {
    await collector.close();
  });

  it('sends its spans through the compiled worker, and flushes them when it stops', async () => {
    const beacon = await spawnBeacon(
      { OTEL_EXPORTER_OTLP_ENDPOINT: collector.url, OTEL_TRACES_SAMPLER: 'always_on', OTEL_BSP_SCHEDULE_DELAY: '60000' },
      { compiled: true },
    );
    let code: number | null;
    try {
      const res = await signedFetch({ port: beacon.port }, 'POST', '/apps/app-id/events', {
        body: JSON.stringify({ name: 'compiled', channel: 'compiled-export', data: '{}' }),
      });
      assert.equal(res.status, 200, JSON.stringify(res.body));
    } finally {
      // The batch delay is a minute: the spans can only arrive through the shutdown flush.
      code = await beacon.stop('SIGTERM');
    }
    assert.equal(code, 0, beacon.output());
    const names = collector.spans().map((s) => s.name);
    assert.ok(names.includes('publish public'), `spans received: ${names.join(', ')}\n${beacon.output()}`);
    assert.ok(names.includes('POST /apps/:appId/events'), `spans received: ${names.join(', ')}`);
  });

  // Transferring a batch's bytes to the worker detached an ArrayBuffer, and the first detach in a process invalidates V8's
  // ArrayBufferDetaching protector: every optimised function reading a typed array is thrown away and rebuilt slower.

  it('the protector trace this relies on reports a detached ArrayBuffer', async () => {
    const child = spawn(
      process.execPath,
      ['-e', 'const b = new ArrayBuffer(8); structuredClone(b, { transfer: [b] });'],
      { env: { ...process.env, NODE_OPTIONS: TRACE_PROTECTORS }, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    assert.equal(code, 0);
    assert.ok(out.includes(ARRAY_BUFFER_DETACHED), out);
  });

  it('exports batch after batch without detaching an ArrayBuffer', async () => {
    const beacon = await spawnBeacon(
      {
        NODE_OPTIONS: TRACE_PROTECTORS,
        OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
        OTEL_TRACES_SAMPLER: 'always_on',
        OTEL_BSP_SCHEDULE_DELAY: '50',
      },
      { compiled: true },
    );
    try {
      for (const channel of ['detach-1', 'detach-2']) {
        const res = await signedFetch({ port: beacon.port }, 'POST', '/apps/app-id/events', {
          body: JSON.stringify({ name: 'e', channel, data: '{}' }),
        });
        assert.equal(res.status, 200, JSON.stringify(res.body));
        // Each publish in a batch of its own: its span is exported before the next publish.
        await collector.waitFor((received) => received.some((s) => s.attributes['messaging.destination.name'] === channel));
      }
    } finally {
      await beacon.stop('SIGTERM');
    }
    assert.ok(beacon.output().includes('"event":"server_started"'), beacon.output());
    assert.ok(!beacon.output().includes(ARRAY_BUFFER_DETACHED), beacon.output());
  });
});
