// Runs before `npm start` and `npm test`: installs dependencies when node_modules is missing or older than the lock file,
// and compiles TypeScript when dist/ is missing or older than any source file. Plain Node, no dependencies.
import { execSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

// A path, not a URL's: `.pathname` kept `%20` for a space, and in such a checkout nothing was ever installed or built.
const root = fileURLToPath(new URL('..', import.meta.url));
const mtime = (p) => (existsSync(p) ? statSync(p).mtimeMs : 0);
const newest = (dir) => {
  let max = 0;
  if (!existsSync(dir)) return max;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    max = Math.max(max, entry.isDirectory() ? newest(p) : mtime(p));
  }
  return max;
};
const run = (cmd) => execSync(cmd, { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });

const installed = join(root, 'node_modules/.package-lock.json');
if (mtime(installed) < mtime(join(root, 'package-lock.json'))) run('npm ci --no-audit --no-fund');
const built = join(root, 'dist/src/main.js');
const sources = Math.max(newest(join(root, 'src')), newest(join(root, 'otel')), mtime(join(root, 'tsconfig.json')));
if (mtime(built) < sources) run('npx tsc -p tsconfig.json');
