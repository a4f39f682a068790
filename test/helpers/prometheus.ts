/**
 * A real Prometheus for tests: the `prometheus` binary (Debian package, see scripts/system-packages.txt) started on a free
 * 127.0.0.1 port with a generated config, its data in a temporary directory, and a small typed client for the HTTP API.
 *
 *   const prom = await startPrometheus({ scrape: [{ job: 'beacon', targets: [`127.0.0.1:${metricsPort}`] }] });
 *   await prom.waitFor('up{job="beacon"} == 1');        // polls until the query returns a sample, bounded
 *   const result = await prom.query('sum(websocket_connections)');
 *   await prom.stop();
 *
 * Everything is bounded: startup, each query and each wait have a timeout, and `stop` kills the process if SIGTERM is not
 * enough. Nothing listens beyond loopback.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';

/** One scrape job of the generated config. */
export interface ScrapeJob {
  job: string;
  /** host:port pairs, e.g. `127.0.0.1:9464`. */
  targets: string[];
  metricsPath?: string;
}

export interface PrometheusOptions {
  scrape: ScrapeJob[];
  /** Scrape (and rule evaluation) interval; short so tests see data quickly. Default `1s`. */
  scrapeInterval?: string;
  /** Rule files to load (absolute paths); their alerts are evaluated, which also proves they load. */
  ruleFiles?: string[];
  /** How long to wait for /-/ready. Default 15 s. */
  startTimeoutMs?: number;
}

/** One series of an instant query result (vector), or the single value of a scalar result. */
export interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

/** The data of a successful /api/v1/query answer. */
export interface QueryData {
  resultType: 'vector' | 'matrix' | 'scalar' | 'string';
  result: Sample[] | [number, string];
}

export interface RunningPrometheus {
  /** Base URL, e.g. http://127.0.0.1:41234. */
  url: string;
  /** Instant query at now; rejects with Prometheus' own error text when the expression does not parse or execute. */
  query(expr: string): Promise<QueryData>;
  /** Polls `expr` until it returns at least one series (or a scalar), every `intervalMs`; rejects after `timeoutMs`. */
  waitFor(expr: string, options?: { timeoutMs?: number; intervalMs?: number }): Promise<Sample[]>;
  /** Everything the process printed (it logs to stderr), for failure messages. */
  output(): string;
  stop(): Promise<void>;
}

/** A TCP port that was free on 127.0.0.1 a moment ago (the usual race is acceptable in tests). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** The number of series (or 1 for a scalar) in a query result. */
export function resultSize(data: QueryData): number {
  if (data.resultType === 'scalar' || data.resultType === 'string') return 1;
  return (data.result as Sample[]).length;
}

/** Starts Prometheus and resolves once it reports ready. */
export async function startPrometheus(options: PrometheusOptions): Promise<RunningPrometheus> {
  const interval = options.scrapeInterval ?? '1s';
  const dir = await mkdtemp(join(tmpdir(), 'beacon-prometheus-'));
  const config = {
    global: { scrape_interval: interval, scrape_timeout: interval, evaluation_interval: interval },
    rule_files: options.ruleFiles ?? [],
    scrape_configs: options.scrape.map((s) => ({
      job_name: s.job,
      metrics_path: s.metricsPath ?? '/metrics',
      static_configs: [{ targets: s.targets }],
    })),
  };
  const configPath = join(dir, 'prometheus.yml');
  await writeFile(configPath, stringify(config));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(
    'prometheus',
    [
      `--config.file=${configPath}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout?.on('data', (b: Buffer) => (output += b.toString()));
  child.stderr?.on('data', (b: Buffer) => (output += b.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  const stop = async (): Promise<void> => {
    await terminate(child, exited);
    await rm(dir, { recursive: true, force: true });
  };

  try {
    await pollUntil(
      async () => {
        if (child.exitCode !== null) throw new Error(`prometheus exited with ${child.exitCode}:\n${output}`);
        const res = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(1000) }).catch(() => undefined);
        return res?.ok === true;
      },
      options.startTimeoutMs ?? 15_000,
      100,
      () => `prometheus not ready at ${url}:\n${output}`,
    );
  } catch (err) {
    await stop();
    throw err;
  }

  const query = async (expr: string): Promise<QueryData> => {
    const res = await fetch(`${url}/api/v1/query`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ query: expr }),
      signal: AbortSignal.timeout(10_000),
    });
    const body = (await res.json()) as { status: string; data?: QueryData; error?: string; errorType?: string };
    if (body.status !== 'success' || body.data === undefined) {
      throw new Error(`query failed (${body.errorType ?? res.status}): ${body.error ?? 'no data'}\n  ${expr}`);
    }
    return body.data;
  };

  const waitFor: RunningPrometheus['waitFor'] = async (expr, opts = {}) => {
    let last: QueryData | undefined;
    await pollUntil(
      async () => {
        last = await query(expr);
        return resultSize(last) > 0;
      },
      opts.timeoutMs ?? 20_000,
      opts.intervalMs ?? 250,
      () => `no data for ${expr} (last answer: ${JSON.stringify(last)})`,
    );
    return (last?.result ?? []) as Sample[];
  };

  return { url, query, waitFor, output: () => output, stop };
}

/** Calls `check` every `intervalMs` until it returns true; rejects with `describe()` once `timeoutMs` has passed. */
export async function pollUntil(
  check: () => Promise<boolean>,
  timeoutMs: number,
  intervalMs: number,
  describe: () => string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms: ${describe()}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

async function terminate(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}
