/**
 * beacon-monitor's entry: a snapshot at once and every --interval seconds, log lines as they come, a summary at the end
 * (after [seconds], on Ctrl-C, or on SIGTERM). Started by tools/bin/beacon-monitor.mjs.
 *
 * A snapshot is never started while the previous one is still waiting for an answer: that tick is skipped, said once and
 * counted. At the end, what is in flight (a snapshot, a log source's poll) gets until END_GRACE_MS past the end and is
 * then aborted, so an endpoint that accepts connections and never answers delays the exit by that much at most.
 */
import type { Scrape } from '../prometheus/exposition.js';
import { followFile, followLoki, followStream, type LogSource } from './log-sources.js';
import { HELP, parseMonitorOptions, UsageError, type MonitorOptions } from './options.js';
import { settlesBy } from './poller.js';
import { createRenderer } from './render.js';
import { buildSnapshot, probe, readMetrics } from './snapshot.js';
import { stackHealth } from './stack-health.js';
import { SummaryBuilder } from './summary.js';

/** How long past the end (time up, Ctrl-C, SIGTERM) what is still in flight may take before it is aborted. */
const END_GRACE_MS = 750;
/** Once aborted, how long the aborted snapshot may take to settle and be shown. */
const ABORT_SETTLE_MS = 100;

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
  const summary = new SummaryBuilder(o.metricsUrl);
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
  if (o.logFile === '-') sources.push(followStream(process.stdin, onLog, problem));
  else if (o.logFile !== undefined) sources.push(await followFile(o.logFile, onLog, problem));

  let prev: Scrape | undefined;
  /** Aborts the snapshot's requests still waiting at the end (each is also bounded by its own timeout). */
  const endOfRun = new AbortController();
  const metricsName = o.metricsUrl;
  const healthzName = `${o.httpUrl}/healthz`;
  const readyzName = `${o.httpUrl}/readyz`;
  const stackName = `docker (compose project ${o.composeProject ?? '-'})`;
  /** One snapshot: its requests run at once; `waiting` names the ones not answered yet. */
  const take = () => {
    const waiting = new Set<string>();
    const track = <T>(name: string, request: Promise<T>): Promise<T> => {
      waiting.add(name);
      return request.finally(() => waiting.delete(name));
    };
    const promise = (async () => {
      const [metrics, healthz, readyz, stack] = await Promise.all([
        track(metricsName, readMetrics(o.metricsUrl, 5000, endOfRun.signal)),
        track(healthzName, probe(healthzName, 3000, endOfRun.signal)),
        track(readyzName, probe(readyzName, 3000, endOfRun.signal)),
        o.composeProject === undefined ? undefined : track(stackName, stackHealth(o.composeProject, endOfRun.signal)),
      ]);
      // Said once as well as in every snapshot: a wrong --metrics is no node's state, and the table alone reads as an outage.
      if (metrics.error !== undefined && metrics.error.includes('is not a Beacon /metrics endpoint')) {
        problem(`${metrics.error}; is --metrics right? (Beacon's is http://HOST:9464/metrics)`);
      }
      const snapshot = buildSnapshot({ cur: metrics.scrape, prev, metricsError: metrics.error, healthz, readyz, stack });
      if (metrics.scrape !== undefined) {
        summary.scrape(metrics.scrape);
        prev = metrics.scrape;
      }
      summary.snapshot(snapshot);
      render.snapshot(snapshot);
    })();
    return { promise, waiting };
  };
  let current: ReturnType<typeof take> | undefined;
  const tick = () => {
    if (current !== undefined) {
      const waitingFor = current.waiting.size > 0 ? [...current.waiting] : ['its rendering'];
      summary.skippedSnapshot(waitingFor);
      problem(`snapshot skipped: the previous one is still waiting for ${waitingFor.join(', ')}`);
      return;
    }
    const t = take();
    current = t;
    void t.promise.finally(() => {
      if (current === t) current = undefined;
    });
  };

  // A snapshot now and every interval after; the end (time up or a signal) takes the last one.
  const started = Date.now();
  const endAt = o.seconds > 0 ? started + o.seconds * 1000 : Number.POSITIVE_INFINITY;
  const intervalMs = o.intervalSeconds * 1000;
  let ticks = 0;
  let tickTimer: NodeJS.Timeout | undefined;
  const scheduleTick = () => {
    ticks++;
    const at = started + ticks * intervalMs;
    if (at >= endAt) return;
    tickTimer = setTimeout(() => {
      tick();
      scheduleTick();
    }, Math.max(0, at - Date.now()));
  };
  let endTimer: NodeJS.Timeout | undefined;
  let onSignal: () => void = () => {};
  const why = await new Promise<'time' | 'signal'>((resolve) => {
    onSignal = () => resolve('signal');
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    if (Number.isFinite(endAt)) endTimer = setTimeout(() => resolve('time'), endAt - Date.now());
    tick();
    scheduleTick();
  });
  clearTimeout(tickTimer);
  clearTimeout(endTimer);

  // The end: the last snapshot (at the end itself, so its rates cover the tail of the run) unless one is still in flight,
  // the log sources' last polls; whatever has not answered by the deadline is aborted and named in the summary.
  const deadline = Date.now() + END_GRACE_MS;
  if (why === 'time' && current === undefined) tick();
  const unansweredAtEnd: string[] = [];
  const finishSnapshot = async () => {
    const t = current;
    if (t === undefined || (await settlesBy(t.promise, deadline))) return;
    unansweredAtEnd.push(...t.waiting);
    endOfRun.abort();
    // Aborted requests settle at once: the snapshot is shown with what did answer.
    await settlesBy(t.promise, Date.now() + ABORT_SETTLE_MS);
  };
  await Promise.all([finishSnapshot(), ...sources.map((s) => s.stop(deadline))]);
  const logSources = sources.map((s) => s.status());
  for (const st of logSources) if (st.unansweredAtEnd) unansweredAtEnd.push(st.source);
  render.summary(summary.build({ logSources, unansweredAtEnd }));
  process.removeListener('SIGINT', onSignal);
  process.removeListener('SIGTERM', onSignal);
  return 0;
}

process.exitCode = await main();
// stdin, when followed, would keep the process alive.
process.stdin.unref?.();
