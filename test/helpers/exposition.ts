/**
 * A small parser of the Prometheus text exposition format, enough for asserting on Beacon's `/metrics`: families by
 * name with their TYPE and HELP, and every sample with its labels. Also reads the metric tables of docs/telemetry.md,
 * the contract.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  type: string;
  help: string;
  samples: Sample[];
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

function parseLabels(text: string | undefined): Record<string, string> {
  const labels: Record<string, string> = {};
  if (text === undefined) return labels;
  for (const m of text.matchAll(LABEL)) {
    labels[m[1] as string] = (m[2] as string).replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
  }
  return labels;
}

function parseValue(text: string): number {
  if (text === '+Inf') return Number.POSITIVE_INFINITY;
  if (text === '-Inf') return Number.NEGATIVE_INFINITY;
  return Number(text);
}

/** Parses an exposition into families keyed by family name (histogram samples sit under their base name). */
export function parseExposition(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const family = (name: string): Family => {
    let f = families.get(name);
    if (f === undefined) {
      f = { name, type: 'untyped', help: '', samples: [] };
      families.set(name, f);
    }
    return f;
  };
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    if (line.startsWith('# TYPE ')) {
      const [name, type] = line.slice('# TYPE '.length).split(' ');
      family(name as string).type = type as string;
      continue;
    }
    if (line.startsWith('# HELP ')) {
      const rest = line.slice('# HELP '.length);
      const space = rest.indexOf(' ');
      family(space === -1 ? rest : rest.slice(0, space)).help = space === -1 ? '' : rest.slice(space + 1);
      continue;
    }
    if (line.startsWith('#')) continue;
    const m = SAMPLE.exec(line);
    if (m === null) throw new Error(`unparseable exposition line: ${line}`);
    const sampleName = m[1] as string;
    let base = sampleName;
    for (const suffix of ['_bucket', '_sum', '_count']) {
      const candidate = sampleName.slice(0, -suffix.length);
      if (sampleName.endsWith(suffix) && families.get(candidate)?.type === 'histogram') base = candidate;
    }
    family(base).samples.push({ name: sampleName, labels: parseLabels(m[2]), value: parseValue(m[3] as string) });
  }
  return families;
}

/** Label keys used by a family's samples, without histogram's `le`. */
export function labelKeys(family: Family): string[] {
  const keys = new Set<string>();
  for (const s of family.samples) for (const k of Object.keys(s.labels)) if (k !== 'le') keys.add(k);
  return [...keys].sort();
}

/** Sum of the samples of `name` (a sample name, e.g. `x_total` or `x_count`) whose labels include `match`. */
export function sumOf(families: Map<string, Family>, name: string, match: Record<string, string> = {}): number {
  let total = 0;
  for (const f of families.values()) {
    for (const s of f.samples) {
      if (s.name !== name) continue;
      if (Object.entries(match).every(([k, v]) => s.labels[k] === v)) total += s.value;
    }
  }
  return total;
}

/** One row of the metric tables in `docs/telemetry.md`, the project's telemetry contract. */
export interface ContractMetric {
  name: string;
  type: 'counter' | 'gauge' | 'histogram';
  labels: string[];
}

/** The contract of record: `docs/telemetry.md` in this repository. */
export const CONTRACT_PATH = fileURLToPath(new URL('../../docs/telemetry.md', import.meta.url));

/**
 * Beacon's own metrics: every row of the `| metric | type | labels | meaning |` tables under `## Metrics` in
 * docs/telemetry.md, up to `### Runtime and process` (those series come from the runtime instrumentation and the
 * process collector, whose names the project does not choose). A row may list two names; a label cell lists label keys in
 * backticks, with allowed values in parentheses after a key (`` `direction` (`in`, `out`) ``).
 */
export function readContract(path: string = CONTRACT_PATH): ContractMetric[] {
  const text = readFileSync(path, 'utf8');
  const start = text.indexOf('\n## Metrics');
  if (start === -1) throw new Error(`${path}: no "## Metrics" section`);
  const end = text.indexOf('\n### Runtime and process', start);
  const section = text.slice(start, end === -1 ? undefined : end);
  const rows: ContractMetric[] = [];
  let inTable = false;
  for (const line of section.split('\n')) {
    if (line.startsWith('| metric |')) {
      inTable = true;
      continue;
    }
    if (!inTable) continue;
    if (!line.startsWith('|')) {
      inTable = false;
      continue;
    }
    if (/^\|\s*-/.test(line)) continue;
    const cells = line.split('|').map((c) => c.trim());
    const [, nameCell, typeCell, labelsCell] = cells;
    if (nameCell === undefined || typeCell === undefined || labelsCell === undefined) continue;
    const names = [...nameCell.matchAll(/`([a-z_]+)`/g)].map((m) => m[1] as string);
    if (typeCell !== 'counter' && typeCell !== 'gauge' && typeCell !== 'histogram') {
      throw new Error(`${path}: unknown type "${typeCell}" for ${nameCell}`);
    }
    const labels = [...labelsCell.replace(/\([^)]*\)/g, '').matchAll(/`([a-z_]+)`/g)].map((m) => m[1] as string).sort();
    for (const name of names) rows.push({ name, type: typeCell, labels });
  }
  if (rows.length === 0) throw new Error(`${path}: no metric table under "## Metrics"`);
  return rows;
}
