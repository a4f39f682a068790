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

/** How much of a server's output is kept, for the errors that quote it. */
const OUTPUT_KEPT_BYTES = 65_536;

/**
 * The last `max` bytes of a stream, kept as the chunks read (the oldest dropped once the rest hold `max`), decoded only
 * when asked. A Beacon at info writes ~1 KB per connect, 4 KiB per read: appending each read to the kept string and
 * slicing it copied the whole 64 KiB every time, and the runner shares the two cores with the server and the load.
 */
function lastBytes(max: number): { add(chunk: Buffer): void; text(): string } {
  const chunks: Buffer[] = [];
  let bytes = 0;
  return {
    add(chunk) {
      chunks.push(chunk);
      bytes += chunk.length;
      while (chunks.length > 1 && bytes - chunks[0]!.length >= max) bytes -= chunks.shift()!.length;
    },
    text: () => {
      const all = Buffer.concat(chunks);
      return all.subarray(Math.max(0, all.length - max)).toString();
    },
  };
}

/** Spawns the server and resolves once it is ready; on failure it is stopped (no grace) and the error carries its output. */
export async function spawnServer(options: ServerSpawn): Promise<ServerChild> {
  const { label, port } = options;
  const child: ChildProcess = spawn(process.execPath, options.args, { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe'] });
  const kept = lastBytes(OUTPUT_KEPT_BYTES);
  const output = (): string => kept.text();
  child.stdout?.on('data', kept.add);
  child.stderr?.on('data', kept.add);
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
      if (child.exitCode !== null) throw new Error(`${label} exited with ${child.exitCode}:\n${output()}`);
      const res = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(1000) }).catch(() => undefined);
      if (res?.status === 200) break;
      if (Date.now() > deadline) throw new Error(`${label} not ready on port ${port} after ${options.readyTimeoutMs} ms:\n${output()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch (err) {
    await stop(0);
    throw err;
  }
  if (child.pid === undefined) throw new Error(`${label}: no pid`);
  return { pid: child.pid, output, stop };
}
