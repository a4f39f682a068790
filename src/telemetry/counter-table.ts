/**
 * Monotonic counters kept as plain numbers, one row per label set, reported by an observable counter at collection time.
 * A recorder finds its row with at most two Map lookups of strings it already holds and adds to a number: no attribute
 * object is built or hashed per message (the SDK's `Counter.add` sorts and serialises the attributes on every call).
 * Rows are created on first use, so a series appears on /metrics exactly when a synchronous counter's would.
 */
import type { Attributes, BatchObservableResult, Observable } from '@opentelemetry/api';

/** One label set's count and the attributes it is reported with (built once, when the row is created). */
export interface CounterRow {
  value: number;
  readonly attributes: Attributes;
}

/** Rows keyed by up to two label values (the second '' when a counter has one label). */
export class CounterTable {
  private readonly byFirst = new Map<string, Map<string, CounterRow>>();

  /** `attributesOf` builds a new row's attributes from its two label values. */
  constructor(private readonly attributesOf: (first: string, second: string) => Attributes) {}

  /** The row of (first, second), created at zero if new. */
  row(first: string, second = ''): CounterRow {
    let inner = this.byFirst.get(first);
    if (inner === undefined) {
      inner = new Map();
      this.byFirst.set(first, inner);
    }
    let row = inner.get(second);
    if (row === undefined) {
      row = { value: 0, attributes: this.attributesOf(first, second) };
      inner.set(second, row);
    }
    return row;
  }

  /** Reports every row on `instrument` (called from a batch observable callback). */
  observe(result: BatchObservableResult, instrument: Observable): void {
    for (const inner of this.byFirst.values()) {
      for (const row of inner.values()) result.observe(instrument, row.value, row.attributes);
    }
  }
}
