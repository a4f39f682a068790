/**
 * The one JSON shape every benchmark writes to bench/results/<scenario>.json, and the machine stamp that goes in it.
 * render-results.ts turns every such file into its own section of bench/RESULTS.md; bench/README.md documents the shape.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, relative } from 'node:path';

/** A metric cell: a number (rendered with sensible precision) or a short string. */
export type MetricValue = number | string | null;

/** One line of a results table: `name` first, then any metrics (medians, ratios, counts). */
export interface ResultRow {
  name: string;
  [metric: string]: MetricValue;
}

/** Optional column order and labels; without it the renderer uses the row keys in first-seen order. */
export interface ResultColumn {
  key: string;
  label: string;
}

/** The common shape of bench/results/*.json. */
export interface BenchResults {
  /** Short id, also the file name: `fanout` → bench/results/fanout.json. */
  scenario: string;
  /** Section heading; defaults to `scenario`. */
  title?: string;
  /** The exact command that produced the file, as a person would type it. */
  command: string;
  /** ISO 8601, when the run finished. */
  date: string;
  /** `git rev-parse --short HEAD` (suffixed `-dirty` when the measured sources had uncommitted changes). */
  commit: string;
  /** `process.version`. */
  node: string;
  /** CPU model from /proc/cpuinfo. */
  cpu: string;
  /** Logical cores the machine has. */
  cores: number;
  /** How many times each measurement was repeated; the rows hold medians over these runs. */
  runs: number;
  columns?: ResultColumn[];
  rows: ResultRow[];
  /** Method, workload and caveats, one sentence or paragraph per entry. */
  notes: string[];
}

/** What `git …args` prints (untrimmed: porcelain lines may start with a space), '' when it fails. */
function git(...args: string[]): string {
  try {
    return execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return '';
  }
}

/**
 * The checkout as the benchmark found it, read when this module is loaded (every runner imports it before it builds or
 * runs anything): a commit made while a long run goes on must not be the one its results are stamped with.
 */
const SOURCE_AT_START = {
  commit: git('rev-parse', '--short', 'HEAD').trim() || 'unknown',
  /** Files with uncommitted changes, untracked ones too (`git status --porcelain`; renames by their new path). */
  changed: git('status', '--porcelain', '--untracked-files=all')
    .split('\n')
    .filter((line) => line.length > 3)
    .map((line) => line.slice(3).split(' -> ').pop()!),
};

/**
 * The machine and source fields of BenchResults: the commit the benchmark started on, `-dirty` when `dirtyPaths` (files
 * or folders) had uncommitted changes then; the date is now.
 */
export function machineStamp(dirtyPaths: string[] = ['src']): Pick<BenchResults, 'date' | 'commit' | 'node' | 'cpu' | 'cores'> {
  const { commit } = SOURCE_AT_START;
  const dirty = SOURCE_AT_START.changed.some((path) => dirtyPaths.some((p) => path === p || path.startsWith(`${p.replace(/\/$/, '')}/`)));
  let cpu = cpus()[0]?.model ?? 'unknown';
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('model name'));
    if (line !== undefined) cpu = line.slice(line.indexOf(':') + 1).trim();
  } catch {
    // Not Linux: os.cpus() already gave a model.
  }
  return { date: new Date().toISOString(), commit: dirty ? `${commit}-dirty` : commit, node: process.version, cpu, cores: cpus().length };
}

/**
 * The command line as typed: `npm run bench -- <args>` when started by the npm script, otherwise node's own argv.
 * `script` is the npm script name that runs this file.
 */
export function commandLine(script: string): string {
  const args = process.argv.slice(2).map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`));
  if (process.env.npm_lifecycle_event === script) return ['npm run', script, ...(args.length > 0 ? ['--', ...args] : [])].join(' ');
  const file = process.argv[1] === undefined ? '' : relative(process.cwd(), process.argv[1]);
  return ['node', ...process.execArgv, file, ...args].join(' ');
}

/** Writes one results file (pretty JSON, trailing newline). */
export function writeResults(path: string, results: BenchResults): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(results, null, 2)}\n`);
}
