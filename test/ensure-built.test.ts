/**
 * scripts/ensure-built.mjs (run before `npm start` and `npm test`) in a checkout whose path has a space: it read its
 * root as a URL's path (`%20`), found nothing there, and neither installed nor built — `npm start` then failed on a
 * missing dist/ (a review). Run here from such a root with `npm` and `npx` stand-ins that record where they were asked
 * to run.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(new URL('../scripts/ensure-built.mjs', import.meta.url));

test('ensure-built installs and builds a checkout whose path has a space', () => {
  const dir = mkdtempSync(join(tmpdir(), 'beacon ensure '));
  try {
    const root = join(dir, 'a checkout');
    mkdirSync(join(root, 'scripts'), { recursive: true });
    mkdirSync(join(root, 'src'));
    copyFileSync(SCRIPT, join(root, 'scripts', 'ensure-built.mjs'));
    writeFileSync(join(root, 'package-lock.json'), '{}');
    writeFileSync(join(root, 'src', 'main.ts'), '');
    // No node_modules and no dist: both steps are due.
    const bin = join(dir, 'bin');
    mkdirSync(bin);
    const calls = join(dir, 'calls.txt');
    for (const tool of ['npm', 'npx']) {
      writeFileSync(join(bin, tool), `#!/bin/sh\necho "${tool} $* @ $(pwd)" >> "${calls}"\n`);
      chmodSync(join(bin, tool), 0o755);
    }
    execFileSync(process.execPath, [join(root, 'scripts', 'ensure-built.mjs')], {
      env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}` },
      stdio: 'pipe',
    });
    assert.deepEqual(readFileSync(calls, 'utf8').trim().split('\n'), [
      `npm ci --no-audit --no-fund @ ${root}`,
      `npx tsc -p tsconfig.json @ ${root}`,
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
