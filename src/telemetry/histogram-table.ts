/**
 * Histograms kept as plain numbers (explicit buckets, sum, count, min, max per label set), and the counters and gauges
 * read at collection time, handed to the metric reader by one `MetricProducer` (`MetricTables`) at each collection.
 *
 * The SDK's `Histogram.record` serialises and hashes its attribute set and reads the clock on every call (~1 µs each in a
 * tight loop, several times that in a server whose code is cold between two connects); a connect records five histograms
 * and a one-recipient publish three. Here a recorder holds its row (or finds it with two Map lookups) and adds to numbers.
 * Counters (counter-table.ts) and gauges went through the SDK's observable instruments until `MetricTables` took them:
 * those hash every label set of every series on every collection, and keep at most 2 000 series a metric — a node of
 * 10 000 apps spent 2.2 s of a 3.9 s profile of three scrapes in that hashing (a probe), the event loop held.
 *
 * The data is what the SDK's aggregations report, cumulative: a histogram's bucket i counts the values v with
 * boundaries[i-1] < v <= boundaries[i], the last bucket those above every boundary; NaN and negative values are ignored,
 * as the SDK ignores them; a counter is a monotonic sum, a gauge its last value. The Prometheus exporter takes the
 * producer through its `metricProducers` option (otel/sdk.ts) and renders these metrics exactly as it renders the SDK's.
 */
import { ValueType, type Attributes, type HrTime } from '@opentelemetry/api';
import { hrTime } from '@opentelemetry/core';
import { emptyResource } from '@opentelemetry/resources';
import {
  AggregationTemporality,
  DataPointType,
  type CollectionResult,
  type GaugeMetricData,
  type HistogramMetricData,
  type MetricData,
  type MetricProducer,
  type SumMetricData,
} from '@opentelemetry/sdk-metrics';
import type { CounterTable } from './counter-table.js';
import { LabelRows } from './label-rows.js';

/** One label set of a histogram. */
export class HistogramRow {
  /** One count per bucket: `boundaries.length + 1` of them. */
  readonly counts: number[];
  sum = 0;
  count = 0;
  min = Infinity;
  max = -Infinity;

  constructor(
    readonly attributes: Attributes,
    private readonly boundaries: readonly number[],
  ) {
    this.counts = new Array<number>(boundaries.length + 1).fill(0);
  }

  /** Records `value` `times` times (a fan-out's frame size, once per recipient, in one call). */
  record(value: number, times = 1): void {
    if (!(value >= 0)) return;
    const boundaries = this.boundaries;
    let bucket = 0;
    while (bucket < boundaries.length && value > boundaries[bucket]!) bucket++;
    this.counts[bucket]! += times;
    this.sum += value * times;
    this.count += times;
    if (value < this.min) this.min = value;
    if (value > this.max) this.max = value;
  }
}

export interface HistogramDescriptor {
  name: string;
  description: string;
  unit: string;
  /** Sorted bucket upper bounds. */
  boundaries: readonly number[];
}

/** One histogram: its rows keyed by up to two label values, as `CounterTable`'s. */
export class HistogramTable extends LabelRows<HistogramRow> {
  constructor(
    readonly descriptor: HistogramDescriptor,
    attributesOf: (first: string, second: string) => Attributes,
  ) {
    super((first, second) => new HistogramRow(attributesOf(first, second), descriptor.boundaries));
  }
}

/** A counter or gauge's name, description and unit, as an instrument declares them. */
export interface ObservedDescriptor {
  name: string;
  description: string;
  unit?: string;
}

/** Reports one value of gauge `name` (one of the callback's) with `attributes`, as `BatchObservableResult.observe` does. */
export type ObserveGauge<K extends string> = (name: K, value: number, attributes?: Attributes) => void;

const NO_ATTRIBUTES: Attributes = Object.freeze({});

/** What every metric of `MetricTables` shares: its descriptor (values as doubles, as the SDK's are) and cumulative. */
function cumulative(name: string, description: string, unit: string): Pick<MetricData, 'descriptor' | 'aggregationTemporality'> {
  return { descriptor: { name, description, unit, valueType: ValueType.DOUBLE }, aggregationTemporality: AggregationTemporality.CUMULATIVE };
}

/** Gauges read by one callback at each collection (a batch, as the SDK's batch observable callbacks). */
interface GaugeBatch {
  descriptors: ObservedDescriptor[];
  read(observe: (name: string, value: number, attributes?: Attributes) => void): void;
}

/**
 * The histograms, counters and gauges of one instrumentation scope, reported to a metric reader that lists this as one
 * of its producers. A metric without a data point is left out, as the SDK leaves it out.
 */
export class MetricTables implements MetricProducer {
  private readonly histograms = new Map<string, HistogramTable>();
  /** By name: a counter declared again replaces the one before (`createMetrics` called again: a test's next server). */
  private readonly counters = new Map<string, [ObservedDescriptor, CounterTable]>();
  /** By their first gauge's name, replaced alike. */
  private readonly gaugeBatches = new Map<string, GaugeBatch>();
  private readonly startTime: HrTime = hrTime();

  constructor(private readonly scope: { name: string; version?: string } = { name: 'beacon' }) {}

  /**
   * The histogram named `descriptor.name`, declared on first call. A second declaration of the same name gets the same
   * table, as the SDK returns the same storage for an instrument declared twice on one meter.
   */
  histogram(descriptor: HistogramDescriptor, attributesOf: (first: string, second: string) => Attributes): HistogramTable {
    let table = this.histograms.get(descriptor.name);
    if (table === undefined) {
      table = new HistogramTable(descriptor, attributesOf);
      this.histograms.set(descriptor.name, table);
    }
    return table;
  }

  /**
   * Reports `table`'s rows as the monotonic counter `descriptor` at each collection, instead of the table declared under
   * that name before, if any: one set of series a name, and nothing of an earlier set kept alive.
   */
  counter(descriptor: ObservedDescriptor, table: CounterTable): CounterTable {
    this.counters.set(descriptor.name, [descriptor, table]);
    return table;
  }

  /**
   * Reports what `read` observes at each collection as the gauges `descriptors` (keyed by name), instead of the batch
   * declared before with the same first gauge, if any (as `counter`).
   */
  gauges<K extends string>(descriptors: Record<K, Omit<ObservedDescriptor, 'name'>>, read: (observe: ObserveGauge<K>) => void): void {
    const list = Object.entries<Omit<ObservedDescriptor, 'name'>>(descriptors).map(([name, d]) => ({ name, ...d }));
    this.gaugeBatches.set(list[0]?.name ?? '', { descriptors: list, read: read as GaugeBatch['read'] });
  }

  /** A snapshot of every metric with at least one data point. */
  collect(): Promise<CollectionResult> {
    const endTime = hrTime();
    const startTime = this.startTime;
    const metrics: MetricData[] = [];
    for (const table of this.histograms.values()) {
      const { name, description, unit, boundaries } = table.descriptor;
      const dataPoints: HistogramMetricData['dataPoints'] = [];
      for (const row of table.rows()) {
        dataPoints.push({
          attributes: row.attributes,
          startTime,
          endTime,
          value: {
            buckets: { boundaries: [...boundaries], counts: [...row.counts] },
            sum: row.sum,
            count: row.count,
            ...(row.count > 0 ? { min: row.min, max: row.max } : {}),
          },
        });
      }
      if (dataPoints.length > 0) metrics.push({ ...cumulative(name, description, unit), dataPointType: DataPointType.HISTOGRAM, dataPoints });
    }
    for (const [{ name, description, unit = '' }, table] of this.counters.values()) {
      const dataPoints: SumMetricData['dataPoints'] = [];
      for (const row of table.rows()) dataPoints.push({ attributes: row.attributes, startTime, endTime, value: row.value });
      if (dataPoints.length > 0) {
        metrics.push({ ...cumulative(name, description, unit), dataPointType: DataPointType.SUM, isMonotonic: true, dataPoints });
      }
    }
    for (const batch of this.gaugeBatches.values()) {
      const points = new Map<string, GaugeMetricData['dataPoints']>(batch.descriptors.map((d) => [d.name, []]));
      batch.read((name, value, attributes = NO_ATTRIBUTES) => {
        points.get(name)?.push({ attributes, startTime, endTime, value });
      });
      for (const { name, description, unit = '' } of batch.descriptors) {
        const dataPoints = points.get(name)!;
        if (dataPoints.length > 0) metrics.push({ ...cumulative(name, description, unit), dataPointType: DataPointType.GAUGE, dataPoints });
      }
    }
    return Promise.resolve({
      resourceMetrics: { resource: emptyResource(), scopeMetrics: metrics.length === 0 ? [] : [{ scope: this.scope, metrics }] },
      errors: [],
    });
  }
}

/**
 * The process's metric tables: `createMetrics` declares Beacon's histograms, counters and gauges on it by default and
 * otel/sdk.ts gives it to the Prometheus exporter.
 */
export const processTables = new MetricTables();
