/**
 * What `npm start` runs, read from a checkout's package.json: the node options and the entry of its `start` script.
 * Every test and benchmark that runs Beacon compiled starts it with these, so they measure what production runs (the
 * V8 options included: `--max-semi-space-size`, docs/scaling.md "The Node process"); a checkout of another commit (an
 * A/B benchmark's `--root`) is run as that commit's own `npm start` ran it.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The arguments of `node` in `root`'s `npm start` (options, `--import`s, the entry), relative to `root`. */
export function startArgs(root: string): string[] {
  const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts?: { start?: string } };
  // `exec node …`: the shell npm runs the script in becomes node, so the signals npm forwards reach it (an older
  // checkout's script has no `exec`).
  const words = (manifest.scripts?.start ?? '').trim().split(/\s+/);
  if (words[0] === 'exec') words.shift();
  if (words[0] !== 'node' || words.length < 2) throw new Error(`${root}/package.json: "start" is not a node command line: ${manifest.scripts?.start}`);
  return words.slice(1);
}
