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

/**
 * A load process driven step by step, for measurements in slices (bench/run.ts): it sets up (connects, warms up), says
 * `ready`, then runs each `step` the runner sends and answers when it is done; `finish` returns its result and it exits.
 * The runner lets every target's load process take one short step in turn, so a slow stretch of the shared machine
 * weighs on every target alike.
 */
export interface Stepped<S extends string, R> {
  /** Runs `count` units (publishes, batches) of `step`, measured; resolves once they are delivered. */
  step(step: S, count: number): Promise<void>;
  /** What the steps measured; the process closes its connections and exits after. */
  finish(): Promise<R>;
}

/** Runner → load process. */
type StepCommand<S extends string> = { kind: 'step'; step: S; count: number } | { kind: 'finish' };
/** Load process → runner. */
type StepReply<R> = { kind: 'ready' } | { kind: 'stepped' } | { kind: 'result'; result: R } | { kind: 'error'; message: string };

/** The load-process side: `setup(options)` (argv[2]) once, then the runner's commands over the IPC channel. */
export function serveSteps<O, S extends string, R>(setup: (options: O) => Promise<Stepped<S, R>>): void {
  const options = JSON.parse(process.argv[2] ?? '{}') as O;
  const send = (reply: StepReply<R>): Promise<void> => new Promise((resolve) => process.send!(reply, () => resolve()));
  const fail = (err: unknown): void => {
    const message = err instanceof Error ? (err.stack ?? err.message) : String(err);
    void send({ kind: 'error', message }).finally(() => process.exit(1));
  };
  // A runner that is gone (killed, crashed) leaves nobody to finish this process: it exits rather than hold its sockets.
  process.once('disconnect', () => process.exit(1));
  setup(options).then((load) => {
    process.on('message', (command: StepCommand<S>) => {
      if (command.kind === 'step') load.step(command.step, command.count).then(() => send({ kind: 'stepped' }), fail);
      else load.finish().then((result) => send({ kind: 'result', result }).then(() => process.exit(0)), fail);
    });
    return send({ kind: 'ready' });
  }, fail);
}

/** The runner's side of a stepped load process. */
export interface SteppedChild<S extends string, R> extends Stepped<S, R> {
  /** Kills the process if it is still running (after a failure). */
  kill(): void;
}

/**
 * Starts `script` (relative to the repository root) with `options` and resolves once it is set up. Every answer it owes
 * is bounded by LOAD_TIMEOUT_MS (then it is killed); a process that fails or exits rejects what is pending with its error.
 */
export function startStepped<S extends string, R>(script: string, options: object): Promise<SteppedChild<S, R>> {
  const child = spawn(process.execPath, ['--import', 'tsx', script, JSON.stringify(options)], {
    cwd: ROOT,
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-8192)));
  let pending: { resolve: (reply: StepReply<R>) => void; reject: (err: Error) => void; timer: NodeJS.Timeout } | undefined;
  let failure: Error | undefined;
  const settle = (outcome: StepReply<R> | Error): void => {
    const waiting = pending;
    pending = undefined;
    if (waiting === undefined) return;
    clearTimeout(waiting.timer);
    if (outcome instanceof Error) waiting.reject(outcome);
    else waiting.resolve(outcome);
  };
  child.on('message', (reply: StepReply<R>) => {
    if (reply.kind === 'error') {
      failure = new Error(`${script}: ${reply.message.split('\n')[0]}`);
      settle(failure);
    } else settle(reply);
  });
  child.once('exit', (code, signal) => {
    failure ??= new Error(`${script} exited ${signal ?? code}: ${lastLines(stderr)}`);
    settle(failure);
  });
  const next = (command?: StepCommand<S>): Promise<StepReply<R>> => {
    if (failure !== undefined) return Promise.reject(failure);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        settle(new Error(`${script}: no answer in ${LOAD_TIMEOUT_MS} ms`));
      }, LOAD_TIMEOUT_MS);
      pending = { resolve, reject, timer };
      if (command !== undefined) child.send(command);
    });
  };
  const stepped: SteppedChild<S, R> = {
    step: async (step, count) => {
      await next({ kind: 'step', step, count });
    },
    finish: async () => {
      const reply = await next({ kind: 'finish' });
      if (reply.kind !== 'result') throw new Error(`${script}: expected its result, got ${reply.kind}`);
      return reply.result;
    },
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
  return next().then(() => stepped);
}
