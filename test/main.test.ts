/** The entry point refuses bad start-up conditions with one clear line and exit code 1, never a stack trace. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../', import.meta.url));

function runMain(env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: ROOT,
    env: { ...process.env, HOST: '127.0.0.1', OTEL_SDK_DISABLED: 'true', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  return new Promise((resolve) =>
    child.on('exit', (code) => {
      clearTimeout(killer);
      resolve({ code, stderr });
    }),
  );
}

test('an invalid variable stops the process with a line naming it', async () => {
  const { code, stderr } = await runMain({ PORT: 'six-thousand' });
  assert.equal(code, 1);
  assert.match(stderr, /^beacon: invalid configuration: PORT: /m);
  assert.doesNotMatch(stderr, /\n\s+at /, 'no stack trace');
});

test('a taken port stops the process with one clear line', async () => {
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  const port = (blocker.address() as { port: number }).port;
  try {
    const { code, stderr } = await runMain({ PORT: String(port) });
    assert.equal(code, 1);
    assert.match(stderr, new RegExp(`beacon: cannot listen on 127\\.0\\.0\\.1:${port} \\(HOST/PORT\\): EADDRINUSE`));
    assert.doesNotMatch(stderr, /\n\s+at /, 'no stack trace');
  } finally {
    blocker.close();
  }
});
