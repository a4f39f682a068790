/**
 * stdout lines are written in batches (telemetry/logger.ts): none may be lost when the process ends however it ends, and
 * a lone line must not wait for a batch to fill.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

const FIXTURE = fileURLToPath(new URL('./fixtures/log-then-exit.ts', import.meta.url));

interface Run {
  stdout: string;
  stderr: string;
  code: number | null;
}

function run(how: string, lines: number): Promise<Run> {
  const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, how, String(lines)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ stdout, stderr, code })));
}

/**
 * Runs the fixture in a full-pipe mode with a reader that holds off until the fixture's stderr says `signal` (its report)
 * or `full` (its first wait for the pipe: read from then on, or the fixture would wait for good), then reads everything.
 * `throughCat`: stdout through a real pipe (`| cat`), which takes a write in part at page boundaries, where the socket
 * pair Node gives a child's stdio takes a batch whole or not at all.
 */
function runHeldReader(how: string, lines: number, signal: string, throughCat = false): Promise<Run> {
  const child = throughCat
    ? spawn('sh', ['-c', `"${process.execPath}" --import tsx "${FIXTURE}" ${how} ${lines} | cat`], { stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(process.execPath, ['--import', 'tsx', FIXTURE, how, String(lines)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let stdout = '';
  child.stderr.on('data', (b: Buffer) => {
    stderr += b.toString();
    if ((stderr.includes('full\n') || stderr.includes(signal)) && child.stdout.listenerCount('data') === 0) {
      child.stdout.on('data', (out: Buffer) => (stdout += out.toString()));
    }
  });
  return new Promise((resolve) => child.on('close', (code) => resolve({ stdout, stderr, code })));
}

function logged(stdout: string): number[] {
  return stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => (JSON.parse(l) as { n: number }).n);
}

describe('stdout log batching', () => {
  it('writes out every buffered line when an uncaught exception ends the process', async () => {
    const r = await run('throw', 5);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /fixture crash/);
    assert.deepEqual(logged(r.stdout), [0, 1, 2, 3, 4]);
  });

  it('writes out every buffered line on process.exit, in order, across several batches', async () => {
    const r = await run('exit', 200);
    assert.equal(r.code, 3);
    assert.deepEqual(logged(r.stdout), Array.from({ length: 200 }, (_, i) => i));
  });

  it('writes out every line on process.exit while the thread pool is busy (no write waits in its queue)', async () => {
    const r = await run('exit-busy', 200);
    assert.equal(r.code, 3);
    assert.deepEqual(logged(r.stdout), Array.from({ length: 200 }, (_, i) => i));
  });

  it('writes out the batch on logger.flush(), before its callback', async () => {
    // The callback SIGKILLs the process: no exit hook and no periodic flush runs after it, so only flush() wrote the line.
    const r = await run('flush-kill', 3);
    assert.equal(r.code, null);
    assert.deepEqual(logged(r.stdout), [0, 1, 2]);
  });

  it('costs each line work in proportion to its own size, not to the batch it joins', async () => {
    // SonicBoom's string mode measured the whole batch string on every line (a copy of the batch per line: quadratic in
    // the batch). It now gets one string per batch, joined when the batch is written: each line is measured once.
    const r = await run('measure', 400);
    assert.equal(r.code, 0, r.stderr);
    const written = r.stdout.length;
    assert.equal(logged(r.stdout).length, 400);
    const { measured } = JSON.parse(r.stderr.trim().split('\n').pop() ?? '{}') as { measured: number };
    assert.ok(measured <= 2 * written, `${measured} bytes measured to log ${written} bytes`);
  });

  it('waits for a full non-blocking pipe a millisecond at a time, and loses nothing', async () => {
    // The reader holds off until the writer reports its first wait (the pipe is full), then reads everything. SonicBoom
    // slept 100 ms before each new try, the event loop held, however soon the reader had drained the pipe.
    // Read from the first wait on; or from the report, if the pipe never filled (the assertion below then fails).
    const lines = 4000;
    const { code, stdout, stderr } = await runHeldReader('full-pipe', lines, '"count"');
    assert.equal(code, 0, stderr);
    const waits = JSON.parse(stderr.trim().split('\n').pop() ?? '{}') as { count: number; longestMs: number };
    assert.ok(waits.count > 0, 'the pipe never filled: the test did not exercise a full pipe');
    assert.equal(waits.longestMs, 1);
    assert.deepEqual(logged(stdout), Array.from({ length: lines }, (_, i) => i));
  });

  it('holds a full pipe\'s batches in memory without holding the thread, up to the bound, and loses nothing', async () => {
    // ~850 KB logged 20 lines a turn while the reader holds off: past the pipe's capacity, under STDOUT_HELD_MAX_BYTES.
    // The reader reads from the writer's first wait (the thread held: what a full pipe did before) or from `logged`.
    const lines = 2000;
    const { code, stdout, stderr } = await runHeldReader('full-pipe-turns', lines, 'logged ');
    assert.equal(code, 0, stderr);
    const report = /logged (\{.*\})/.exec(stderr);
    assert.ok(report !== null, stderr);
    assert.equal((JSON.parse(report[1]!) as { count: number }).count, 0, 'the thread waited for the reader while lines were logged');
    const waits = JSON.parse(stderr.trim().split('\n').pop() ?? '{}') as { count: number };
    assert.ok(waits.count > 0, 'the pipe never filled: the test did not exercise a full pipe');
    assert.deepEqual(logged(stdout), Array.from({ length: lines }, (_, i) => i));
  });

  it('holds back whole lines only: another writer of the same pipe never lands inside a line', async () => {
    // The pipe takes part of a batch, usually ending inside a line; a line of another writer of descriptor 1 (stderr
    // sent to the same pipe, the SDK's console) written next must land between two of the logger's lines.
    // Through a real pipe (`| cat`), which cuts writes inside lines.
    const lines = 2000;
    const { code, stdout, stderr } = await runHeldReader('full-pipe-foreign', lines, 'logged ', true);
    assert.equal(code, 0, stderr);
    // Nor does it hold the thread to finish a line the pipe cut (every cut came as the pipe filled, as its reader lagged).
    const report = /logged (\{.*\})/.exec(stderr);
    assert.ok(report !== null, stderr);
    assert.equal((JSON.parse(report[1]!) as { count: number }).count, 0, 'the thread waited for the reader while lines were logged');
    const parsed = stdout
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => {
        try {
          return JSON.parse(l) as { n?: number; foreign?: boolean };
        } catch {
          assert.fail(`a line cut by another writer: ${l.slice(0, 120)}…`);
        }
      });
    assert.equal(parsed.filter((l) => l.foreign === true).length, 1);
    assert.deepEqual(
      parsed.filter((l) => l.foreign !== true).map((l) => l.n),
      Array.from({ length: lines }, (_, i) => i),
    );
  });

  it('does not stop the server when stdout\'s reader stops reading: past the bound lines are dropped and counted, and it exits', { timeout: 60_000 }, async () => {
    // A probe: stdout a FIFO nobody read froze a node — the thread in the kernel's write (a blocking descriptor), or
    // waiting a millisecond at a time for good (a non-blocking one) — signals and health checks with it, until the reader
    // died. Here stdout is the socket Node gives a child (blocking in the child) and nothing reads it until the child has
    // logged 3 MiB and exited.
    const lines = 3000;
    const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, 'stall', String(lines)], { stdio: ['ignore', 'pipe', 'pipe'] });
    // Listened to from the start (what Node reads ahead into the stream is kept: an unread child stdout is discarded at
    // its exit), paused until the child has exited.
    let stdout = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stdout.pause();
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    assert.equal(code, 0, stderr);
    child.stdout.resume();
    await new Promise((resolve) => child.on('close', resolve));
    const stalled = stderr.split('\n').filter((l) => l.includes('"stdout_failed"'));
    assert.equal(stalled.length, 1, stderr);
    assert.equal((JSON.parse(stalled[0]!) as { code: string }).code, 'STALLED');
    const logged = /logged (\{.*\})/.exec(stderr);
    const exited = /exited (\{.*\})/.exec(stderr);
    assert.ok(logged !== null && exited !== null, stderr);
    const before = JSON.parse(logged[1]!) as Record<string, number>;
    const after = JSON.parse(exited[1]!) as Record<string, number>;
    // Dropped while it ran (past the bound), and what was held back at the exit, which does not wait for it.
    assert.ok(before.stalled! > 0 && after.stalled! > before.stalled!, stderr);
    assert.deepEqual({ ...after, stalled: 0 }, { closed: 0, write_error: 0, stalled: 0 });
    // Every line is either written, whole and in order, or counted.
    const written = stdout.split('\n').filter((l) => l !== '').map((l) => (JSON.parse(l) as { n: number }).n);
    assert.deepEqual(written, [...written].sort((a, b) => a - b));
    assert.equal(written.length + after.stalled!, lines);
  });

  it('says once on stderr that stdout is gone (EPIPE), counts the lines it drops, and keeps running', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, 'epipe', '1'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no stdout within 10 s')), 10_000);
      child.stdout.once('data', () => resolve(clearTimeout(timer)));
    });
    child.stdout.destroy();
    child.stdin.write('go\n');
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    assert.equal(code, 0, stderr);
    const failed = stderr.split('\n').filter((l) => l.includes('"stdout_failed"'));
    assert.equal(failed.length, 1, stderr);
    assert.match(failed[0]!, /EPIPE/);
    // Every line logged after the reader left is counted (stdout_lines_dropped_total{reason="closed"}).
    const alive = /alive (.*)/.exec(stderr);
    assert.ok(alive !== null, stderr);
    assert.deepEqual(JSON.parse(alive[1]!), { closed: 2000, write_error: 0, stalled: 0 });
  });

  it('says once on stderr that stdout fails with another error (a full disk), counts every line, and goes on trying', async () => {
    // /dev/full fails every write with ENOSPC: each of the several batches is dropped, said once.
    const full = openSync('/dev/full', 'w');
    const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, 'exit-counted', '400'], { stdio: ['ignore', full, 'pipe'] });
    closeSync(full);
    let stderr = '';
    child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    assert.equal(code, 3, stderr);
    const failed = stderr.split('\n').filter((l) => l.includes('"stdout_failed"'));
    assert.equal(failed.length, 1, stderr);
    assert.equal((JSON.parse(failed[0]!) as { code: string }).code, 'ENOSPC');
    // Every line is counted (stdout_lines_dropped_total{reason="write_error"}): no batch got through.
    const counts = stderr.split('\n').find((l) => l.startsWith('{"closed"'));
    assert.deepEqual(JSON.parse(counts ?? '{}'), { closed: 0, write_error: 400, stalled: 0 });
  });

  it('writes a lone line while the process keeps running (no batch to fill)', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, 'idle', '1'], { stdio: ['pipe', 'pipe', 'inherit'] });
    try {
      const line = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('the line did not reach stdout within 10 s')), 10_000);
        child.stdout.once('data', (b: Buffer) => {
          clearTimeout(timer);
          resolve(b.toString());
        });
      });
      assert.equal((JSON.parse(line) as { msg: string }).msg, 'line 0');
      // Still running: the line was written by the periodic flush, not by an exit.
      assert.equal(child.exitCode, null);
    } finally {
      child.stdin.end();
      await new Promise((r) => child.once('close', r));
    }
  });
});
