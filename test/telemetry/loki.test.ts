/**
 * Log shipping to Loki through the real worker thread: the exact push body (stream labels, value shape, JSON line
 * fields), auth and tenant headers, that one connection's lines share its `session_id`, and that a Loki that fails or
 * hangs neither blocks the app nor loses lines silently.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Writable } from 'node:stream';
import { context, trace, TraceFlags } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { fileURLToPath } from 'node:url';
import { createLogger, flushLogger, logShippingCounts, type Logger } from '../../src/telemetry/logger.js';
import type { LokiShippingOptions } from '../../src/telemetry/loki.js';
import { until } from '../helpers/wait.js';
import { startLokiReceiver, type LokiReceiver } from '../helpers/loki-receiver.js';

/** A pino destination that keeps every line written to "stdout". */
function captureStream(): { stream: Writable; lines: () => Array<Record<string, unknown>> } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString('utf8'));
      cb();
    },
  });
  return {
    stream,
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN_ID = '00f067aa0ba902b7';

/** A shipping worker that fails on its first line (`LokiShippingOptions.workerPath`). */
const FAILING_WORKER = fileURLToPath(new URL('../helpers/failing-loki-worker.mjs', import.meta.url));

/** A logger at info to a captured stdout, shipping to Loki with `loki`. */
function infoLogger(loki: LokiShippingOptions): { stdout: ReturnType<typeof captureStream>; logger: Logger } {
  const stdout = captureStream();
  const logger = createLogger({ serviceName: 'beacon-test', env: 'ci', nodeId: 'node-a', level: 'info', destination: stdout.stream, loki });
  return { stdout, logger };
}

describe('Loki shipping', () => {
  const contextManager = new AsyncLocalStorageContextManager();
  before(() => {
    context.setGlobalContextManager(contextManager.enable());
  });
  after(() => {
    contextManager.disable();
    context.disable();
  });

  describe('with a healthy Loki', () => {
    let loki: LokiReceiver;
    let stdout: ReturnType<typeof captureStream>;
    let logger: Logger;

    before(async () => {
      loki = await startLokiReceiver('ok');
      stdout = captureStream();
      logger = createLogger({
        serviceName: 'beacon-test',
        env: 'ci',
        nodeId: 'node-a',
        level: 'debug',
        destination: stdout.stream,
        loki: { url: loki.url, username: 'loki-user', password: 's3cret', tenantId: 'tenant-1', batchIntervalMs: 50 },
      });
      const connection = logger.child({ session_id: 'sess-1', socket_id: '123.456', app_id: 'app-1' });
      connection.info({ event: 'connection_opened' }, 'connection opened');
      connection.debug({ event: 'subscribed', channel: 'private-a', auth: 'app-key:deadbeef' }, 'subscribed');
      connection.warn({ event: 'rate_limited', scope: 'client_events' }, 'rate limited');
      const span = trace.wrapSpanContext({ traceId: TRACE_ID, spanId: SPAN_ID, traceFlags: TraceFlags.SAMPLED });
      context.with(trace.setSpan(context.active(), span), () => {
        connection.info({ event: 'signin', user_id: 'u-1' }, 'signed in');
      });
      // A field that a Loki transport could promote to a label if nothing stopped it.
      connection.error({ event: 'connection_closed', reason: 'error', hostname: 'leaky-host' }, 'closed');
      logger.info({ event: 'api_request', request_id: 'req-9' }, 'api request');
      // Below the logger's level: never written, never shipped.
      logger.trace({ event: 'api_request' }, 'not written');
      await flushLogger(logger);
    });
    after(async () => {
      await loki.close();
    });

    it('pushes JSON to /loki/api/v1/push with basic auth and the tenant header', () => {
      assert.ok(loki.pushes.length >= 1);
      for (const push of loki.pushes) {
        assert.equal(push.method, 'POST');
        assert.equal(push.path, '/loki/api/v1/push');
        assert.match(String(push.headers['content-type']), /^application\/json/);
        assert.equal(push.headers.authorization, `Basic ${Buffer.from('loki-user:s3cret').toString('base64')}`);
        assert.equal(push.headers['x-scope-orgid'], 'tenant-1');
      }
    });

    it('labels every stream with exactly service_name, env, node_id and level', () => {
      const streams = loki.pushes.flatMap((p) => p.body.streams);
      assert.ok(streams.length >= 1);
      for (const s of streams) {
        assert.deepEqual(Object.keys(s.stream).sort(), ['env', 'level', 'node_id', 'service_name']);
        assert.equal(s.stream.service_name, 'beacon-test');
        assert.equal(s.stream.env, 'ci');
        // Each node's own streams: a cluster's nodes shared one per level, and Loki's per-stream rate limit with it.
        assert.equal(s.stream.node_id, 'node-a');
      }
      // One stream per label set within a push, not one per line.
      for (const push of loki.pushes) {
        const keys = push.body.streams.map((s) => JSON.stringify(s.stream));
        assert.equal(new Set(keys).size, keys.length);
      }
    });

    it('ships every written line as [nanosecond timestamp string, JSON line] with the level label of the line', () => {
      const lines = loki.lines();
      // 6 lines written at debug and above; the trace line is filtered by the logger.
      assert.equal(lines.length, 6);
      for (const { labels, timestamp, line } of lines) {
        assert.match(timestamp, /^\d{19}$/);
        const ms = Number(BigInt(timestamp) / 1_000_000n);
        assert.ok(Math.abs(ms - Date.now()) < 60_000, 'timestamp is now, in nanoseconds');
        const parsed = JSON.parse(line) as Record<string, unknown>;
        assert.equal(parsed.service, 'beacon-test');
        assert.equal(parsed.env, 'ci');
        assert.equal(parsed.node_id, 'node-a');
        assert.equal(typeof parsed.event, 'string');
        assert.equal(labels.level, parsed.level);
      }
      const levels = lines.map((l) => l.labels.level).sort();
      assert.deepEqual(levels, ['debug', 'error', 'info', 'info', 'info', 'warn']);
    });

    it('keeps session, trace and request ids in the line, redacted secrets out', () => {
      const parsed = loki.lines().map((l) => JSON.parse(l.line) as Record<string, unknown>);
      const byEvent = new Map(parsed.map((p) => [p.event, p]));
      const connectionEvents = ['connection_opened', 'subscribed', 'rate_limited', 'signin', 'connection_closed'];
      for (const event of connectionEvents) {
        const line = byEvent.get(event);
        assert.ok(line, `${event} shipped`);
        assert.equal(line.session_id, 'sess-1');
        assert.equal(line.socket_id, '123.456');
        assert.equal(line.app_id, 'app-1');
      }
      assert.equal(byEvent.get('signin')?.trace_id, TRACE_ID);
      assert.equal(byEvent.get('signin')?.span_id, SPAN_ID);
      assert.equal(byEvent.get('connection_opened')?.trace_id, undefined);
      assert.equal(byEvent.get('subscribed')?.auth, '[redacted]');
      assert.equal(byEvent.get('api_request')?.request_id, 'req-9');
    });

    it('keeps stdout on and reports the shipping totals there at flush', () => {
      const lines = stdout.lines();
      const events = lines.map((l) => l.event);
      assert.deepEqual(events.slice(0, 6), [
        'connection_opened',
        'subscribed',
        'rate_limited',
        'signin',
        'connection_closed',
        'api_request',
      ]);
      const stopped = lines.find((l) => l.event === 'loki_shipping_stopped');
      assert.ok(stopped);
      assert.equal(stopped.level, 'info');
      assert.equal(stopped.lines_written, 6);
      assert.equal(stopped.lines_shipped, 6);
      assert.equal(stopped.lines_dropped, 0);
    });
  });

  describe('with a failing Loki', () => {
    it('drops nothing silently: failures are logged, retried, and what the shutdown budget cannot ship is counted', async () => {
      const loki = await startLokiReceiver('error');
      const { stdout, logger } = infoLogger({ url: loki.url, batchIntervalMs: 50 });
      for (let i = 0; i < 5; i++) logger.info({ event: 'api_request', request_id: `r${i}` }, 'request');
      // The failure is reported by a line of its own, written (and shipped, and failing) while the logger is open.
      await loki.waitFor(() => stdout.lines().some((l) => l.event === 'loki_push_failed'));
      await flushLogger(logger, 500);
      await loki.close();
      const lines = stdout.lines();
      const failed = lines.find((l) => l.event === 'loki_push_failed');
      assert.ok(failed, 'a loki_push_failed line is written');
      assert.equal(failed.level, 'warn');
      assert.equal(failed.status, '500');
      assert.equal(failed.batch_dropped, false, 'a 500 is retried, not dropped');
      const stopped = lines.find((l) => l.event === 'loki_shipping_stopped');
      assert.ok(stopped);
      assert.equal(stopped.level, 'warn');
      assert.equal(stopped.lines_shipped, 0);
      // The 5 requests and the loki_push_failed line itself were all written and none reached Loki.
      assert.equal(stopped.lines_written, 6);
      assert.equal(stopped.lines_dropped, 6);
      assert.deepEqual(stopped.dropped_by_reason, { spool_full: 0, rejected: 0, shutdown: 6, worker_failed: 0 });
      assert.ok(loki.pushes.length >= 2, 'the failed batch was retried');
    });

    it('a worker that stops mid-run is logged once, and what it held and every later line are counted worker_failed', async () => {
      // Before, nothing said so, and every line after it was dropped in no count (the review of stop 54).
      const { stdout, logger } = infoLogger({ url: 'http://127.0.0.1:9', workerPath: FAILING_WORKER });
      logger.info({ event: 'api_request', request_id: 'r0' }, 'request');
      await until(() => stdout.lines().some((l) => l.event === 'loki_shipping_failed'), 'loki_shipping_failed');
      for (let i = 1; i <= 3; i++) logger.info({ event: 'api_request', request_id: `r${i}` }, 'request');
      const failed = stdout.lines().filter((l) => l.event === 'loki_shipping_failed');
      assert.equal(failed.length, 1);
      assert.equal(failed[0]!.level, 'error');
      assert.equal(typeof failed[0]!.error, 'string');
      // Reported once the worker has exited, so the line it held is in the count (the review: 0 on the error path).
      assert.equal(failed[0]!.lines_dropped, 1);
      // r0 (held by the worker), the failure line and r1–r3: every one counted, as /metrics reads it.
      await until(() => logShippingCounts(logger)?.dropped.worker_failed === 5, 'five lines counted worker_failed');
      assert.deepEqual(logShippingCounts(logger), { shipped: 0, dropped: { spool_full: 0, rejected: 0, shutdown: 0, worker_failed: 5 } });
      await flushLogger(logger, 500);
      const lines = stdout.lines();
      const stoppedAt = lines.findIndex((l) => l.event === 'loki_shipping_stopped');
      assert.equal(stoppedAt, 5);
      assert.deepEqual(lines[stoppedAt]!.dropped_by_reason, { spool_full: 0, rejected: 0, shutdown: 0, worker_failed: 5 });
    });

    it('a worker that stops during the shutdown flush ends the flush at once, its line counted shutdown', async () => {
      // The close listened for the worker's exit only after its flush: a worker gone during it made the close wait out its
      // whole budget (the review: 3 s of 3 s).
      const { stdout, logger } = infoLogger({ url: 'http://127.0.0.1:9', workerPath: FAILING_WORKER });
      logger.info({ event: 'api_request', request_id: 'r0' }, 'request');
      const started = performance.now();
      await flushLogger(logger, 3000);
      const flushMs = performance.now() - started;
      assert.ok(flushMs < 2000, `the flush took ${flushMs.toFixed(0)} ms of its 3000`);
      const lines = stdout.lines();
      assert.equal(lines.filter((l) => l.event === 'loki_shipping_failed').length, 0, 'a worker stopping in the close is counted by the close');
      const stopped = lines.find((l) => l.event === 'loki_shipping_stopped');
      assert.deepEqual(stopped?.dropped_by_reason, { spool_full: 0, rejected: 0, shutdown: 1, worker_failed: 0 });
    });

    it('a failure reported while the shutdown flushes is counted in the summary, with every line before it', async () => {
      // A probe: Loki first failed during the flush; its loki_push_failed line went to stdout only, in neither count.
      const loki = await startLokiReceiver('error');
      const { stdout, logger } = infoLogger({ url: loki.url, batchIntervalMs: 60_000 });
      for (let i = 0; i < 5; i++) logger.info({ event: 'api_request', request_id: `r${i}` }, 'request');
      // Nothing was pushed yet (a minute's batch interval): the first push, and its failure, come with the flush.
      await flushLogger(logger, 2000);
      await loki.close();
      const lines = stdout.lines();
      const stoppedAt = lines.findIndex((l) => l.event === 'loki_shipping_stopped');
      assert.ok(stoppedAt > 0);
      const before = lines.slice(0, stoppedAt);
      assert.ok(before.some((l) => l.event === 'loki_push_failed'), 'the failure was reported during the flush');
      const stopped = lines[stoppedAt]!;
      assert.equal(stopped.lines_written, before.length);
      assert.equal(stopped.lines_dropped, before.length);
      assert.deepEqual(stopped.dropped_by_reason, { spool_full: 0, rejected: 0, shutdown: before.length, worker_failed: 0 });
    });

    it('never blocks the event loop while Loki hangs, and flush is bounded by the push timeout', async () => {
      const loki = await startLokiReceiver('hang');
      const { stdout, logger } = infoLogger({ url: loki.url, batchIntervalMs: 50, timeoutMs: 300 });
      // Keep logging while pushes hang; the loop must stay responsive (no synchronous wait on the worker).
      let maxGapMs = 0;
      let last = performance.now();
      const ticker = setInterval(() => {
        const now = performance.now();
        maxGapMs = Math.max(maxGapMs, now - last);
        last = now;
      }, 5);
      for (let batch = 0; batch < 10; batch++) {
        for (let i = 0; i < 200; i++) logger.info({ event: 'api_request', request_id: `r${batch}-${i}` }, 'request');
        await new Promise((r) => setImmediate(r));
      }
      await loki.waitFor(() => loki.pushes.length >= 1);
      clearInterval(ticker);
      const started = performance.now();
      await flushLogger(logger, 1000);
      const flushMs = performance.now() - started;
      await loki.close();
      assert.ok(maxGapMs < 250, `event loop stalled for ${maxGapMs.toFixed(0)} ms`);
      assert.ok(flushMs < 1000 + 500, `flush took ${flushMs.toFixed(0)} ms, over its 1000 ms budget`);
      const stopped = stdout.lines().find((l) => l.event === 'loki_shipping_stopped');
      assert.ok(stopped);
      assert.equal(stopped.lines_shipped, 0);
      assert.equal(stopped.lines_dropped, stopped.lines_written);
      assert.ok(Number(stopped.lines_written) >= 2000);
    });

    it('a push hanging at shutdown is cut at the flush budget, not its own 5 s timeout, without blocking the loop', async () => {
      const loki = await startLokiReceiver('hang');
      // The default push timeout (5 s): the shutdown budget must win over it.
      const { stdout, logger } = infoLogger({ url: loki.url, batchIntervalMs: 50 });
      for (let i = 0; i < 20; i++) logger.info({ event: 'api_request', request_id: `r${i}` }, 'request');
      await loki.waitFor(() => loki.pushes.length >= 1);
      let maxGapMs = 0;
      let last = performance.now();
      const ticker = setInterval(() => {
        const now = performance.now();
        maxGapMs = Math.max(maxGapMs, now - last);
        last = now;
      }, 5);
      const started = performance.now();
      await flushLogger(logger, 800);
      const flushMs = performance.now() - started;
      clearInterval(ticker);
      await loki.close();
      assert.ok(flushMs < 800 + 400, `flush took ${flushMs.toFixed(0)} ms for an 800 ms budget`);
      assert.ok(maxGapMs < 300, `the event loop was blocked ${maxGapMs.toFixed(0)} ms`);
      // The 20 requests, and the push cut by the shutdown if its failure was reported before the summary (written then,
      // during the flush, it is counted with the rest).
      const lines = stdout.lines();
      const stoppedAt = lines.findIndex((l) => l.event === 'loki_shipping_stopped');
      const stopped = lines[stoppedAt];
      assert.equal(lines.slice(0, stoppedAt).filter((l) => l.event === 'api_request').length, 20);
      assert.equal(stopped?.lines_written, stoppedAt);
      assert.deepEqual(stopped?.dropped_by_reason, { spool_full: 0, rejected: 0, shutdown: stoppedAt, worker_failed: 0 });
    });
  });
});
