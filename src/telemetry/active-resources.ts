/**
 * `v8js_resource_active` (handles keeping the event loop alive, per type) without listing every handle on every scrape.
 *
 * The only source is `process.getActiveResourcesInfo()`, which returns one string per handle: with 10 000 connections that
 * is 10 000 strings to allocate and count, 2 to 90 ms on this 2-core machine, and the runtime instrumentation did it inside
 * every scrape. Here a scrape reports the last counts and, when they are older than `maxAgeMs`, recounts right after the
 * scrape (setImmediate), so no scrape waits for the listing and the process lists its handles at most once per `maxAgeMs`,
 * however often it is scraped. Only the very first scrape counts synchronously (there is nothing to report before).
 */
import type { Meter, ObservableResult } from '@opentelemetry/api';

/** How old the counts a scrape reports may be: one usual Prometheus scrape interval. */
export const RESOURCE_COUNTS_MAX_AGE_MS = 15_000;

/** The instrument and attribute names of the OpenTelemetry semantic conventions (as the runtime instrumentation uses). */
const METRIC_V8JS_RESOURCE_ACTIVE = 'v8js.resource.active';
const ATTR_V8JS_RESOURCE_TYPE = 'v8js.resource.type';

/** Counts of active resources per type, kept between recounts; a type seen once keeps reporting (0 when gone). */
export class ResourceCounts {
  private counts = new Map<string, number>();
  private countedAt = Number.NEGATIVE_INFINITY;
  private recountQueued = false;

  constructor(
    private readonly list: () => readonly string[] = () => process.getActiveResourcesInfo(),
    private readonly maxAgeMs: number = RESOURCE_COUNTS_MAX_AGE_MS,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** The counts to report now; schedules a recount after this scrape when they are stale. */
  read(): ReadonlyMap<string, number> {
    if (this.countedAt === Number.NEGATIVE_INFINITY) this.recount();
    else if (this.now() - this.countedAt >= this.maxAgeMs && !this.recountQueued) {
      this.recountQueued = true;
      setImmediate(() => {
        this.recountQueued = false;
        this.recount();
      }).unref();
    }
    return this.counts;
  }

  /** Lists the handles once and replaces the counts. */
  recount(): void {
    const next = new Map<string, number>();
    for (const type of this.counts.keys()) next.set(type, 0);
    for (const type of this.list()) next.set(type, (next.get(type) ?? 0) + 1);
    this.counts = next;
    this.countedAt = this.now();
  }
}

/** Declares `v8js_resource_active{v8js_resource_type}` on `meter`, read from `counts` at collection time. */
export function registerActiveResources(meter: Meter, counts: ResourceCounts = new ResourceCounts()): void {
  const gauge = meter.createObservableGauge(METRIC_V8JS_RESOURCE_ACTIVE, {
    description: 'Count of the active resources that are currently keeping the event loop alive.',
    unit: '{resource}',
  });
  gauge.addCallback((result: ObservableResult) => {
    for (const [type, n] of counts.read()) result.observe(n, { [ATTR_V8JS_RESOURCE_TYPE]: type });
  });
}
