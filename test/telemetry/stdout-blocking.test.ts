/**
 * Beacon leaves its stdout descriptor as it was handed over: a blocking pipe stays blocking. Made non-blocking (creating
 * `process.stdout` on a pipe does that), a full pipe fails the log write with EAGAIN and SonicBoom sleeps 100 ms with the
 * event loop held, however soon the reader drains it; blocking, the write waits in the kernel only until there is room.
 * The flag is read from /proc/<pid>/fdinfo/1 of the running process (Linux). The server runs compiled, as `npm start` runs it:
 * under tsx the loader itself creates `process.stdout`.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import WebSocket from 'ws';
import { spawnBeacon } from '../helpers/beacon-process.js';
import { pollUntil } from '../helpers/prometheus.js';

const O_NONBLOCK = 0o4000;

function stdoutNonBlocking(pid: number): boolean {
  const flags = /^flags:\s+([0-7]+)$/m.exec(readFileSync(`/proc/${pid}/fdinfo/1`, 'utf8'));
  assert.ok(flags !== null, 'no flags in fdinfo');
  return (parseInt(flags[1]!, 8) & O_NONBLOCK) !== 0;
}

/** A child whose stdout is a pipe, resolved once its first stdout bytes arrive (it has written through its logger). */
async function firstOutput(args: string[]): Promise<ChildProcessWithoutNullStreams> {
  const child = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no stdout within 10 s')), 10_000);
    child.stdout.once('data', () => {
      clearTimeout(timer);
      resolve();
    });
  });
  return child;
}

async function end(child: ChildProcessWithoutNullStreams): Promise<void> {
  child.stdin.end();
  child.stdout.resume();
  if (child.exitCode === null) await new Promise((r) => child.once('close', r));
}

describe('stdout stays blocking', () => {
  it('the check sees a descriptor made non-blocking: a process that creates process.stdout on its pipe', async () => {
    const child = await firstOutput(['-e', "process.stdout.write('x\\n'); process.stdin.resume(); process.stdin.on('end', () => process.exit(0));"]);
    try {
      assert.equal(stdoutNonBlocking(child.pid!), true);
    } finally {
      await end(child);
    }
  });

  it('a whole server, telemetry on, leaves its stdout pipe blocking after logging a connection', async () => {
    const beacon = await spawnBeacon({}, { compiled: true });
    try {
      const ws = new WebSocket(`ws://127.0.0.1:${beacon.port}/app/app-key?protocol=7`);
      await new Promise<void>((resolve, reject) => {
        ws.once('message', () => resolve());
        ws.once('error', reject);
      });
      ws.close();
      const closed = (): boolean => beacon.logs.some((l) => l.includes('"connection_closed"'));
      await pollUntil(async () => closed(), 10_000, 20, () => 'no connection_closed line on stdout');
      assert.equal(stdoutNonBlocking(beacon.pid), false);
    } finally {
      await beacon.stop();
    }
  });
});
