/**
 * A throwaway redis-server on a free loopback port (no persistence unless asked), for the cluster-engine tests. `stop()` and
 * `start()` again on the same port simulate an outage; every wait is bounded.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createConnection } from 'node:net';
import { freePort } from './free-port.js';
import type { TlsFiles } from './tls-certs.js';

export interface RedisServer {
  port: number;
  /** redis://127.0.0.1:PORT */
  url: string;
  /** Starts (again) on the same port; resolves once it accepts connections. */
  start(): Promise<void>;
  /** Stops it (SIGTERM, SIGKILL after 5 s); resolves once it exited. */
  stop(): Promise<void>;
  /** Freezes the process (SIGSTOP) or lets it go on (SIGCONT): a Redis that is connected but reads nothing. */
  freeze(frozen: boolean): void;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.end('PING\r\n');
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * `args`: more `redis-server` arguments (`--requirepass`, `--user`). `tls`: TLS only, on the same port, with that
 * certificate (clients are not asked for one). `dir`: the server's working directory, where a `SAVE` writes its snapshot
 * and a start loads it from (a Redis restarted from an older state). Without it nothing is ever loaded: the server saves
 * nothing on its own.
 */
export async function startRedis(options: { dir?: string; args?: readonly string[]; tls?: TlsFiles } = {}): Promise<RedisServer> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  let output = '';

  const start = async (): Promise<void> => {
    output = '';
    const { tls } = options;
    const listen =
      tls === undefined
        ? ['--port', String(port)]
        : ['--port', '0', '--tls-port', String(port), '--tls-cert-file', tls.cert, '--tls-key-file', tls.key, '--tls-ca-cert-file', tls.ca,
            '--tls-auth-clients', 'no'];
    const args = [...listen, '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];
    if (options.dir !== undefined) args.push('--dir', options.dir);
    if (options.args !== undefined) args.push(...options.args);
    const proc = spawn('redis-server', args, {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = proc;
    proc.stdout?.on('data', (b: Buffer) => (output += b.toString()));
    proc.stderr?.on('data', (b: Buffer) => (output += b.toString()));
    const deadline = Date.now() + 5000;
    while (!(await accepts(port))) {
      if (proc.exitCode !== null) throw new Error(`redis-server exited with ${proc.exitCode}:\n${output}`);
      if (Date.now() > deadline) throw new Error(`redis-server not accepting on ${port} after 5000 ms:\n${output}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };

  const stop = async (): Promise<void> => {
    const proc = child;
    child = undefined;
    if (proc === undefined || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };

  const freeze = (frozen: boolean): void => {
    child?.kill(frozen ? 'SIGSTOP' : 'SIGCONT');
  };

  await start();
  return { port, url: `redis://127.0.0.1:${port}`, start, stop, freeze };
}
