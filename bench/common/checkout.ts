/** Checkouts given to a bench with `--root`: how results name them. */
import { execFileSync } from 'node:child_process';
import { basename } from 'node:path';

/** A checkout's folder and commit, with `-dirty` when its server sources (src/, otel/) have uncommitted changes. */
export function checkoutLabel(root: string): string {
  const git = (...args: string[]): string => execFileSync('git', ['-C', root, ...args], { encoding: 'utf8' }).trim();
  const dirty = git('status', '--porcelain', '--', 'src', 'otel') !== '' ? '-dirty' : '';
  return `${basename(root)} @ ${git('rev-parse', '--short', 'HEAD')}${dirty}`;
}
