/**
 * Histograms kept as plain numbers (explicit buckets, sum, count, min, max per label set) and handed to the metric reader
 * by a `MetricProducer` at collection time, the way `CounterTable` does for counters.
 *
 * The SDK's `Histogram.record` serialises and hashes its attribute set and reads the clock on every call (~1 µs each in a
 * tight loop, several times that in a server whose code is cold between two connects); a connect records five histograms
 * and a one-recipient publish three. Here a recorder holds its row (or finds it with two Map lookups) and adds to numbers.
 *
 * The data is what the SDK's explicit-bucket aggregation reports, cumulative: bucket i counts the values v with
 * boundaries[i-1] < v <= boundaries[i], the last bucket those above every boundary; NaN and negative values are ignored,
 * as the SDK ignores them. The Prometheus exporter takes the producer through its `metricProducers` option (otel/sdk.ts)
 * and renders these histograms exactly as it renders the SDK's.
 */
import { ValueType, type Attributes, type HrTime } from '@opentelemetry/api';
import { hrTime } from '@opentelemetry/core';
import { emptyResource } from '@opentelemetry/resources';
import {
  AggregationTemporality,
  DataPointType,
  type CollectionResult,
  type HistogramMetricData,
  type MetricProducer,
} from '@opentelemetry/sdk-metrics';
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

/** The histograms of one instrumentation scope, reported to a metric reader that lists this as one of its producers. */
export class HistogramProducer implements MetricProducer {
  private readonly tables = new Map<string, HistogramTable>();
  private readonly startTime: HrTime = hrTime();

  constructor(private readonly scope: { name: string; version?: string } = { name: 'beacon' }) {}

  /**
   * The histogram named `descriptor.name`, declared on first call. A second declaration of the same name gets the same
   * table, as the SDK returns the same storage for an instrument declared twice on one meter.
   */
  histogram(descriptor: HistogramDescriptor, attributesOf: (first: string, second: string) => Attributes): HistogramTable {
    let table = this.tables.get(descriptor.name);
    if (table === undefined) {
      table = new HistogramTable(descriptor, attributesOf);
      this.tables.set(descriptor.name, table);
    }
    return table;
  }

  /** A snapshot of every histogram with at least one row (a histogram never recorded is left out, as the SDK does). */
  collect(): Promise<CollectionResult> {
    const endTime = hrTime();
    const metrics: HistogramMetricData[] = [];
    for (const table of this.tables.values()) {
      const { name, description, unit, boundaries } = table.descriptor;
      const dataPoints: HistogramMetricData['dataPoints'] = [];
      for (const row of table.rows()) {
        dataPoints.push({
          attributes: row.attributes,
          startTime: this.startTime,
          endTime,
          value: {
            buckets: { boundaries: [...boundaries], counts: [...row.counts] },
            sum: row.sum,
            count: row.count,
            ...(row.count > 0 ? { min: row.min, max: row.max } : {}),
          },
        });
      }
      if (dataPoints.length === 0) continue;
      metrics.push({
        descriptor: { name, description, unit, valueType: ValueType.DOUBLE },
        aggregationTemporality: AggregationTemporality.CUMULATIVE,
        dataPointType: DataPointType.HISTOGRAM,
        dataPoints,
      });
    }
    return Promise.resolve({
      resourceMetrics: { resource: emptyResource(), scopeMetrics: metrics.length === 0 ? [] : [{ scope: this.scope, metrics }] },
      errors: [],
    });
  }
}

/**
 * The process's histograms: `createMetrics` declares Beacon's on it by default and otel/sdk.ts gives it to the Prometheus
 * exporter.
 */
export const processHistograms = new HistogramProducer();
