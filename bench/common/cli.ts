/** Command-line helpers of the bench commands. */
import { parseArgs, type ParseArgsConfig } from 'node:util';

/** The options every bench command that writes results takes. */
const COMMON_OPTIONS = {
  'no-write': { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

/** Parses the command line strictly with `options` plus `--no-write` and `--help`; `--help` prints `help` and exits. */
export function parseCommand<O extends NonNullable<ParseArgsConfig['options']>>(help: string, options: O) {
  const { values } = parseArgs({ options: { ...options, ...COMMON_OPTIONS }, strict: true as const });
  if ((values as { help?: boolean }).help) {
    process.stdout.write(help);
    process.exit(0);
  }
  return values;
}

/** `raw` as an integer in 1..`max`, or an error naming the option `--name`. */
export function positive(name: string, raw: string, max: number): number {
  return integerIn(name, raw, 1, max);
}

/** `raw` as an integer in 0..`max` (0 turns the step off), or an error naming the option `--name`. */
export function nonNegative(name: string, raw: string, max: number): number {
  return integerIn(name, raw, 0, max);
}

function integerIn(name: string, raw: string, min: number, max: number): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${name} must be an integer in ${min}..${max}, got "${raw}"`);
  return n;
}
