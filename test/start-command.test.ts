/** `npm start` and the image run Beacon with the same node options (the V8 ones matter for its CPU: docs/scaling.md). */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
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

/** The process ids below `pid` (children, their children…), from /proc. */
function descendants(pid: number): number[] {
  let children: number[] = [];
  try {
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      const text = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim();
      if (text !== '') children.push(...text.split(/\s+/).map(Number));
    }
  } catch {
    return [];
  }
  children = [...new Set(children)];
  return [...children, ...children.flatMap(descendants)];
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

// A supervisor that runs `npm start` stops it by signalling npm, which forwards the signal to the script's shell: a
// shell that ran node as its child died of it and left node serving on, an orphan (SIGINT did nothing at all).
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  test(`npm start: ${signal} sent to npm reaches the server, which shuts down and exits`, { timeout: 120_000 }, async () => {
    const npm = spawn('npm', ['start', '--silent'], {
      cwd: ROOT,
      env: { ...process.env, HOST: '127.0.0.1', PORT: '0', OTEL_SDK_DISABLED: 'true', LOG_LEVEL: 'info', SHUTDOWN_GRACE_MS: '0' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let output = '';
    const started = new Promise<void>((resolve, reject) => {
      npm.stdout.on('data', (b: Buffer) => {
        output += b.toString();
        if (output.includes('"event":"server_started"')) resolve();
      });
      npm.once('close', () => reject(new Error(`npm start ended before server_started:\n${output}`)));
    });
    // 'close': stdout's end too, which the server holds as long as it runs, orphan or not.
    const closed = new Promise<void>((resolve) => npm.once('close', () => resolve()));
    let below: number[] = [];
    try {
      await started;
      below = descendants(npm.pid!);
      assert.ok(below.length > 0, 'npm runs the server below it');
      npm.kill(signal);
      const within = await Promise.race([closed.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 20_000).unref())]);
      assert.ok(within, `the server still holds stdout 20 s after ${signal} to npm:\n${output}`);
      assert.match(output, /"event":"shutdown_completed"/);
      assert.deepEqual(below.filter(alive), []);
    } finally {
      for (const pid of [npm.pid!, ...below]) if (alive(pid)) process.kill(pid, 'SIGKILL');
    }
  });
}
