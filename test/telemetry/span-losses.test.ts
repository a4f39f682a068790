/**
 * Spans the batch processor loses are counted (otel/counted-span-processor.ts), in a real Beacon with a real OTLP/HTTP
 * collector: what it exports, every span a full queue drops (`error_type="queue_full"`), and the spans of an export the
 * collector refuses (the error's name). Exact counts: every span Beacon ended is either received by the collector or
 * counted lost. A real Prometheus scrapes it with prometheus/alerts.yml loaded: BeaconSpansDropped fires for the real
 * series on the first loss of each kind, and the Overview's Losses panels show them. (That the rule sees a series whose
 * first sample is already a loss, which `increase` alone cannot, is proven by its promtool unit tests: this Prometheus
 * is younger than the rule's 10-minute look-back, so here any rule on the series would fire.)
 */
import assert from 'node:assert/strict';
import { Agent } from 'node:http';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { after, before, describe, it } from 'node:test';
import Pusher from 'pusher';
import { spawnBeacon, type BeaconProcess } from '../helpers/beacon-process.js';
import { parseExposition } from '../helpers/exposition.js';
import { startOtlpReceiver, type OtlpReceiver } from '../helpers/otlp-receiver.js';
import { pollUntil, startPrometheus, type QueryData, type RunningPrometheus, type Sample } from '../helpers/prometheus.js';
import { expressions, interpolate } from '../stack/expressions.js';

const ALERT_RULES = fileURLToPath(new URL('../../prometheus/alerts.yml', import.meta.url));

const PROCESSED = 'otel_sdk_processor_span_processed_total';
const QUEUE_SIZE = 'otel_sdk_processor_span_queue_size';
const QUEUE_CAPACITY = 'otel_sdk_processor_span_queue_capacity';
const QUEUE = 8;

interface SpanCounts {
  exported: number;
  /** By `error_type`. */
  lost: Record<string, number>;
  queued: number;
  capacity: number;
}

describe('spans the batch processor loses are counted', () => {
  let collector: OtlpReceiver;
  let beacon: BeaconProcess;
  let prometheus: RunningPrometheus;
  let agent: Agent;
  let pusher: Pusher;
  let published = 0;

  /** The span processor's series on /metrics. */
  async function counts(): Promise<SpanCounts> {
    const families = parseExposition(await (await fetch(`http://127.0.0.1:${beacon.metricsPort}/metrics`)).text());
    const result: SpanCounts = { exported: 0, lost: {}, queued: Number.NaN, capacity: Number.NaN };
    for (const sample of families.get(PROCESSED)?.samples ?? []) {
      assert.equal(sample.labels.otel_component_type, 'batching_span_processor');
      const error = sample.labels.error_type;
      if (error === undefined) result.exported += sample.value;
      else result.lost[error] = (result.lost[error] ?? 0) + sample.value;
    }
    result.queued = families.get(QUEUE_SIZE)?.samples[0]?.value ?? Number.NaN;
    result.capacity = families.get(QUEUE_CAPACITY)?.samples[0]?.value ?? Number.NaN;
    return result;
  }

  /** Polls /metrics until `done` holds (bounded: 10 s), then returns what it read. */
  async function countsWhen(done: (c: SpanCounts) => boolean, what: string): Promise<SpanCounts> {
    let last: SpanCounts | undefined;
    await pollUntil(
      async () => done((last = await counts())),
      10_000,
      50,
      () => `${what}: ${JSON.stringify(last)}, collector received ${collector.spans().length}`,
    );
    return last!;
  }

  async function publish(times: number): Promise<void> {
    for (let i = 0; i < times; i++) {
      const res = await pusher.trigger('span-losses', 'tick', { i });
      assert.equal(res.status, 200);
      published++;
    }
  }

  before(async () => {
    collector = await startOtlpReceiver();
    beacon = await spawnBeacon({
      OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
      OTEL_TRACES_SAMPLER: 'always_on',
      OTEL_BSP_MAX_QUEUE_SIZE: String(QUEUE),
      OTEL_BSP_MAX_EXPORT_BATCH_SIZE: String(QUEUE),
      OTEL_BSP_SCHEDULE_DELAY: '50',
      LOG_LEVEL: 'warn',
    });
    prometheus = await startPrometheus({
      scrape: [{ job: 'beacon', targets: [`127.0.0.1:${beacon.metricsPort}`] }],
      ruleFiles: [ALERT_RULES],
    });
    agent = new Agent({ keepAlive: true });
    pusher = new Pusher({ appId: 'app-id', key: 'app-key', secret: 'app-secret', host: '127.0.0.1', port: String(beacon.port), useTLS: false, agent });
  });

  after(async () => {
    agent.destroy();
    collector.release();
    await prometheus?.stop();
    await beacon.stop();
    await collector.close();
  });

  let perPublish = 0;

  it('shows its queue and its capacity (OTEL_BSP_MAX_QUEUE_SIZE) from the start, before any span', async () => {
    const c = await counts();
    assert.equal(c.capacity, QUEUE);
    assert.equal(c.queued, 0);
    assert.deepEqual(c, { exported: 0, lost: {}, queued: 0, capacity: QUEUE });
  });

  it('counts what it exports', async () => {
    await publish(1);
    await collector.waitFor((spans) => spans.some((s) => s.name.startsWith('publish ')) && spans.some((s) => s.name.startsWith('POST ')));
    const c = await countsWhen((c) => c.exported === collector.spans().length && c.queued === 0, 'the first publish exported');
    perPublish = collector.spans().length;
    assert.deepEqual(collector.spans().map((s) => s.name).sort(), ['POST /apps/:appId/events', 'publish public']);
    assert.equal(c.exported, perPublish);
    assert.deepEqual(c.lost, {});
  });

  it('counts every span a full queue drops while an export hangs: received + dropped = ended', async () => {
    collector.hold();
    await publish(10);
    // One batch hangs in the collector, the queue behind it fills, and what comes after is dropped.
    await countsWhen((c) => c.queued === QUEUE && (c.lost.queue_full ?? 0) > 0, 'the queue filled while the export hung');
    assert.equal(collector.release(), 1, 'one export was held: the processor sends one batch at a time');
    // Every span Beacon ended is accounted for once the queue is empty and no batch is in flight (a batch taken from the
    // queue is neither queued nor yet exported: waiting for queued === 0 alone read it too early).
    const ended = published * perPublish;
    const c = await countsWhen(
      (c) => c.queued === 0 && c.exported + (c.lost.queue_full ?? 0) === ended,
      `every one of the ${ended} spans exported or dropped`,
    );
    assert.equal(c.exported, collector.spans().length, 'exported = what the collector received');
    assert.equal(Object.keys(c.lost).join(), 'queue_full');
  });

  /** Waits (bounded) until Prometheus has BeaconSpansDropped firing for `errorType` on this node. */
  async function alertFires(errorType: string): Promise<void> {
    const [alert] = await prometheus.waitFor(
      `ALERTS{alertname="BeaconSpansDropped",alertstate="firing",error_type="${errorType}"}`,
      { timeoutMs: 20_000 },
    );
    assert.equal(alert?.metric.instance, `127.0.0.1:${beacon.metricsPort}`);
  }

  it('fires BeaconSpansDropped in a real Prometheus for the first queue_full, a series that appeared with it', async () => {
    await alertFires('queue_full');
  });

  it('shows the loss and the queue on the Overview dashboard’s Losses panels', async () => {
    const panel = (title: string): string => {
      const [e] = expressions('promql').filter((x) => x.dashboard === 'beacon-overview.json' && x.panel === title);
      assert.ok(e !== undefined, `no panel "${title}"`);
      return interpolate(e.expr);
    };
    /** Polls (bounded) until the panel's query answers exactly `expected`: [labels, value] per series. */
    const shows = async (title: string, expected: Array<[Record<string, string>, number]>): Promise<void> => {
      let last: QueryData | undefined;
      await pollUntil(
        async () => {
          last = await prometheus.query(panel(title));
          const got = (last.result as Sample[]).map((s) => [s.metric, Number(s.value[1])]);
          return isDeepStrictEqual(got, expected);
        },
        20_000,
        200,
        () => `${title}: ${JSON.stringify(last?.result)}, expected ${JSON.stringify(expected)}`,
      );
    };
    const instance = `127.0.0.1:${beacon.metricsPort}`;
    // The alert may have fired on a scrape taken while spans were still being dropped: wait for the final count, and for
    // the queue drained after the held export was released.
    const { lost } = await counts();
    await shows('Spans lost on the way to the trace backend', [[{ instance, error_type: 'queue_full' }, lost.queue_full!]]);
    await shows('Span queue fill', [[{ instance }, 0]]);
  });

  it('counts the spans of a refused export under the error name', async () => {
    const before = await counts();
    collector.answerWith(400);
    try {
      await publish(1);
      const c = await countsWhen((c) => c.queued === 0 && Object.keys(c.lost).some((error) => error !== 'queue_full'), 'the refused export counted');
      const refused = Object.entries(c.lost).filter(([error]) => error !== 'queue_full');
      assert.deepEqual(refused, [['OTLPExporterError', perPublish]]);
      assert.equal(c.exported, before.exported);
      await alertFires('OTLPExporterError');
    } finally {
      collector.answerWith(undefined);
    }
  });
});
