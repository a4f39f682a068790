/**
 * A signed API request its caller abandons before the answer still ends its server span (without a status code), so the
 * trace holds the call and its children have their parent: mid-body (Node marks the request aborted), and with the body
 * read whole while the handler waits on the cluster engine (no abort for Node, no onResponse: the span was never ended,
 * its `publish` child exported under a parent that never came). And a 5xx ends failed with `error.type`, a 4xx unset.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect } from 'node:net';
import { test } from 'node:test';
import { SpanStatusCode } from '@opentelemetry/api';
import { EngineUnavailableError } from '../../src/adapters/adapter.js';
import { createLocalAdapter } from '../../src/adapters/local-adapter.js';
import { APP, startServer } from '../helpers/server.js';
import { signedFetch, signedQuery } from '../helpers/signed-fetch.js';
import { until } from '../helpers/wait.js';
import { inMemoryTracing } from '../helpers/in-memory-tracing.js';

const exporter = inMemoryTracing();

/** A signed request line and headers continuing a new sampled trace; returns the text and the trace id. */
function signedHead(method: string, path: string, body: string, extra = ''): { head: string; traceId: string } {
  const traceId = randomBytes(16).toString('hex');
  const head =
    `${method} ${path}?${signedQuery(method, path, { body })} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n` +
    `content-length: ${body.length}\r\n${extra}traceparent: 00-${traceId}-${randomBytes(8).toString('hex')}-01\r\n\r\n`;
  return { head, traceId };
}

test('an API request abandoned before its answer ends its server span, mid-body or while its handler waits', async () => {
  let release: () => void = () => undefined;
  const held = new Promise<void>((resolve) => (release = resolve));
  let asked = false;
  const server = await startServer(
    {},
    {
      adapter: (_hub, metrics) => {
        const adapter = createLocalAdapter({ metrics, cacheTtlMs: 60_000, cacheMaxBytes: 1 << 20, countsSubscriptions: () => false });
        const channel = adapter.channel.bind(adapter);
        // The channel query waits until the test lets it go: the caller leaves meanwhile.
        adapter.channel = async (...args) => {
          asked = true;
          await held;
          return channel(...args);
        };
        return adapter;
      },
    },
  );
  try {
    // A publish asking for the channel's count, its body read whole: it waits on the engine, then its caller leaves (no
    // abort for Node: the request was read to its end).
    const publish = JSON.stringify({ name: 'e', channels: ['news'], data: '{}', info: 'subscription_count' });
    const waiting = signedHead('POST', `/apps/${APP.id}/events`, publish);
    const a = connect(server.port, '127.0.0.1');
    await once(a, 'connect');
    a.write(waiting.head + publish);
    await until(() => asked, 'the handler waiting on the engine');
    a.destroy();
    await until(() => exporter.getFinishedSpans().some((s) => s.spanContext().traceId === waiting.traceId && s.name.startsWith('POST')), 'the waiting request’s span ended');
    release();

    // Leaves mid-body. `Expect: 100-continue`: Node answers it once the headers are read and the request handed on.
    const body = JSON.stringify({ name: 'e', channels: ['news'], data: '{}' });
    const partial = signedHead('POST', `/apps/${APP.id}/events`, body, 'expect: 100-continue\r\n');
    const b = connect(server.port, '127.0.0.1');
    await once(b, 'connect');
    let answered = '';
    b.on('data', (chunk: Buffer) => (answered += chunk.toString('latin1')));
    b.write(partial.head);
    await until(() => answered.startsWith('HTTP/1.1 100'), '100 Continue');
    b.write(body.slice(0, 5));
    b.destroy();
    await until(() => exporter.getFinishedSpans().some((s) => s.spanContext().traceId === partial.traceId), 'the mid-body request’s span ended');

    for (const traceId of [waiting.traceId, partial.traceId]) {
      const server = exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId && s.name.startsWith('POST'));
      assert.equal(server.length, 1);
      assert.equal(server[0]!.attributes['http.response.status_code'], undefined);
    }
  } finally {
    release();
    await server.close();
  }
});

test('an API request answered 5xx ends its span failed with error.type, the code; a 4xx is the client’s: unset', async () => {
  const server = await startServer(
    {},
    {
      adapter: (_hub, metrics) => {
        const adapter = createLocalAdapter({ metrics, cacheTtlMs: 60_000, cacheMaxBytes: 1 << 20, countsSubscriptions: () => false });
        // The engine cannot answer a channel query: 503.
        adapter.channel = () => Promise.reject(new EngineUnavailableError('cluster engine down'));
        return adapter;
      },
    },
  );
  try {
    const ask = async (path: string, traceparent: string, body?: string) =>
      (await signedFetch(server, body === undefined ? 'GET' : 'POST', path, { headers: { traceparent }, ...(body === undefined ? {} : { body }) })).status;
    const failed = `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-01`;
    const refused = `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-01`;
    assert.equal(await ask(`/apps/${APP.id}/channels/news`, failed), 503);
    assert.equal(await ask(`/apps/${APP.id}/events`, refused, 'not json'), 400);
    const spanOf = (traceparent: string) => exporter.getFinishedSpans().find((s) => s.spanContext().traceId === traceparent.split('-')[1]);
    await until(() => spanOf(failed) !== undefined, 'the 503 span ended');
    await until(() => spanOf(refused) !== undefined, 'the 400 span ended');
    const [five, four] = [spanOf(failed)!, spanOf(refused)!];
    assert.deepEqual([five.status.code, five.attributes['error.type'], five.attributes['http.response.status_code']], [SpanStatusCode.ERROR, '503', 503]);
    assert.deepEqual([four.status.code, four.attributes['error.type'], four.attributes['http.response.status_code']], [SpanStatusCode.UNSET, undefined, 400]);
  } finally {
    await server.close();
  }
});
