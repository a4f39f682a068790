/**
 * Rows of an instrument kept by Beacon itself, keyed by up to two label values (the second '' when there is one label).
 * Finding a row costs at most two Map lookups of strings the caller already holds: no attribute object is built, sorted or
 * serialised per record, as the SDK's synchronous instruments do on every call. A row is created on first use, so a
 * series appears on /metrics exactly when a synchronous instrument's would.
 */
export class LabelRows<Row> {
  private readonly byFirst = new Map<string, Map<string, Row>>();

  /** `create` builds a new row (with its attributes, built once) from its two label values. */
  constructor(private readonly create: (first: string, second: string) => Row) {}

  /** The row of (first, second), created if new. */
  row(first: string, second = ''): Row {
    let inner = this.byFirst.get(first);
    if (inner === undefined) {
      inner = new Map();
      this.byFirst.set(first, inner);
    }
    let row = inner.get(second);
    if (row === undefined) {
      row = this.create(first, second);
      inner.set(second, row);
    }
    return row;
  }

  /** Every row, in creation order. */
  *rows(): IterableIterator<Row> {
    for (const inner of this.byFirst.values()) yield* inner.values();
  }
}
