/**
 * beacon-load's entry: flags → safety check → run → report (table or --json) → exit code (0 ok, 1 failed, 2 usage error or
 * could not start, 130/143 interrupted by SIGINT/SIGTERM).
 * Started by tools/bin/beacon-load.mjs (`npx beacon-load`, `npm run load --`).
 */
import { buildAudit } from './audit.js';
import { notLoopback } from './loopback.js';
import { HELP, parseLoadOptions, UsageError, type LoadOptions } from './options.js';
import { createProgress } from './progress.js';
import { buildReport, renderReport } from './report.js';
import { runLoad, StartError } from './run.js';

/** The exit code of a run a signal interrupted: 128 + the signal's number, as a shell reports it. */
const SIGNAL_EXIT: Record<string, number> = { SIGINT: 130, SIGTERM: 143 };

// A reader that goes away (`| head`) ends the tool quietly instead of with an EPIPE stack trace.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

async function main(): Promise<number> {
  let options: LoadOptions | null;
  try {
    options = parseLoadOptions(process.argv.slice(2), process.env);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`beacon-load: ${err.message} (beacon-load --help lists the flags)\n`);
    return 2;
  }
  if (options === null) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  const hostname = new URL(options.host).hostname;
  const offLoopback = options.allowRemote ? undefined : await notLoopback(hostname);
  if (offLoopback !== undefined) {
    process.stderr.write(`beacon-load: ${offLoopback}\n`);
    return 2;
  }
  for (const w of options.warnings) process.stderr.write(`beacon-load: warning: ${w}\n`);
  const progress = createProgress(process.stderr, process.stderr.isTTY === true);
  // First SIGINT (Ctrl-C) or SIGTERM: end the ramp or steady state now, then drain, close every socket and report, with
  // the verdict "interrupted" and exit code 128 + the signal's number. A second signal: exit at once, without a report.
  const stop = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (stop.signal.aborted) process.exit(SIGNAL_EXIT[signal] ?? 130);
    stop.abort(signal);
    const again = signal === 'SIGINT' ? 'Ctrl-C' : `${signal}`;
    process.stderr.write(`\nbeacon-load: ${signal}: stopping early, then reporting (${again} again to exit at once)\n`);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let result;
  try {
    result = await runLoad(options, (s) => progress.update(s), stop.signal);
  } catch (err) {
    progress.stop();
    const message = (err as Error).message;
    process.stderr.write(err instanceof StartError ? `beacon-load: could not start: ${message}\n` : `beacon-load: ${message}\n`);
    return 2;
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
  progress.stop();
  const audit =
    options.metrics !== undefined && result.before !== undefined && result.drained !== undefined && result.after !== undefined
      ? buildAudit(result.tally, result.before, result.drained, result.after, {
          appId: options.appId,
          metricsUrl: options.metrics,
          settled: result.settled,
        })
      : null;
  const report = buildReport(options, result, audit);
  process.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : `${renderReport(report)}\n`);
  if (report.verdict.interrupted !== null) return SIGNAL_EXIT[report.verdict.interrupted.by] ?? 130;
  return report.verdict.ok ? 0 : 1;
}

process.exitCode = await main();
