/**
 * A crash (an uncaught exception, or a rejection nothing handled) is a `process_crashed` fatal line with the error's stack,
 * written to stdout (and so to Loki) before the process exits 1. Node alone printed the stack on stderr only: no line in
 * Loki said why a node died, and `loki_shipping_stopped` never came.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { within } from '../helpers/wait.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/crash.ts', import.meta.url));

for (const [how, origin, message] of [
  ['throw', 'uncaughtException', 'boom in a timer'],
  ['reject', 'unhandledRejection', 'nobody handled this'],
] as const) {
  test(`a crash (${origin}) is logged as process_crashed, fatal, with its stack, then the process exits 1`, async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, how], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    const code = await within(new Promise<number | null>((resolve) => child.once('close', resolve)), 'the process to exit', 10_000);
    assert.equal(code, 1);
    const lines = stdout.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
    const crash = lines.find((l) => l.event === 'process_crashed');
    assert.ok(crash !== undefined, stdout);
    assert.equal(crash.level, 'fatal');
    assert.equal(crash.origin, origin);
    const err = crash.err as { message: string; stack: string };
    assert.equal(err.message, message);
    assert.match(err.stack, /crash\.ts/);
    assert.deepEqual(lines.map((l) => l.event), ['server_started', 'process_crashed']);
  });
}

test('a crash whose line stdout cannot take (a full disk) says its reason on stderr', async () => {
  // A review: with stdout closed or full the process exited 1 with nothing but `stdout_failed` on stderr.
  const full = openSync('/dev/full', 'w');
  const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, 'throw'], { stdio: ['ignore', full, 'pipe'] });
  closeSync(full);
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  const code = await within(new Promise<number | null>((resolve) => child.once('close', resolve)), 'the process to exit', 10_000);
  assert.equal(code, 1);
  assert.match(stderr, /"stdout_failed"/);
  assert.match(stderr, /Error: boom in a timer\n\s+at .*crash\.ts/);
});
