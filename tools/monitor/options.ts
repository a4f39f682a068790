/** beacon-monitor's command line (util.parseArgs), its help text, and validation into `MonitorOptions`. */
import { parseArgs } from 'node:util';

/** tty (columns, colour), plain (key=value lines) or json (one object per line). */
export type OutputMode = 'tty' | 'plain' | 'json';

/** Everything a monitoring session needs, validated. */
export interface MonitorOptions {
  /** How long to run; 0 until Ctrl-C. */
  seconds: number;
  intervalSeconds: number;
  metricsUrl: string;
  /** http://host:port of the server, for /healthz and /readyz. */
  httpUrl: string;
  loki: string | undefined;
  lokiQuery: string;
  /** A log file to follow, or '-' for stdin; undefined: none (unless --loki). */
  logFile: string | undefined;
  mode: OutputMode;
  /** docker compose project whose containers' health is shown; undefined: not checked. */
  composeProject: string | undefined;
}

/** A command-line mistake: printed with a pointer to --help, exit code 2. */
export class UsageError extends Error {}

/** Beacon's warn and worse lines, by the Loki labels docs/telemetry.md defines. */
export const DEFAULT_LOKI_QUERY = '{service_name="beacon", level=~"warn|error|fatal"}';

/** The --help text: every flag, its default and what it does. */
export const HELP = `beacon-monitor: a live view of one Beacon node for an operator: every --interval seconds a snapshot of /metrics
(connections, connect and disconnect rates, messages in and out per second, errors per second by reason, broadcast
p50/p99 from the histogram buckets, event-loop lag p99, RSS), /healthz and /readyz, and the health of the LGTM stack's
containers (docker compose) when it is up; warn and error log lines as they happen, from Loki or a log file / stdin.
It ends after [seconds] (or on Ctrl-C) with a summary: peaks, totals, the errors /metrics counted by reason, and the
distinct warn/error lines seen with their counts. A source still waiting for an answer is never asked again meanwhile
(that snapshot or poll is skipped and counted), and at the end what has not answered within 0.75 s is aborted and named.

Usage: beacon-monitor [seconds] [flags]        (npm run monitor -- 60 / npx beacon-monitor 60)

  seconds               how long to watch (default: until Ctrl-C)
  --interval S          seconds between snapshots (default 10)
  --metrics URL         the Prometheus endpoint (default http://127.0.0.1:9464/metrics)
  --host URL            the server's HTTP port, for /healthz and /readyz (default http://127.0.0.1:6001; ws:// works too)
  --loki URL            follow log lines in Loki (e.g. http://127.0.0.1:3100): LogQL query_range polled every 2 s,
                        one poll at a time, each given 5 s
  --loki-query Q        the LogQL stream selector (default ${DEFAULT_LOKI_QUERY})
  --log-file PATH       follow a file of Beacon's JSON log lines (new lines only); "-" reads them from stdin
                        (e.g. npm start | npx beacon-monitor --log-file -)
  --mode M              tty (aligned columns, colour), plain (one key=value line per snapshot) or json (one JSON object
                        per line); default: tty on a terminal, plain otherwise
  --json                same as --mode json
  --compose-project P   docker compose project whose containers are checked (default beacon)
  --no-stack            do not look for docker compose containers
  -h, --help            this text

Exit codes: 0 done (after [seconds], Ctrl-C or SIGTERM); 2 a usage error. Through npx or npm run, a Ctrl-C makes npm
exit 130 whatever the monitor returns (the summary is still printed); node tools/bin/beacon-monitor.mjs exits 0.`;

function toHttp(url: string): string {
  return url.replace(/^ws(s?):/, 'http$1:').replace(/\/+$/, '');
}

/** Parses argv (without node and the script); returns null when --help was asked. */
/** The longest time a Node timer holds (2^31 - 1 ms), in seconds. */
const MAX_SECONDS = 2_147_483;

export function parseMonitorOptions(argv: string[], stdoutIsTty: boolean): MonitorOptions | null {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: true,
      options: {
        interval: { type: 'string' },
        metrics: { type: 'string' },
        host: { type: 'string' },
        loki: { type: 'string' },
        'loki-query': { type: 'string' },
        'log-file': { type: 'string' },
        mode: { type: 'string' },
        json: { type: 'boolean' },
        'compose-project': { type: 'string' },
        'no-stack': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help === true) return null;
  if (positionals.length > 1) throw new UsageError(`one [seconds] argument at most, got ${positionals.join(' ')}`);
  // Blank is no number (`Number('')` is 0); past MAX_SECONDS a Node timer fires at once (one snapshot after another).
  const seconds = positionals[0] === undefined ? 0 : positionals[0].trim() === '' ? Number.NaN : Number(positionals[0]);
  if (!Number.isFinite(seconds) || seconds < 0 || seconds > MAX_SECONDS) {
    throw new UsageError(`[seconds] must be a number from 0 to ${MAX_SECONDS}, got "${positionals[0]}"`);
  }
  const intervalSeconds = values.interval === undefined ? 10 : values.interval.trim() === '' ? Number.NaN : Number(values.interval);
  if (!Number.isFinite(intervalSeconds) || intervalSeconds < 0.1 || intervalSeconds > MAX_SECONDS) {
    throw new UsageError(`--interval must be a number of seconds from 0.1 to ${MAX_SECONDS}, got "${values.interval}"`);
  }
  const mode = values.json === true ? 'json' : (values.mode ?? (stdoutIsTty ? 'tty' : 'plain'));
  if (mode !== 'tty' && mode !== 'plain' && mode !== 'json') throw new UsageError(`--mode must be tty, plain or json, got "${mode}"`);
  // Any scheme parses as a URL (`foo:bar`, `ftp://…`); fetch then failed every request, each snapshot a bare TypeError.
  const urlFlags = [
    ['--metrics', values.metrics, ['http:', 'https:'], 'http://127.0.0.1:9464/metrics'],
    ['--host', values.host, ['http:', 'https:', 'ws:', 'wss:'], 'http://127.0.0.1:6001'],
    ['--loki', values.loki, ['http:', 'https:'], 'http://127.0.0.1:3100'],
  ] as const;
  for (const [flag, url, schemes, example] of urlFlags) {
    if (url === undefined) continue;
    let parsed: URL | undefined;
    try {
      parsed = new URL(url);
    } catch {
      // answered below
    }
    if (parsed === undefined || !(schemes as readonly string[]).includes(parsed.protocol)) {
      const names = schemes.map((scheme) => `${scheme}//`);
      throw new UsageError(`${flag} must be an ${names.slice(0, -1).join(', ')} or ${names.at(-1)} URL such as ${example}, got "${url}"`);
    }
  }
  return {
    seconds,
    intervalSeconds,
    metricsUrl: values.metrics ?? 'http://127.0.0.1:9464/metrics',
    httpUrl: toHttp(values.host ?? 'http://127.0.0.1:6001'),
    loki: values.loki === undefined ? undefined : values.loki.replace(/\/+$/, ''),
    lokiQuery: values['loki-query'] ?? DEFAULT_LOKI_QUERY,
    logFile: values['log-file'],
    mode,
    composeProject: values['no-stack'] === true ? undefined : (values['compose-project'] ?? 'beacon'),
  };
}
