/**
 * Reading a Prometheus `/metrics` page, shared by beacon-load's audit and beacon-monitor: samples with their labels, sums
 * over label matches, and a bounded GET. The text format is small and stable; the npm parsers for it are unmaintained and
 * untyped, so these ~60 lines are ours.
 */

/** One sample line: `name{labels} value`. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** One scrape: its samples and when it was taken (ms since the epoch). */
export interface Scrape {
  at: number;
  samples: Sample[];
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

function parseValue(text: string): number {
  if (text === '+Inf') return Number.POSITIVE_INFINITY;
  if (text === '-Inf') return Number.NEGATIVE_INFINITY;
  return Number(text);
}

/** Parses the text exposition format (comments and unparseable lines are skipped). */
export function parseExposition(text: string, at = Date.now()): Scrape {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = SAMPLE.exec(line.trim());
    if (m === null) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(LABEL)) {
      labels[l[1] as string] = (l[2] as string).replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
    }
    samples.push({ name: m[1] as string, labels, value: parseValue(m[3] as string) });
  }
  return { at, samples };
}

/** Samples named `name` whose labels include every pair of `match`. */
export function select(scrape: Scrape, name: string, match: Record<string, string> = {}): Sample[] {
  return scrape.samples.filter(
    (s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v),
  );
}

/** Sum of `select(…)`; 0 when no series exists yet (a counter nobody incremented is not exported). */
export function sum(scrape: Scrape, name: string, match: Record<string, string> = {}): number {
  let total = 0;
  for (const s of select(scrape, name, match)) total += s.value;
  return total;
}

/** Sums of `name` grouped by the value of `label` (series without it are grouped under ""). */
export function sumBy(scrape: Scrape, name: string, label: string, match: Record<string, string> = {}): Map<string, number> {
  const out = new Map<string, number>();
  for (const s of select(scrape, name, match)) {
    const key = s.labels[label] ?? '';
    out.set(key, (out.get(key) ?? 0) + s.value);
  }
  return out;
}

/**
 * Why `scrape` is not a Beacon node's /metrics (undefined when it is): Beacon always exports `websocket_build_info`, and
 * its other series are all `websocket_*`; a page with none (a /healthz, another exporter, an HTML page) is someone else's.
 */
export function notBeaconMetrics(scrape: Scrape, url: string): string | undefined {
  if (scrape.samples.some((s) => s.name.startsWith('websocket_'))) return undefined;
  const what = scrape.samples.length === 0 ? 'no Prometheus sample at all' : `${scrape.samples.length} samples, none of them websocket_*`;
  return `${url} is not a Beacon /metrics endpoint: no websocket_build_info or other websocket_* series (${what})`;
}

/** GETs and parses `url`; rejects on a non-200 answer or after `timeoutMs`. */
export async function scrape(url: string, timeoutMs = 5000): Promise<Scrape> {
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } };
    throw new Error(`cannot read ${url}: ${e.cause?.code ?? e.name}`, { cause: err });
  }
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${url} answered ${res.status}`);
  return parseExposition(text);
}
