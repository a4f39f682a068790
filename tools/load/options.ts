/**
 * beacon-load's command line: the flags (util.parseArgs), their help text, and their validation into `LoadOptions`.
 * Invalid input throws `UsageError`, which main.ts prints with a pointer to --help and exit code 2.
 */
import { parseArgs } from 'node:util';

/** The channel types a load test can use (encrypted and cache channels are left out). */
export type ChannelType = 'public' | 'private' | 'presence';
/** How load messages are sent: decided by a probe (auto), or forced. */
export type PublishVia = 'auto' | 'client' | 'http';

/** Everything a run needs, validated. */
export interface LoadOptions {
  sockets: number;
  /** New connections per second while ramping. */
  rate: number;
  /** Seconds of steady state after the ramp. */
  duration: number;
  /** ws://host:port of the server. */
  host: string;
  /** Messages per socket per second during the steady state (0: connections only). */
  sendRate: number;
  channels: number;
  channelType: ChannelType;
  payloadBytes: number;
  publishVia: PublishVia;
  /** Sockets that stop reading during the steady state (simulated stalled clients), resumed for the drain. */
  stall: number;
  appKey: string;
  appId: string;
  appSecret: string;
  metrics: string | undefined;
  maxErrorRate: number;
  allowRemote: boolean;
  json: boolean;
  /** What the flags asked that the run does otherwise (--channels above --sockets): said on stderr and in the report. */
  warnings: string[];
}

/** A command-line mistake: printed with a pointer to --help, exit code 2. */
export class UsageError extends Error {}

/** The --help text: every flag, its default and what it does. */
export const HELP = `beacon-load: opens many Pusher protocol 7 WebSocket connections to a server, subscribes them to channels, sends
messages at a fixed rate, measures what arrives, and (with --metrics) audits the server's own counters against what the
clients saw. It stops by itself (early, when every socket is gone) and closes every socket.

Usage: beacon-load [flags]        (npm run load -- [flags] / npx beacon-load [flags])

  --sockets N           total connections to open (default 100)
  --rate R              new connections per second while ramping up (default 50)
  --duration S          seconds of steady state after the ramp, while messages are sent (default 30)
  --host URL            the server, ws://host:port (default ws://127.0.0.1:6001); the HTTP API is the same host over http
  --send-rate X         messages per socket per second during the steady state (default 0.1; 0: connections only;
                        sockets × X at most 1000000).
                        Client events (client-load) on private/presence channels when the app allows them, otherwise
                        signed HTTP API publishes (POST /apps/{id}/events) at the same total rate (subscribed sockets × X
                        per second; a socket whose subscription failed sends nothing)
  --channels N          channels the sockets are spread over, round robin (default 10, or --sockets when fewer); each
                        message goes to one channel and is delivered to every socket on it (but the sender, for client
                        events)
  --channel-type T      public | private | presence (default public); private and presence subscriptions are signed here
                        with the app secret, as an auth endpoint would sign them (HMAC-SHA256)
  --payload-bytes B     size of each message's data string (default 100; at least 56: the header carrying the run id,
                        send time and sequence number)
  --publish-via V       auto | client | http (default auto: probe whether the app accepts client events)
  --stall N             N sockets stop reading during the steady state, like clients on a stalled network, and read
                        again for the drain: shows how the server treats slow consumers (default 0)
  --app-key K           app key (default $APP_KEY or app-key)
  --app-id ID           app id, for HTTP publishes (default $APP_ID or app-id)
  --app-secret S        app secret, for private/presence auth and HTTP publishes (default $APP_SECRET or app-secret)
  --metrics URL         the server's Prometheus endpoint (e.g. http://127.0.0.1:9464/metrics): scraped before and after,
                        its counters compared with what the clients saw (the audit). When a scrape after the run fails
                        (a server that died), the clients' report is still printed and the verdict fails: no audit
  --max-error-rate F    fraction tolerated (default 0: none) of each of: lost deliveries (of those expected), failed
                        connections (of those attempted), connections closed during the run by the server or lost (of
                        those subscribed), sends skipped (of those due), HTTP publishes refused or unanswered (of those
                        made), pusher:error answers (of the client events sent). Never tolerated: nothing delivered,
                        nothing measured (no delivery owed), every socket gone before the end, an audit difference or
                        an audit that could not be done
  --allow-remote        allow a --host outside the loopback range (refused otherwise: a load test is aimed on purpose)
  --json                write the report as one JSON document on stdout (progress stays on stderr)
  -h, --help            this text

Exit codes:
  0    verdict ok: every count above within --max-error-rate, deliveries made, the audit (if any) done and equal
  1    verdict FAILED: one line per reason under the verdict (and in --json's verdict.reasons)
  2    a usage error, or the run could not start (the first /metrics scrape failed or is not Beacon's, no socket could
       subscribe, the server counted none of the run's connections under --app-id): the reason on stderr, no report
  130  interrupted by SIGINT (Ctrl-C), 143 by SIGTERM: the run stops early, drains, closes and reports with the verdict
       "interrupted"; a second signal exits at once, without a report. Under npx or npm run, a Ctrl-C at the terminal
       reaches npm too, which exits 130 whatever the tool returns.`;

/** The flags that take a value. */
const VALUE_FLAGS = [
  'sockets', 'rate', 'duration', 'host', 'send-rate', 'channels', 'channel-type', 'payload-bytes', 'publish-via', 'stall',
  'app-key', 'app-id', 'app-secret', 'metrics', 'max-error-rate',
] as const;

/**
 * The smallest --payload-bytes: a load message's header (`{"r":"<run id>","t":<ms>,"s":<seq>,"p":"…"}`) takes up to
 * about 56 bytes.
 */
export const MIN_PAYLOAD_BYTES = 56;

/**
 * `--duration -1` → `--duration=-1`: parseArgs reads a value starting with a dash as a flag and refuses it with a
 * three-line message; joined, the value reaches the range check, which says what is wrong with it.
 */
function joinNegativeValues(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const next = argv[i + 1];
    const takesValue = arg.startsWith('--') && (VALUE_FLAGS as readonly string[]).includes(arg.slice(2));
    if (takesValue && next !== undefined && /^-[\d.]/.test(next)) {
      out.push(`${arg}=${next}`);
      i++;
    } else {
      out.push(arg);
    }
  }
  return out;
}

/** The longest time a Node timer holds (2^31 - 1 ms): a longer one fires at once. */
const MAX_SECONDS = 2_147_483;
/** The most sockets one load process is let open: past a few hundred thousand, memory runs out first. */
const MAX_SOCKETS = 1_000_000;
/**
 * The most messages a second the steady state is let ask for, over every socket: one load process sends far fewer (a
 * message costs it microseconds), and a rate past it was a typo. The send loop sends what is due at each tick: with no
 * bound, `--send-rate 1e308` made one tick's batch endless, and no timer nor signal ran again.
 */
const MAX_MESSAGES_PER_SECOND = 1_000_000;
/** Beacon's largest `MAX_PAYLOAD_BYTES`: a larger message is one no server takes. */
const MAX_PAYLOAD_BYTES = 10 * 1024 * 1024;

/**
 * `--name`'s value as a number within [min, max] (an integer if asked), `fallback` when the flag is absent. Blank is no
 * number: `Number('')` is 0, and `--duration=` ran a connections-only test.
 */
function number(name: string, text: string | undefined, fallback: number, min: number, integer: boolean, why = '', max = Infinity): number {
  if (text === undefined) return fallback;
  const n = text.trim() === '' ? Number.NaN : Number(text);
  if (!Number.isFinite(n) || n < min || (integer && !Number.isInteger(n))) {
    throw new UsageError(`--${name} must be ${integer ? 'an integer' : 'a number'} ≥ ${min}${why}, got "${text}"`);
  }
  if (n > max) throw new UsageError(`--${name} must be at most ${max}, got "${text}"`);
  return n;
}

/** `--send-rate`: a number ≥ 0 whose total over `sockets` is at most MAX_MESSAGES_PER_SECOND. */
function sendRate(text: string | undefined, sockets: number): number {
  const rate = number('send-rate', text, 0.1, 0, false);
  if (rate * sockets > MAX_MESSAGES_PER_SECOND) {
    throw new UsageError(
      `--send-rate × --sockets must be at most ${MAX_MESSAGES_PER_SECOND} messages a second, got ${text} × ${sockets}`,
    );
  }
  return rate;
}

function oneOf<T extends string>(name: string, text: string | undefined, fallback: T, allowed: readonly T[]): T {
  if (text === undefined) return fallback;
  if (!(allowed as readonly string[]).includes(text)) {
    throw new UsageError(`--${name} must be one of ${allowed.join(', ')}, got "${text}"`);
  }
  return text as T;
}

/** Parses argv (without node and the script) and the environment; returns null when --help was asked. */
export function parseLoadOptions(argv: string[], env: NodeJS.ProcessEnv): LoadOptions | null {
  let values;
  try {
    ({ values } = parseArgs({
      args: joinNegativeValues(argv),
      strict: true,
      allowPositionals: false,
      options: {
        sockets: { type: 'string' },
        rate: { type: 'string' },
        duration: { type: 'string' },
        host: { type: 'string' },
        'send-rate': { type: 'string' },
        channels: { type: 'string' },
        'channel-type': { type: 'string' },
        'payload-bytes': { type: 'string' },
        'publish-via': { type: 'string' },
        stall: { type: 'string' },
        'app-key': { type: 'string' },
        'app-id': { type: 'string' },
        'app-secret': { type: 'string' },
        metrics: { type: 'string' },
        'max-error-rate': { type: 'string' },
        'allow-remote': { type: 'boolean' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    // parseArgs writes some messages over several lines: one line, so every line of the tool's stderr is prefixed.
    throw new UsageError((err as Error).message.replace(/\s*\n\s*/g, ' '));
  }
  if (values.help === true) return null;
  const host = values.host ?? 'ws://127.0.0.1:6001';
  let url: URL;
  try {
    url = new URL(host);
  } catch {
    throw new UsageError(`--host must be a URL such as ws://127.0.0.1:6001, got "${host}"`);
  }
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') throw new UsageError(`--host must be ws:// or wss://, got "${host}"`);
  // The socket's /app/{key} and the API's paths are put after it; fetch refuses credentials in a URL.
  if (url.username !== '' || url.password !== '' || url.pathname !== '/' || url.search !== '' || url.hash !== '') {
    throw new UsageError(`--host must be ws://host:port only (no credentials, path or query), got "${host}"`);
  }
  if (values.metrics !== undefined) {
    let metricsUrl: URL | undefined;
    try {
      metricsUrl = new URL(values.metrics);
    } catch {
      // answered below
    }
    if (metricsUrl === undefined || (metricsUrl.protocol !== 'http:' && metricsUrl.protocol !== 'https:')) {
      throw new UsageError(`--metrics must be an http:// or https:// URL such as http://127.0.0.1:9464/metrics, got "${values.metrics}"`);
    }
  }
  const sockets = number('sockets', values.sockets, 100, 1, true, '', MAX_SOCKETS);
  const channelsAsked = number('channels', values.channels, 10, 1, true);
  const warnings: string[] = [];
  // Only a --channels the operator gave is worth a word: the default (10) is just cut to --sockets, or `--sockets 5` alone
  // warned about a flag nobody typed.
  if (values.channels !== undefined && channelsAsked > sockets) {
    warnings.push(
      `--channels ${channelsAsked} is more than --sockets ${sockets}: ${sockets} channel(s) used, one socket each` +
        (values['channel-type'] === 'private' || values['channel-type'] === 'presence'
          ? ' (a client event reaches no one on a channel of one socket: use fewer --channels)'
          : ''),
    );
  }
  const options: LoadOptions = {
    sockets,
    rate: number('rate', values.rate, 50, 0.001, false),
    duration: number('duration', values.duration, 30, 0, false, '', MAX_SECONDS),
    host: host.replace(/\/+$/, ''),
    sendRate: sendRate(values['send-rate'], sockets),
    channels: Math.min(channelsAsked, sockets),
    channelType: oneOf('channel-type', values['channel-type'], 'public', ['public', 'private', 'presence'] as const),
    payloadBytes: number(
      'payload-bytes',
      values['payload-bytes'],
      100,
      MIN_PAYLOAD_BYTES,
      true,
      ' (each message carries a header with its run id, send time and sequence number)',
      MAX_PAYLOAD_BYTES,
    ),
    publishVia: oneOf('publish-via', values['publish-via'], 'auto', ['auto', 'client', 'http'] as const),
    stall: number('stall', values.stall, 0, 0, true),
    appKey: values['app-key'] ?? env.APP_KEY ?? 'app-key',
    appId: values['app-id'] ?? env.APP_ID ?? 'app-id',
    appSecret: values['app-secret'] ?? env.APP_SECRET ?? 'app-secret',
    metrics: values.metrics,
    maxErrorRate: number('max-error-rate', values['max-error-rate'], 0, 0, false),
    allowRemote: values['allow-remote'] === true,
    json: values.json === true,
    warnings,
  };
  if (options.stall > options.sockets) throw new UsageError(`--stall ${options.stall} is more than --sockets ${options.sockets}`);
  if (options.maxErrorRate > 1) throw new UsageError('--max-error-rate is a fraction between 0 and 1');
  if (options.channelType === 'public' && options.publishVia === 'client') {
    throw new UsageError('client events are only allowed on private and presence channels: use --channel-type private');
  }
  return options;
}
