/** `npm start` and the image run Beacon with the same node options (the V8 ones matter for its CPU: docs/scaling.md). */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startArgs } from './helpers/start-command.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));

test('the Dockerfile runs what npm start runs, node options included', () => {
  const dockerfile = readFileSync(new URL('../Dockerfile', import.meta.url), 'utf8');
  const cmd = /^CMD (\[.*\])$/m.exec(dockerfile)?.[1];
  assert.ok(cmd !== undefined, 'the Dockerfile has an exec-form CMD');
  assert.deepEqual(JSON.parse(cmd), ['node', ...startArgs(ROOT)]);
  // The young generation of V8 that the benchmarks measured (docs/scaling.md, "The Node process").
  assert.ok(startArgs(ROOT).includes('--max-semi-space-size=32'));
});
