/**
 * The end of a run, after the steady state: drain what is still in flight, close every socket, and wait for the server
 * to count those closes before the audit's last scrape. Each step is bounded.
 */
import { scrape, sum, type Scrape } from '../prometheus/exposition.js';
import type { HttpPublisher } from './http-publisher.js';
import type { LoadSocket } from './load-socket.js';
import type { LoadOptions } from './options.js';
import type { Tally } from './tally.js';

/** After the last answer and the server caught up, how long deliveries still missing may take before they count as lost. */
const DRAIN_MS = 3000;
/** Bound on the whole drain: a server that lags (or HTTP requests that time out, 10 s) is waited for this long at most. */
export const DRAIN_MAX_MS = 30_000;
/** Bound on the close handshakes; sockets still open then are cut. */
export const CLOSE_MS = 5000;
/** Bound on waiting for the server to count the closes. */
export const SETTLE_MS = 5000;
const TICK_MS = 10;
/** Consecutive failed scrapes after which the drain stops waiting for the server's counters (a server that died). */
const SCRAPE_FAILURES = 3;

/** Resolves after `ms`. */
export const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The end of the drain: the scrape taken then (undefined without --metrics, or when it failed: `error` says why). */
export interface Drained {
  scrape: Scrape | undefined;
  error: string | undefined;
}

/**
 * Waits for what is still in flight: HTTP answers, the server working through its backlog (with --metrics: until it
 * counts as published every message this run sent and was not refused; a publish whose request timed out may still be
 * processed), then the deliveries. Returns the scrape taken at the end. A /metrics that stops answering (a server that
 * died: SCRAPE_FAILURES failures in a row) ends the wait for the server's counters; the drain goes on for the deliveries,
 * and `error` says why there is no scrape.
 */
export async function drain(
  options: LoadOptions,
  via: 'client' | 'http' | 'none',
  tally: Tally,
  http: HttpPublisher | undefined,
): Promise<Drained> {
  const start = performance.now();
  const app = { app_id: options.appId };
  let caughtUpAt: number | undefined;
  let metricsError: string | undefined;
  let failures = 0;
  while (performance.now() - start < DRAIN_MAX_MS) {
    const answered = http === undefined || http.inFlight() === 0;
    let serverCaughtUp = true;
    if (options.metrics !== undefined && metricsError === undefined && via !== 'none' && answered) {
      try {
        const last = await scrape(options.metrics);
        failures = 0;
        const published = sum(last, 'websocket_events_published_total', app) - tally.publishedBefore;
        serverCaughtUp = published >= owedPublishes(tally, via);
      } catch (err) {
        // One failure may be a busy server: wait on. Several in a row: it is gone, wait only for the deliveries.
        failures++;
        if (failures >= SCRAPE_FAILURES) metricsError = (err as Error).message;
        else serverCaughtUp = false;
      }
    }
    if (answered && serverCaughtUp) {
      caughtUpAt ??= performance.now();
      if (tally.deliveries >= tally.expectedDeliveries) break;
      if (performance.now() - caughtUpAt >= DRAIN_MS) break;
    }
    await delay(options.metrics === undefined || metricsError !== undefined ? TICK_MS : 100);
  }
  if (options.metrics === undefined) return { scrape: undefined, error: undefined };
  try {
    return { scrape: await scrape(options.metrics), error: undefined };
  } catch (err) {
    return { scrape: undefined, error: (err as Error).message };
  }
}

/**
 * Why an HTTP publish failed when it can only have failed before a connection to the server existed: no descriptor for
 * the socket (EMFILE, ENFILE: `ulimit -n` below --sockets), no port or route to connect from or a name that did not
 * resolve, a connect the server refused or did not answer in time. Such a publish never reached the server, which cannot
 * have counted it. Everything else may have reached it and stays owed: a timeout (the request may wait in the server's
 * backlog), a reset or `other side closed` (on a kept-alive connection it can come after the request was written, even
 * after the server accepted it), and any cause not named here. Owing too much costs a drain that waits its bound; owing
 * too little ends the drain before the server counted what it did accept, and the audit reads that as a difference.
 */
const NEVER_SENT = new Set(['EMFILE', 'ENFILE', 'EADDRNOTAVAIL', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT']);

/**
 * Messages of this run the server should have counted as published: sent and not refused, and, over HTTP, not failed
 * before reaching the server (every publish that did so made the drain wait its whole 30 s for a count that never came).
 */
function owedPublishes(tally: Tally, via: 'client' | 'http' | 'none'): number {
  if (via === 'http') {
    let neverSent = 0;
    for (const [cause, n] of tally.httpNoAnswer) if (NEVER_SENT.has(cause)) neverSent += n;
    return tally.httpAttempted - tally.httpRefused - neverSent;
  }
  if (via === 'client') return (tally.framesSent.get('client_event') ?? 0) - tally.clientEventsRejected;
  return 0;
}

/** Closes every socket with 1000; those whose handshake does not finish in CLOSE_MS are cut. */
export async function closeAll(sockets: LoadSocket[]): Promise<void> {
  const open = sockets.filter((s) => s.state !== 'closed');
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, CLOSE_MS);
  });
  await Promise.race([Promise.all(open.map((s) => s.close())), bound]);
  clearTimeout(timer);
  const stuck = open.filter((s) => s.state !== 'closed');
  for (const s of stuck) s.terminate();
  await Promise.all(stuck.map((s) => s.closed));
}

/**
 * The server records a close when its side of the socket is gone, a moment after the client's: poll /metrics until it
 * counts as many closes as opens of this run and its open-connection gauge is back where it was (bounded).
 */
export async function settleAndScrape(
  url: string,
  appId: string,
  before: Scrape,
  established: number,
): Promise<{ after: Scrape; settled: boolean }> {
  const app = { app_id: appId };
  const gaugeBefore = sum(before, 'websocket_connections', app);
  const openedBefore = sum(before, 'websocket_connections_opened_total', app);
  const closedBefore = sum(before, 'websocket_connections_closed_total', app);
  const deadline = performance.now() + SETTLE_MS;
  for (;;) {
    const after = await scrape(url);
    const opened = sum(after, 'websocket_connections_opened_total', app) - openedBefore;
    const closed = sum(after, 'websocket_connections_closed_total', app) - closedBefore;
    const gauge = sum(after, 'websocket_connections', app);
    if ((closed >= opened && opened >= established && gauge <= gaugeBefore) || performance.now() > deadline) {
      return { after, settled: closed >= opened && gauge <= gaugeBefore };
    }
    await delay(100);
  }
}
