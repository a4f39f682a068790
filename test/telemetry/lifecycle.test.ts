/**
 * src/telemetry/lifecycle.ts in a fresh process per case (the registry is module state): hooks run once, concurrently,
 * a failing hook is counted and never rejects, a hanging one is cut at the bound.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Runs `body` (an async module body with `lifecycle` imported) and returns its last stdout line as JSON. */
function run(body: string): Record<string, unknown> {
  const code = `import * as lifecycle from './src/telemetry/lifecycle.ts';\n${body}`;
  const result = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 20_000,
  });
  assert.equal(result.status, 0, result.stderr);
  const last = result.stdout.trim().split('\n').pop() ?? '';
  return JSON.parse(last) as Record<string, unknown>;
}

describe('shutdownTelemetry', () => {
  it('resolves at once with no hook registered (telemetry disabled)', () => {
    const out = run(`
      const t = performance.now();
      await lifecycle.shutdownTelemetry(5000);
      console.log(JSON.stringify({ ms: performance.now() - t, result: lifecycle.telemetryShutdownResult() }));
    `);
    assert.ok(Number(out.ms) < 50);
  });

  it('runs every hook once, counts failures, never rejects', () => {
    const out = run(`
      let calls = 0;
      lifecycle.onTelemetryShutdown(async () => { calls++; });
      lifecycle.onTelemetryShutdown(async () => { calls++; throw new Error('export failed'); });
      await Promise.all([lifecycle.shutdownTelemetry(1000), lifecycle.shutdownTelemetry(1000)]);
      await lifecycle.shutdownTelemetry(1000);
      console.log(JSON.stringify({ calls, result: lifecycle.telemetryShutdownResult() }));
    `);
    assert.equal(out.calls, 2);
    assert.deepEqual(out.result, { completed: 1, failed: 1, timedOut: false });
  });

  it('is bounded: a hook that never settles is cut at the timeout', () => {
    const out = run(`
      lifecycle.onTelemetryShutdown(() => new Promise(() => {}));
      const t = performance.now();
      await lifecycle.shutdownTelemetry(200);
      console.log(JSON.stringify({ ms: performance.now() - t, result: lifecycle.telemetryShutdownResult() }));
    `);
    assert.ok(Number(out.ms) >= 190 && Number(out.ms) < 2000, `took ${out.ms} ms`);
    assert.deepEqual(out.result, { completed: 0, failed: 0, timedOut: true });
  });
});
