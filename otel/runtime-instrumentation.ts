/**
 * The Node runtime instrumentation (event loop, GC, heap) without its active-resources collector, which lists every handle
 * of the process on every scrape (`process.getActiveResourcesInfo()`: one string per socket, milliseconds at 10 000
 * connections). `v8js_resource_active` is served instead by src/telemetry/active-resources.ts, which lists them at most
 * once per scrape interval and never inside a scrape. The package offers no switch per collector, so the collector is
 * taken out of its private list before any meter sees it; if a release renames either, this throws at start-up rather
 * than serve the series twice (test/telemetry/active-resources.test.ts starts it).
 */
import { RuntimeNodeInstrumentation } from '@opentelemetry/instrumentation-runtime-node';

/** The name of the collector class this module removes (instrumentation-runtime-node 0.36). */
const LISTING_COLLECTOR = 'ActiveResourcesCollector';

/** The private field the instrumentation keeps its collectors in. */
interface CollectorList {
  _collectors?: { constructor: { name: string }; disable?: () => void }[];
}

/** RuntimeNodeInstrumentation minus the collector that lists every handle per scrape. */
export class RuntimeInstrumentation extends RuntimeNodeInstrumentation {
  constructor() {
    super();
    const self = this as unknown as CollectorList;
    const collectors = self._collectors;
    const kept = collectors?.filter((c) => c.constructor.name !== LISTING_COLLECTOR);
    if (collectors === undefined || kept === undefined || kept.length !== collectors.length - 1) {
      throw new Error(`@opentelemetry/instrumentation-runtime-node: no ${LISTING_COLLECTOR} to replace (package changed?)`);
    }
    self._collectors = kept;
  }
}
