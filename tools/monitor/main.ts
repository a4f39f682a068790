/**
 * beacon-monitor's entry: a snapshot at once and every --interval seconds, log lines as they come, a summary at the end
 * (after [seconds], on Ctrl-C, or on SIGTERM). Started by tools/bin/beacon-monitor.mjs.
 */
import { scrape, type Scrape } from '../prometheus/exposition.js';
import { followFile, followLoki, followStream, type LogSource } from './log-sources.js';
import { HELP, parseMonitorOptions, UsageError, type MonitorOptions } from './options.js';
import { createRenderer } from './render.js';
import { buildSnapshot, probe } from './snapshot.js';
import { stackHealth } from './stack-health.js';
import { SummaryBuilder } from './summary.js';

// A reader that goes away (`| head`) ends the tool quietly instead of with an EPIPE stack trace.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

async function main(): Promise<number> {
  let options: MonitorOptions | null;
  try {
    options = parseMonitorOptions(process.argv.slice(2), process.stdout.isTTY === true);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`beacon-monitor: ${err.message}\n(beacon-monitor --help lists the flags)\n`);
    return 2;
  }
  if (options === null) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  const o = options;
  const render = createRenderer(o.mode, process.stdout, process.env);
  const summary = new SummaryBuilder();
  let lastProblem = '';
  const problem = (message: string) => {
    if (message === lastProblem) return;
    lastProblem = message;
    render.problem(message);
  };
  const onLog = (e: Parameters<typeof render.log>[0]) => {
    summary.log(e);
    render.log(e);
  };

  const sources: LogSource[] = [];
  if (o.loki !== undefined) sources.push(followLoki(o.loki, o.lokiQuery, onLog, problem));
  if (o.logFile === '-') sources.push(followStream(process.stdin, onLog));
  else if (o.logFile !== undefined) sources.push(await followFile(o.logFile, onLog, problem));

  let prev: Scrape | undefined;
  const take = async () => {
    const [metrics, healthz, readyz, stack] = await Promise.all([
      scrape(o.metricsUrl).then(
        (s) => ({ scrape: s, error: undefined }),
        (err: Error & { cause?: Error & { cause?: { code?: string } } }) => ({
          scrape: undefined,
          error: err.cause?.cause?.code ?? err.cause?.name ?? err.message,
        }),
      ),
      probe(`${o.httpUrl}/healthz`),
      probe(`${o.httpUrl}/readyz`),
      o.composeProject === undefined ? Promise.resolve(undefined) : stackHealth(o.composeProject),
    ]);
    const snapshot = buildSnapshot({ cur: metrics.scrape, prev, metricsError: metrics.error, healthz, readyz, stack });
    if (metrics.scrape !== undefined) {
      summary.scrape(metrics.scrape);
      prev = metrics.scrape;
    }
    summary.snapshot(snapshot);
    render.snapshot(snapshot);
  };

  // One loop, woken by the interval timer, the end of [seconds], or a signal.
  let stop = false;
  let wake: () => void = () => {};
  const onSignal = () => {
    stop = true;
    wake();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const started = Date.now();
  const endAt = o.seconds > 0 ? started + o.seconds * 1000 : Number.POSITIVE_INFINITY;
  let next = started;
  while (!stop) {
    await take();
    next += o.intervalSeconds * 1000;
    const until = Math.min(next, endAt);
    if (Date.now() >= endAt) break;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, Math.max(0, until - Date.now()));
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    // The last snapshot is taken at the end itself, so its rates cover the tail of the run.
    if (!stop && Date.now() >= endAt) {
      await take();
      break;
    }
  }
  for (const s of sources) await s.stop();
  render.summary(summary.build());
  process.removeListener('SIGINT', onSignal);
  process.removeListener('SIGTERM', onSignal);
  return 0;
}

process.exitCode = await main();
// stdin, when followed, would keep the process alive.
process.stdin.unref?.();
