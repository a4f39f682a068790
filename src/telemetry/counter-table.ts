/**
 * Monotonic counters kept as plain numbers, one row per label set, reported at collection time by `MetricTables`
 * (histogram-table.ts). A recorder finds its row in a `LabelRows` and adds to a number: no attribute object is built or
 * hashed per message (the SDK's `Counter.add` sorts and serialises the attributes on every call).
 */
import type { Attributes } from '@opentelemetry/api';
import { LabelRows } from './label-rows.js';

/** One label set's count and the attributes it is reported with (built once, when the row is created). */
export interface CounterRow {
  value: number;
  readonly attributes: Attributes;
}

/** Rows keyed by up to two label values (the second '' when a counter has one label). */
export class CounterTable extends LabelRows<CounterRow> {
  /** `attributesOf` builds a new row's attributes from its two label values. */
  constructor(attributesOf: (first: string, second: string) => Attributes) {
    super((first, second) => ({ value: 0, attributes: attributesOf(first, second) }));
  }
}
