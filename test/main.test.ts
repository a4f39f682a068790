/**
 * The entry point refuses bad start-up conditions with one clear line and exit code 1, never a stack trace — the metrics
 * settings the OpenTelemetry bootstrap reads (otel/options.ts, otel/register.ts) as much as src/config.ts's.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { spawnBeacon } from './helpers/beacon-process.js';
import { until } from './helpers/wait.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));

/** Runs the entry point, with the OpenTelemetry bootstrap first (`bootstrap`) as `npm start` runs it. */
function runMain(env: Record<string, string>, { bootstrap = false } = {}): Promise<{ code: number | null; stderr: string }> {
  const imports = bootstrap ? ['--import', 'tsx', '--import', './otel/register.ts'] : ['--import', 'tsx'];
  const child = spawn(process.execPath, [...imports, 'src/main.ts'], {
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

test('one start names every invalid variable, the bootstrap\'s and the app\'s alike', async () => {
  // Before: the bootstrap refused METRICS_PORT alone, so a fixed METRICS_PORT only then revealed the bad PORT.
  const { code, stderr } = await runMain({ PORT: 'six-thousand', METRICS_PORT: 'abc' }, { bootstrap: true });
  assert.equal(code, 1);
  assert.match(stderr, /^beacon: invalid configuration: METRICS_PORT: not a port from 1 to 65535: "abc"; PORT: not a number$/m);
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

test("an invalid METRICS_PORT or METRICS_HOST stops the process with a line naming it, before any other work", async () => {
  // A warning and port 9464 (METRICS_PORT), or no /metrics at all (METRICS_HOST), before: a node its scrape could not find.
  for (const [env, variable] of [
    [{ METRICS_PORT: 'abc' }, 'METRICS_PORT'],
    [{ METRICS_PORT: '0' }, 'METRICS_PORT'],
    [{ METRICS_HOST: '999.1.1.1', OTEL_SDK_DISABLED: 'false', PORT: '0' }, 'METRICS_HOST'],
  ] as const) {
    const { code, stderr } = await runMain(env, { bootstrap: true });
    assert.equal(code, 1, JSON.stringify(env));
    assert.match(stderr, new RegExp(`^beacon: invalid configuration: ${variable}: `, 'm'), stderr);
    assert.doesNotMatch(stderr, /\n\s+at /, 'no stack trace');
  }
});

test('a metrics port that cannot be bound stops the process with one clear line, as a taken PORT does', async () => {
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  const port = (blocker.address() as { port: number }).port;
  try {
    const env = { OTEL_SDK_DISABLED: 'false', PORT: '0', METRICS_HOST: '127.0.0.1', METRICS_PORT: String(port) };
    const { code, stderr } = await runMain(env, { bootstrap: true });
    assert.equal(code, 1, stderr);
    assert.match(stderr, new RegExp(`beacon: cannot listen on 127\\.0\\.0\\.1:${port} \\(METRICS_HOST/METRICS_PORT\\): EADDRINUSE`));
    assert.doesNotMatch(stderr, /\n\s+at /, 'no stack trace');
  } finally {
    blocker.close();
  }
});

test('a setting that works against clients is said once at start-up, after server_started, as config_warning', async () => {
  const beacon = await spawnBeacon({ FRAME_RATE_LIMIT_PER_SECOND: '50', OTEL_SDK_DISABLED: 'true' });
  try {
    const events = () => beacon.logs.map((l) => JSON.parse(l) as { event?: string; level?: string; variables?: string[] });
    const warnings = () => events().filter((l) => l.event === 'config_warning');
    await until(() => warnings().length === 2, 'the two config_warning lines');
    const lines = events();
    // The default app's public secret (APP_SECRET unset here), then the frame budget.
    assert.deepEqual(
      warnings().map((w) => [w.level, w.variables]),
      [
        ['warn', ['APP_SECRET']],
        ['warn', ['MAX_SUBSCRIPTIONS_PER_CONNECTION', 'FRAME_RATE_LIMIT_PER_SECOND']],
      ],
    );
    const first = lines.findIndex((l) => l.event === 'config_warning');
    assert.ok(lines.findIndex((l) => l.event === 'server_started') < first);
  } finally {
    await beacon.stop();
  }
});
