/**
 * One load run, in phases: ramp (open --sockets at --rate per second, each subscribes), steady state (--duration seconds
 * of messages at --send-rate per socket), drain (stalled sockets read again; wait, bounded, for what is still in flight),
 * close (every socket closed with 1000, cut after a bound). With --metrics the server is scraped before the ramp and once
 * every connection is gone on its side too, for the audit. The drain, close and settle steps are in wind-down.ts.
 */
import { notBeaconMetrics, scrape, select, sum, sumBy, type Scrape } from '../prometheus/exposition.js';
import { createHttpPublisher, type HttpPublisher } from './http-publisher.js';
import { LoadSocket } from './load-socket.js';
import { CLOSE_MS, closeAll, delay, drain, DRAIN_MAX_MS, settleAndScrape, SETTLE_MS } from './wind-down.js';
import type { LoadOptions } from './options.js';
import { encodePayload, newRunId } from './payload.js';
import { percentileMs } from './report.js';
import { Tally } from './tally.js';

/** The phases of a run, in order. */
export type Phase = 'ramp' | 'steady' | 'drain' | 'close' | 'audit';

/** What the live progress line shows, once a second. */
export interface ProgressStatus {
  phase: Phase;
  /** Seconds into the phase, and the phase's planned length (0 when open-ended). */
  phaseElapsed: number;
  phaseTotal: number;
  open: number;
  attempted: number;
  sockets: number;
  outPerSecond: number;
  inPerSecond: number;
  errors: number;
  p99Ms: number;
}

/**
 * A run that could not start: the first /metrics scrape failed, or no socket subscribed (server down, wrong key, …).
 * main.ts prints the message and exits 2, without a report: nothing was measured.
 */
export class StartError extends Error {}

/** A finished run: the clients' tally, how messages were sent, phase lengths and the scrapes for the audit. */
export interface RunResult {
  /** The run's id: in its channel names (`beacon-load-{id}-N`) and in every message it sent. */
  runId: string;
  tally: Tally;
  publishVia: 'client' | 'http' | 'none';
  /** Why that way (the probe's answer, the channel type, the flag). */
  publishViaReason: string;
  startedAt: string;
  phases: { rampSeconds: number; steadySeconds: number; drainSeconds: number; closeSeconds: number };
  before: Scrape | undefined;
  /** Taken after the drain, before any socket is closed: deliveries are compared up to here (closes send more frames). */
  drained: Scrape | undefined;
  after: Scrape | undefined;
  /** False when the server still counted connections of this run when the audit's last scrape was taken. */
  settled: boolean;
  /** Why the audit could not be done (a /metrics scrape after the run failed: the server died?); undefined otherwise. */
  auditError: string | undefined;
  /** Load messages due in the steady state (sent, or skipped). */
  due: number;
  /** Why the steady state ended before --duration (every socket gone); undefined when it ran its course. */
  steadyEndedEarly: string | undefined;
  /** Set when `stop` aborted (SIGINT, SIGTERM): by what (the abort reason) and in which phase. */
  interrupted: { by: string; phase: Phase } | undefined;
}

const CONNECT_TIMEOUT_MS = 10_000;
const PROBE_TIMEOUT_MS = 3000;
const MAX_HTTP_IN_FLIGHT = 256;
const TICK_MS = 10;


/** `ws://host:port` → the WebSocket URL of `key`, as pusher-js builds it. */
function socketUrl(host: string, key: string): string {
  return `${host}/app/${encodeURIComponent(key)}?protocol=7&client=beacon-load&version=1.0.0&flash=false`;
}

/**
 * The channel of socket `index`: `[private-|presence-]beacon-load-{run id}-{n}`. The run id keeps two runs against one
 * server off each other's channels (36 characters at most with `presence-`: far below any channel name limit).
 */
export function channelName(options: Pick<LoadOptions, 'channelType' | 'channels'>, runId: string, index: number): string {
  const prefix = options.channelType === 'public' ? '' : `${options.channelType}-`;
  return `${prefix}beacon-load-${runId}-${index % options.channels}`;
}

/**
 * Runs the whole test; `onProgress` is called about once a second. When `stop` aborts (SIGINT, SIGTERM), the ramp and
 * the steady state end early and the run goes on to drain, close every socket and scrape, as at a normal end; the steady
 * state also ends early when every socket is gone. Throws `StartError` when the run cannot start.
 */
export async function runLoad(
  options: LoadOptions,
  onProgress: (s: ProgressStatus) => void,
  stop: AbortSignal = new AbortController().signal,
): Promise<RunResult> {
  const tally = new Tally();
  const runId = newRunId();
  const startedAt = new Date().toISOString();
  let before: Scrape | undefined;
  if (options.metrics !== undefined) {
    try {
      before = await scrape(options.metrics);
    } catch (err) {
      throw new StartError(`the scrape before the run failed: ${(err as Error).message}`);
    }
  }
  if (before !== undefined && options.metrics !== undefined) {
    // A wrong --metrics (a /healthz, another exporter) also answers 200: its "audit" read as a telemetry bug.
    const notBeacon = notBeaconMetrics(before, options.metrics);
    if (notBeacon !== undefined) throw new StartError(`${notBeacon}; is --metrics right? (Beacon's is http://HOST:9464/metrics)`);
  }
  if (before !== undefined) tally.publishedBefore = sum(before, 'websocket_events_published_total', { app_id: options.appId });
  const sockets: LoadSocket[] = [];
  /** Subscribed, not yet closed sockets per channel: the recipients of a message sent now. */
  const members = new Map<string, Set<LoadSocket>>();
  let phase: Phase = 'ramp';
  let phaseStart = performance.now();
  let phaseTotal = options.sockets / options.rate;
  let lastSent = 0;
  let lastDelivered = 0;
  let lastAt = performance.now();

  const progress = setInterval(() => {
    const now = performance.now();
    const dt = (now - lastAt) / 1000;
    onProgress({
      phase,
      phaseElapsed: (now - phaseStart) / 1000,
      phaseTotal,
      open: openSockets(),
      attempted: tally.attempted,
      sockets: options.sockets,
      outPerSecond: (tally.messagesSent - lastSent) / dt,
      inPerSecond: (tally.deliveries - lastDelivered) / dt,
      errors: tally.errorCount(),
      // Clamped to the largest value recorded, as the report's are: a live p99 above max read as a bug too.
      p99Ms: percentileMs(tally.latency, 99),
    });
    lastSent = tally.messagesSent;
    lastDelivered = tally.deliveries;
    lastAt = now;
  }, 1000);
  const enterPhase = (next: Phase, total: number) => {
    phase = next;
    phaseStart = performance.now();
    phaseTotal = total;
  };
  let interrupted: RunResult['interrupted'];
  const onStop = () => {
    interrupted = { by: typeof stop.reason === 'string' ? stop.reason : 'stop', phase };
  };
  if (stop.aborted) onStop();
  else stop.addEventListener('abort', onStop, { once: true });
  /** Subscribed sockets still open. */
  const openSockets = () => {
    let n = 0;
    for (const set of members.values()) n += set.size;
    return n;
  };

  try {
    // Ramp: socket i is opened i / rate seconds in.
    const rampStart = performance.now();
    while (sockets.length < options.sockets && !stop.aborted) {
      const due = Math.min(options.sockets, Math.floor(((performance.now() - rampStart) / 1000) * options.rate) + 1);
      while (sockets.length < due) {
        const index = sockets.length;
        const socket = new LoadSocket(
          {
            index,
            runId,
            url: socketUrl(options.host, options.appKey),
            channel: channelName(options, runId, index),
            appKey: options.appKey,
            appSecret: options.appSecret,
          },
          tally,
        );
        sockets.push(socket);
        const timer = setTimeout(() => socket.timeOut(), CONNECT_TIMEOUT_MS);
        void socket.settled.then((ok) => {
          clearTimeout(timer);
          if (!ok) return;
          const set = members.get(socket.plan.channel) ?? new Set<LoadSocket>();
          set.add(socket);
          members.set(socket.plan.channel, set);
          void socket.closed.then(() => set.delete(socket));
        });
      }
      await delay(TICK_MS);
    }
    // A stop (Ctrl-C) does not wait for sockets still connecting (up to their 10 s connect timeout against a server that
    // accepts and never answers): the close below terminates them.
    const stopped = new Promise<void>((resolve) => (stop.aborted ? resolve() : stop.addEventListener('abort', () => resolve(), { once: true })));
    await Promise.race([Promise.all(sockets.map((s) => s.settled)), stopped]);
    const rampSeconds = (performance.now() - rampStart) / 1000;
    // Nothing to measure: say why (the clients' errors) and stop here rather than run the steady state against nothing.
    if (tally.subscribed === 0 && !stop.aborted) {
      const why = [...tally.errors.entries()]
        .sort((a, b) => b[1] - a[1])
        .slice(0, 3)
        .map(([reason, n]) => `${n}× ${reason}`)
        .join(', ');
      throw new StartError(
        `none of the ${tally.attempted} sockets could subscribe at ${options.host}${why === '' ? '' : ` (${why})`}; ` +
          'is the server up, and are --host, --app-key and --app-secret right?',
      );
    }

    if (options.metrics !== undefined && before !== undefined && tally.established > 0 && !stop.aborted) {
      await checkAppId(options.metrics, options.appId, before, tally.established);
    }

    const { via, reason } = await choosePublishPath(options, sockets);
    const http: HttpPublisher | undefined =
      via === 'http'
        ? createHttpPublisher({
            baseUrl: options.host.replace(/^ws/, 'http'),
            appId: options.appId,
            appKey: options.appKey,
            appSecret: options.appSecret,
            maxInFlight: MAX_HTTP_IN_FLIGHT,
            tally,
          })
        : undefined;
    const recipients = (socket: LoadSocket, excludeSender: boolean): number => {
      const set = members.get(socket.plan.channel);
      if (set === undefined) return 0;
      return set.size - (excludeSender && set.has(socket) ? 1 : 0);
    };
    for (const socket of sockets) {
      socket.onClientEventRejected = (overBudget) => {
        const owed = recipients(socket, true);
        tally.expectedDeliveries -= owed;
        if (overBudget) tally.deliveriesUnexpectedOverBudget += owed;
      };
    }

    // Steady state: message k (k = 0, 1, …) is due k / (senders × send-rate) seconds in, from sender k mod senders. The
    // senders are the sockets that subscribed: one that never did (refused: channel full, a bad signature, a timeout) is
    // counted once, among the failed connections, and sends nothing (its messages used to count as "socket had closed").
    enterPhase('steady', options.duration);
    const senders = sockets.filter((s) => s.everSubscribed);
    const stalled = sockets.slice(0, options.stall);
    for (const s of stalled) s.stall();
    const steadyStart = performance.now();
    const totalRate = senders.length * options.sendRate;
    let issued = 0;
    let steadyEndedEarly: string | undefined;
    /** Messages due in the whole steady state: those whose instant k / totalRate falls before --duration. */
    const planned = via === 'none' ? 0 : Math.ceil(options.duration * totalRate - 1e-9);
    /** Messages due by `elapsed` seconds in: message 0 at once (it used to wait a whole interval, and the last one fell off the end). */
    const dueBy = (elapsed: number) => Math.min(planned, Math.floor(elapsed * totalRate) + 1);
    const sendUpTo = (due: number) => {
      while (issued < due) {
        const socket = senders[issued % senders.length] as LoadSocket;
        issued++;
        const data = encodePayload(runId, issued, options.payloadBytes);
        if (http !== undefined) {
          http.publish(issued, socket.plan.channel, data, recipients(socket, false));
        } else if (socket.isOpen && socket.sendClientEvent(data)) {
          tally.messagesSent++;
          tally.expectedDeliveries += recipients(socket, true);
        } else {
          tally.skippedSocketClosed++;
          tally.error('send skipped: socket not open');
        }
      }
    };
    while (performance.now() - steadyStart < options.duration * 1000 && !stop.aborted) {
      if (openSockets() === 0) {
        // Every socket is gone (the server died, shut down or cut them all): sending on would measure nothing.
        const at = ((performance.now() - steadyStart) / 1000).toFixed(1);
        steadyEndedEarly = `ended after ${at} of ${options.duration} s: no socket left open (0 of ${options.sockets})`;
        break;
      }
      sendUpTo(dueBy((performance.now() - steadyStart) / 1000));
      await delay(TICK_MS);
    }
    // A last tick that came after --duration: the messages due before it are still sent (a run of 500 sent 499).
    if (!stop.aborted && steadyEndedEarly === undefined && openSockets() > 0) sendUpTo(planned);
    const steadySeconds = (performance.now() - steadyStart) / 1000;

    // Drain: stalled sockets read again; wait for the answers and deliveries still in flight, bounded.
    enterPhase('drain', DRAIN_MAX_MS / 1000);
    const drainStart = performance.now();
    for (const s of stalled) s.resume();
    const drainEnd = await drain(options, via, tally, http);
    const drained = drainEnd.scrape;
    let auditError = drainEnd.error === undefined ? undefined : `${drainEnd.error} (after the drain)`;
    const drainSeconds = (performance.now() - drainStart) / 1000;

    enterPhase('close', CLOSE_MS / 1000);
    const closeStart = performance.now();
    await closeAll(sockets);
    const closeSeconds = (performance.now() - closeStart) / 1000;

    let after: Scrape | undefined;
    let settled = true;
    if (options.metrics !== undefined && before !== undefined && auditError === undefined) {
      enterPhase('audit', SETTLE_MS / 1000);
      try {
        ({ after, settled } = await settleAndScrape(options.metrics, options.appId, before, tally.established));
      } catch (err) {
        auditError = `${(err as Error).message} (after closing the sockets)`;
      }
    }
    // A server that restarted during the run started its counters again: after − before says nothing of the run, and read
    // as "a telemetry bug" and "lost silently, a server bug" on every row.
    if (auditError === undefined && before !== undefined) {
      const restarted = restartBetween(before, drained) ?? (after === undefined ? undefined : restartBetween(before, after));
      if (restarted !== undefined) {
        auditError = `the server restarted during the run (${restarted}): its counters started again, so they cannot be compared`;
        after = undefined;
      }
    }
    return {
      runId,
      tally,
      publishVia: via,
      publishViaReason: reason,
      startedAt,
      phases: { rampSeconds, steadySeconds, drainSeconds, closeSeconds },
      before,
      drained,
      after,
      settled,
      auditError,
      due: issued,
      steadyEndedEarly,
      interrupted,
    };
  } finally {
    stop.removeEventListener('abort', onStop);
    clearInterval(progress);
    for (const s of sockets) if (s.state !== 'closed') s.terminate();
  }
}

/**
 * The audit reads the series labelled with --app-id: once this run's connections are open, the server must count them
 * under that app id. When it counts none, refuse to start: the audit would call every row a telemetry bug. Two mistakes
 * look alike here, and the hint tells them apart by what the node did count: this run's connections under another app id
 * (a wrong --app-id; the key chose the app), or none at all since the run began (a --metrics of another node than the one
 * --host reaches: "is --app-id right?" sent the operator to the wrong flag). A /metrics that does not answer here is left
 * to the audit to report.
 */
export async function checkAppId(url: string, appId: string, before: Scrape, established: number): Promise<void> {
  const openedBefore = sumBy(before, 'websocket_connections_opened_total', 'app_id');
  for (let attempt = 0; attempt < 3; attempt++) {
    let now: Scrape;
    try {
      now = await scrape(url);
    } catch {
      return;
    }
    const opened = sumBy(now, 'websocket_connections_opened_total', 'app_id');
    if ((opened.get(appId) ?? 0) - (openedBefore.get(appId) ?? 0) > 0) return;
    if (attempt < 2) {
      await delay(200);
      continue;
    }
    const others = [...opened]
      .map(([id, n]) => [id, n - (openedBefore.get(id) ?? 0)] as const)
      .filter(([, n]) => n > 0)
      .map(([id, n]) => `app_id="${id}" ${n}`);
    const node = select(now, 'target_info')[0]?.labels.service_instance_id;
    const otherNode = `does --metrics read another node than the one --host reaches${node === undefined ? '' : ` (it reads ${node})`}?`;
    const hint =
      others.length === 0
        ? `${otherNode} (it counted no connection of any app, while the node this run reached opened ${established})`
        : `is --app-id right? (--app-key chose the app; --app-id names it in the metrics and the HTTP API) Or ${otherNode}`;
    throw new StartError(
      `${url} counts no connection of app_id "${appId}" although ${established} connection(s) of this run are open ` +
        `(opened since the run began: ${others.length === 0 ? 'none' : others.join(', ')}); ${hint}`,
    );
  }
}

/** Client events when the channel type and the app allow them, HTTP publishes otherwise. */
async function choosePublishPath(
  options: LoadOptions,
  sockets: LoadSocket[],
): Promise<{ via: 'client' | 'http' | 'none'; reason: string }> {
  if (options.sendRate === 0 || options.duration === 0) {
    return { via: 'none', reason: `${options.sendRate === 0 ? '--send-rate 0' : '--duration 0'}: connections only` };
  }
  if (options.channelType === 'public') return { via: 'http', reason: 'public channels take no client events' };
  if (options.publishVia !== 'auto') return { via: options.publishVia, reason: `--publish-via ${options.publishVia}` };
  const probe = sockets.find((s) => s.isOpen);
  if (probe === undefined) return { via: 'http', reason: 'no socket open to probe client events' };
  const answer = await probe.probeClientEvents(PROBE_TIMEOUT_MS);
  if (answer !== undefined && /not enabled|disabled/i.test(answer)) {
    return { via: 'http', reason: `the app refuses client events ("${answer}")` };
  }
  return { via: 'client', reason: 'the app accepts client events' };
}

/**
 * Why `later` is a scrape of another process than `earlier` (a new `process_start_time_seconds`, or the server's
 * connections-opened counter lower than before), undefined when it is the same process or it cannot tell.
 */
export function restartBetween(earlier: Scrape, later: Scrape | undefined): string | undefined {
  if (later === undefined) return undefined;
  const started = (scrape: Scrape): number | undefined => select(scrape, 'process_start_time_seconds')[0]?.value;
  const [from, to] = [started(earlier), started(later)];
  if (from !== undefined && to !== undefined && from !== to) return 'a new process_start_time_seconds';
  if (sum(later, 'websocket_connections_opened_total') < sum(earlier, 'websocket_connections_opened_total')) {
    return 'websocket_connections_opened_total went down';
  }
  return undefined;
}
