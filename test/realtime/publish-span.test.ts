/**
 * The `publish <channel_type>` span of an envelope the cluster engine dropped unsent (a client event while Redis is down:
 * the HTTP API refuses its own publishes then) ends failed, saying why; one the engine took ends as before. Before, both
 * looked alike in the trace while `websocket_adapter_dropped_total{reason="down"}` counted the drop. Real SDK in-process.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SpanStatusCode } from '@opentelemetry/api';
import type { Adapter } from '../../src/adapters/adapter.js';
import { createPublisher } from '../../src/realtime/publisher.js';
import { contextFromTraceparent } from '../../src/telemetry/tracing.js';
import { recordingMetrics } from '../helpers/unit.js';
import { inMemoryTracing } from '../helpers/in-memory-tracing.js';

const exporter = inMemoryTracing();

test('a publish the engine dropped unsent ends its span failed; one it took ends unset', () => {
  let answer: 'down' | 'backlog' | undefined = 'down';
  const adapter = { publish: () => answer } as unknown as Adapter;
  const publisher = createPublisher({ adapter, metrics: recordingMetrics().metrics });
  const parent = contextFromTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01');
  const publish = () =>
    publisher.publish({ appId: 'app-id', channel: 'private-chat', event: 'client-typing', data: '{}', source: 'client_event', parent });
  publish();
  answer = 'backlog';
  publish();
  answer = undefined;
  publish();
  const spans = exporter.getFinishedSpans();
  assert.deepEqual(
    spans.map((s) => [s.name, s.status.code, s.status.message]),
    [
      ['publish private', SpanStatusCode.ERROR, 'cluster engine down: dropped unsent'],
      ['publish private', SpanStatusCode.ERROR, 'cluster engine congested: dropped unsent'],
      ['publish private', SpanStatusCode.UNSET, undefined],
    ],
  );
});
