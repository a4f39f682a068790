/**
 * The repository stands on its own: a fresh clone has nothing beside it, so no tracked file may read or link a path that
 * leaves the repository (the team's notes in a folder beside the clone, `../../x` from the top, …). `.ci/run` also runs the
 * suite from a copy with nothing beside it; this test names the offending file at once.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, normalize, sep } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

/** Tracked text files, without the lock file (package paths only) and generated dashboards (no paths at all). */
function trackedFiles(): string[] {
  const out = execFileSync('git', ['ls-files', '-z'], { cwd: root, encoding: 'utf8' });
  return out.split('\0').filter((f) => f !== '' && f !== 'package-lock.json' && !f.endsWith('.png'));
}

/** The folder of team notes that sits beside the clone on developer machines, spelled so this file does not name it. */
const BESIDE = ['..', 'shared'].join('/');

const leaves = (path: string): boolean => {
  const n = normalize(path);
  return n === '..' || n.startsWith(`..${sep}`);
};

test('no tracked file reads or links outside the repository', () => {
  const offenders: string[] = [];
  const files = trackedFiles();
  assert.ok(files.length > 100, `${files.length} tracked files`);
  for (const file of files) {
    const text = readFileSync(join(root, file), 'utf8');
    if (text.includes(BESIDE)) offenders.push(`${file}: names ${BESIDE}`);
    // Relative paths in quotes or markdown links that climb above the repository's top. Sources under src/ and otel/
    // also run compiled from dist/<same folder>, one level deeper.
    for (const m of text.matchAll(/["'(`]((?:\.\.\/)+[\w.-][\w./-]*)/g)) {
      const path = m[1] as string;
      const inside = [dirname(file), join('dist', dirname(file))].some((from) => !leaves(join(from, path)));
      if (!inside) offenders.push(`${file}: ${path}`);
    }
  }
  assert.deepEqual(offenders, []);
});
