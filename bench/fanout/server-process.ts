/**
 * A benchmark's server child process: spawned with its stdout and stderr drained (only the last 64 KiB kept, so info
 * logs never block it), ready once GET /readyz answers 200 (bounded), stopped with SIGTERM then SIGKILL after a grace.
 * Used by the fan-out targets (targets.ts) and the cluster topologies (../cluster/topology.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';

/** A running server process. */
export interface ServerChild {
  pid: number;
  /** What it wrote to stdout and stderr (the last 64 KiB). */
  output(): string;
  /** SIGTERM, then SIGKILL if it is still there after `graceMs`; resolves once it has exited. */
  stop(graceMs?: number): Promise<void>;
}

export interface ServerSpawn {
  /** Named in errors. */
  label: string;
  args: readonly string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** The port its /readyz answers on. */
  port: number;
  readyTimeoutMs: number;
  /** The default grace of `stop`. */
  graceMs: number;
}

/** Spawns the server and resolves once it is ready; on failure it is stopped (no grace) and the error carries its output. */
export async function spawnServer(options: ServerSpawn): Promise<ServerChild> {
  const { label, port } = options;
  const child: ChildProcess = spawn(process.execPath, options.args, { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (b: Buffer): void => {
    output = (output + b.toString()).slice(-65_536);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (graceMs = options.graceMs): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  };
  try {
    const deadline = Date.now() + options.readyTimeoutMs;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`${label} exited with ${child.exitCode}:\n${output}`);
      const res = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(1000) }).catch(() => undefined);
      if (res?.status === 200) break;
      if (Date.now() > deadline) throw new Error(`${label} not ready on port ${port} after ${options.readyTimeoutMs} ms:\n${output}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch (err) {
    await stop(0);
    throw err;
  }
  if (child.pid === undefined) throw new Error(`${label}: no pid`);
  return { pid: child.pid, output: () => output, stop };
}
