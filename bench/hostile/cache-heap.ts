/**
 * The cache reproduction as one command: 2200 client events of 99 KB on `private-cache-*` channels, set into the
 * local adapter's cache as the publisher does, then the heap that stays held (after a full GC), and how many the byte
 * bound evicted. Print only: no results file.
 *
 *   node --expose-gc --import tsx bench/hostile/cache-heap.ts [--root DIR] [--events 2200] [--bytes 99000]
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { Adapter } from '../../src/adapters/adapter.js';
import type { LocalAdapterOptions } from '../../src/adapters/local-adapter.js';
import type { loadConfig as LoadConfig } from '../../src/config.js';
import type { Hub as HubClass } from '../../src/realtime/hub.js';
import { ROOT } from '../fanout/targets.js';

const { values } = parseArgs({
  options: { root: { type: 'string' }, events: { type: 'string', default: '2200' }, bytes: { type: 'string', default: '99000' } },
  strict: true,
});
const root = values.root === undefined ? ROOT : resolve(values.root);
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with node --expose-gc');
// The modules of `root` (another checkout's sources, e.g. before the fix), loaded through tsx like the tests load them.
const { createLocalAdapter } = (await import(pathToFileURL(`${root}/src/adapters/local-adapter.ts`).href)) as {
  createLocalAdapter: (options: LocalAdapterOptions) => Adapter;
};
const { Hub } = (await import(pathToFileURL(`${root}/src/realtime/hub.ts`).href)) as { Hub: typeof HubClass };
// CACHE_MAX_BYTES as that checkout configures it by default (undefined where it had no bound yet).
const { loadConfig } = (await import(pathToFileURL(`${root}/src/config.ts`).href)) as { loadConfig: typeof LoadConfig };

gc();
const before = process.memoryUsage().heapUsed;
let evicted = 0;
// Checkouts before the cluster-wide membership still take a hub; a non-literal object lets this one call serve both.
const options = {
  hub: new Hub([]),
  metrics: { adapterMessage: () => undefined, adapterRequest: () => undefined },
  cacheTtlMs: 30 * 60 * 1000,
  cacheMaxBytes: loadConfig({}).cacheMaxBytes,
  onCacheEvicted: () => evicted++,
};
const adapter = createLocalAdapter(options);
const events = Number(values.events);
for (let i = 0; i < events; i++) {
  adapter.cacheSet('app-id', `private-cache-${i}`, { event: 'client-x', data: JSON.stringify({ pad: String(i).padEnd(Number(values.bytes), 'x') }) });
}
gc();
const heldMiB = (process.memoryUsage().heapUsed - before) / 1048576;
process.stdout.write(`${root}: ${events} cache events of ${values.bytes} bytes leave ${heldMiB.toFixed(1)} MiB of heap; ${evicted} evicted\n`);
