/**
 * beacon-load's entry: flags → safety check → run → report (table or --json) → exit code.
 * Started by tools/bin/beacon-load.mjs (`npx beacon-load`, `npm run load --`).
 */
import { buildAudit } from './audit.js';
import { resolvesToLoopback } from './loopback.js';
import { HELP, parseLoadOptions, UsageError, type LoadOptions } from './options.js';
import { createProgress } from './progress.js';
import { buildReport, renderReport } from './report.js';
import { runLoad } from './run.js';

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
    process.stderr.write(`beacon-load: ${err.message}\n(beacon-load --help lists the flags)\n`);
    return 2;
  }
  if (options === null) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  const hostname = new URL(options.host).hostname;
  if (!options.allowRemote && !(await resolvesToLoopback(hostname))) {
    process.stderr.write(
      `beacon-load: ${hostname} is not a loopback address; a load test leaves this machine only with --allow-remote\n`,
    );
    return 2;
  }
  const progress = createProgress(process.stderr, process.stderr.isTTY === true);
  // First Ctrl-C: end the ramp or steady state now, then drain, close every socket and report as usual. Second: exit.
  const stop = new AbortController();
  const onSigint = () => {
    if (stop.signal.aborted) process.exit(130);
    stop.abort();
    process.stderr.write('\nbeacon-load: stopping early (Ctrl-C again to exit at once)\n');
  };
  process.on('SIGINT', onSigint);
  let result;
  try {
    result = await runLoad(options, (s) => progress.update(s), stop.signal);
  } catch (err) {
    progress.stop();
    process.stderr.write(`beacon-load: ${(err as Error).message}\n`);
    return 2;
  } finally {
    process.removeListener('SIGINT', onSigint);
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
  return report.verdict.ok ? 0 : 1;
}

process.exitCode = await main();
