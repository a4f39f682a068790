/**
 * A small parser of the Prometheus text exposition format, enough for asserting on Beacon's `/metrics`: families by
 * name with their TYPE and HELP, and every sample with its labels. Also reads DESIGN §4's metric table, the contract.
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

/** One row of the DESIGN §4 metric table. */
export interface ContractMetric {
  name: string;
  type: 'counter' | 'gauge' | 'histogram';
  labels: string[];
}

/** DESIGN.md sits in shared/, beside the repository clone (here and in CI). */
export const DESIGN_PATH = fileURLToPath(new URL('../../../shared/DESIGN.md', import.meta.url));

/** The metric table of DESIGN §4: every row's names (a row may list two), type and label keys. */
export function readContract(path: string = DESIGN_PATH): ContractMetric[] {
  const text = readFileSync(path, 'utf8');
  const start = text.indexOf('## 4. Telemetry contract');
  if (start === -1) throw new Error(`${path}: no "## 4. Telemetry contract" section`);
  const section = text.slice(start);
  const rows: ContractMetric[] = [];
  let inTable = false;
  for (const line of section.split('\n')) {
    if (line.startsWith('| metric |')) {
      inTable = true;
      continue;
    }
    if (!inTable) continue;
    if (!line.startsWith('|')) break;
    if (/^\|\s*-/.test(line)) continue;
    const cells = line.split('|').map((c) => c.trim());
    const [, nameCell, typeCell, labelsCell] = cells;
    if (nameCell === undefined || typeCell === undefined || labelsCell === undefined) continue;
    const names = [...nameCell.matchAll(/`([a-z_]+)`/g)].map((m) => m[1] as string);
    if (typeCell !== 'counter' && typeCell !== 'gauge' && typeCell !== 'histogram') {
      throw new Error(`DESIGN §4: unknown type "${typeCell}" for ${nameCell}`);
    }
    const labels =
      labelsCell === '—' || labelsCell === '-' || labelsCell === ''
        ? []
        : labelsCell
            .split(',')
            .map((l) => l.trim())
            .sort();
    for (const name of names) rows.push({ name, type: typeCell, labels });
  }
  if (rows.length === 0) throw new Error('DESIGN §4: metric table not found');
  return rows;
}
