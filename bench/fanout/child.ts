/** The protocol between the bench runners and their load processes: options as argv JSON in, one `RESULT {json}` line out. */
import { spawn } from 'node:child_process';
import { ROOT } from './targets.js';

/** A load process that has not finished in this long is killed (and its phase recorded as failed). */
const LOAD_TIMEOUT_MS = 180_000;

/** Why a load process failed, from the end of its stderr: its last three lines. */
export function lastLines(stderr: string): string {
  return stderr.trim().split('\n').slice(-3).join(' | ');
}

/** Why a load process failed: the `load: ` line `runLoadProcess` printed (the error, without its stack), else its last lines. */
export function loadErrorLine(stderr: string): string {
  return stderr.trim().split('\n').find((l) => l.startsWith('load: ')) ?? lastLines(stderr);
}

/**
 * Runs one load process (`script`, relative to the repository root) with `options`; resolves with its RESULT line, rejects
 * with `why(stderr)` when it fails or is killed after LOAD_TIMEOUT_MS.
 */
export function runChild<R>(script: string, options: object, why: (stderr: string) => string = lastLines): Promise<R> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, JSON.stringify(options)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-8192)));
    const timer = setTimeout(() => child.kill('SIGKILL'), LOAD_TIMEOUT_MS);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      const line = stdout.split('\n').find((l) => l.startsWith('RESULT '));
      if (code === 0 && line !== undefined) resolve(JSON.parse(line.slice('RESULT '.length)) as R);
      else reject(new Error(`${script} exited ${signal ?? code}: ${why(stderr)}`));
    });
  });
}

/** Parses the options of a load process (argv[2]), runs `main`, prints `RESULT <json>` and exits 0 (1 with the error). */
export function runLoadProcess<O, R>(main: (options: O) => Promise<R>): void {
  const options = JSON.parse(process.argv[2] ?? '{}') as O;
  main(options).then(
    (result) => {
      process.stdout.write(`RESULT ${JSON.stringify(result)}\n`, () => process.exit(0));
    },
    (err: unknown) => {
      process.stderr.write(`load: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`, () => process.exit(1));
    },
  );
}

/** Opens `count` connections with `open(i)`, at most `concurrency` handshakes in flight. */
export async function openAll<T>(count: number, concurrency: number, open: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array<T>(count);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      out[i] = await open(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return out;
}
