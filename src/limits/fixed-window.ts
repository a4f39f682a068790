/** A fixed window counter, one second unless told: the cheapest rate limit that is exact enough for flood protection. */
export class FixedWindow {
  private windowStart = 0;
  private count = 0;

  /** `perWindow` of 0 means unlimited. */
  constructor(
    private readonly perWindow: number,
    private readonly windowMs = 1000,
  ) {}

  /** Counts one event at `now` (ms) and says whether it is within the limit. */
  allow(now: number): boolean {
    if (this.perWindow === 0) return true;
    if (now - this.windowStart >= this.windowMs) {
      this.windowStart = now;
      this.count = 0;
    }
    this.count++;
    return this.count <= this.perWindow;
  }

  /**
   * Counts `count` more events at `now` without asking: work already done that was worth that many (an answer far larger
   * than the frame that asked for it). Past the limit, the next `allow` in this window says no.
   */
  charge(count: number, now: number): void {
    if (this.perWindow === 0 || count <= 0) return;
    if (now - this.windowStart >= this.windowMs) {
      this.windowStart = now;
      this.count = 0;
    }
    this.count += count;
  }

  /** Whether the events counted in the window of `now` are within the limit (a new window: none counted yet). */
  within(now: number): boolean {
    return this.perWindow === 0 || now - this.windowStart >= this.windowMs || this.count <= this.perWindow;
  }

  /** The limit per window (0: none). */
  get limit(): number {
    return this.perWindow;
  }

  /** Events counted in the current window so far (`allow`'s refused ones too): `limit + 1` at the first refusal. */
  get counted(): number {
    return this.count;
  }

  /** Milliseconds from `now` until the current window ends and the count starts again. */
  resetsIn(now: number): number {
    return Math.max(0, this.windowStart + this.windowMs - now);
  }
}
