/**
 * A `process` span links to its connection's `connect` span only when that span was sampled: a link to a span no trace
 * holds leads nowhere in Tempo, and keeping its context would cost every unsampled connection memory for its whole life.
 * Sampling here is ratio 0 for new traces, so a connect (no `traceparent`) is never sampled, while a frame that carries a
 * sampled `traceparent` is (the parent-based sampler follows it).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { spawnBeacon, type BeaconProcess } from '../helpers/beacon-process.js';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from '../helpers/otlp-receiver.js';
import { RawClient } from '../helpers/raw-client.js';

describe('links of process spans', () => {
  let collector: OtlpReceiver;
  let beacon: BeaconProcess;
  let spans: ReceivedSpan[];
  const traceId = randomBytes(16).toString('hex');

  before(async () => {
    collector = await startOtlpReceiver();
    beacon = await spawnBeacon({
      OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
      OTEL_BSP_SCHEDULE_DELAY: '100',
      OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
      OTEL_TRACES_SAMPLER_ARG: '0',
    });
    const { client } = await RawClient.established(beacon.port);
    const traceparent = `00-${traceId}-${randomBytes(8).toString('hex')}-01`;
    client.ws.send(JSON.stringify({ event: 'pusher:subscribe', data: { channel: 'news' }, traceparent }));
    await client.next('pusher_internal:subscription_succeeded', 5000);
    spans = await collector.waitFor((all) => all.some((s) => s.traceId === traceId && s.name === 'process subscribe'));
    client.ws.terminate();
  });

  after(async () => {
    await beacon?.stop();
    await collector?.close();
  });

  it('exports the sampled frame’s span without a link to the unsampled connect span', () => {
    // Spans are exported in the order they ended: the connect span ended before the subscribe frame was even sent.
    assert.deepEqual(
      spans.filter((s) => s.name === 'connect'),
      [],
    );
    const process = spans.find((s) => s.traceId === traceId && s.name === 'process subscribe');
    assert.ok(process);
    assert.deepEqual(process.links, []);
  });
});
