/**
 * The lines waiting for Loki, in the order they were written, bounded in bytes. Pure data: no I/O, no timers, so the bound
 * and the order are unit-tested (test/telemetry/loki-spool.test.ts).
 *
 * A batch is taken from the head and, when its push fails with something a retry can fix, put back at the head, so lines
 * reach Loki in the order they were written whatever fails in between. Past `maxBytes` the oldest lines are dropped — the
 * only way a line leaves without being shipped besides a 4xx Loki will never accept and the end of the shutdown budget.
 */

/** One batch taken for a push. */
export interface SpoolBatch {
  lines: string[];
  bytes: number;
}

/** Lines waiting for Loki; see the module comment. */
export class LokiSpool {
  private lines: string[] = [];
  /** Index of the first waiting line in `lines` (taking from the head is O(1); the array is compacted now and then). */
  private head = 0;
  private byteCount = 0;

  constructor(private readonly maxBytes: number) {}

  /** Bytes waiting (UTF-16 code units, close enough to UTF-8 bytes for a bound on JSON lines). */
  get bytes(): number {
    return this.byteCount;
  }

  /** Lines waiting. */
  get size(): number {
    return this.lines.length - this.head;
  }

  /** Appends a line; returns how many of the oldest lines were dropped to stay within the bound. */
  add(line: string): number {
    this.lines.push(line);
    this.byteCount += line.length;
    return this.trim();
  }

  /**
   * Takes lines from the head, at most `maxBytes` (at least one line) and `maxLines`. They no longer count against the
   * bound until `putBack` returns them.
   */
  take(maxBytes: number, maxLines: number): SpoolBatch {
    const lines: string[] = [];
    let bytes = 0;
    while (this.head < this.lines.length && lines.length < maxLines) {
      const line = this.lines[this.head] as string;
      if (lines.length > 0 && bytes + line.length > maxBytes) break;
      lines.push(line);
      bytes += line.length;
      this.head++;
    }
    this.byteCount -= bytes;
    this.compact();
    return { lines, bytes };
  }

  /** Returns a batch whose push failed to the head, in its order; returns how many of the oldest lines were dropped. */
  putBack(batch: SpoolBatch): number {
    this.compact(true);
    this.lines = batch.lines.concat(this.lines);
    this.byteCount += batch.bytes;
    return this.trim();
  }

  /** Empties the spool; returns how many lines were in it. */
  clear(): number {
    const n = this.size;
    this.lines = [];
    this.head = 0;
    this.byteCount = 0;
    return n;
  }

  private trim(): number {
    let dropped = 0;
    while (this.byteCount > this.maxBytes && this.head < this.lines.length) {
      this.byteCount -= (this.lines[this.head] as string).length;
      this.head++;
      dropped++;
    }
    this.compact();
    return dropped;
  }

  private compact(force = false): void {
    if (this.head > 0 && (force || this.head >= 1024 || this.head * 2 >= this.lines.length)) {
      this.lines = this.lines.slice(this.head);
      this.head = 0;
    }
  }
}
