/**
 * The audit: the server's own counters (the difference of two /metrics scrapes, one before the run and one after every
 * connection of it is gone) beside what the load clients saw, pair by pair. Each pair names what a difference would mean:
 * the server counting less than the clients saw is a telemetry bug; the server counting more means traffic that never
 * reached a client (lost) or other clients on the same server (the audit assumes this run is the server's only load).
 */
import { sum, sumBy, type Scrape } from '../prometheus/exposition.js';
import type { ClientFrameKind, ServerFrameKind, Tally } from './tally.js';

/** One compared pair. */
export interface AuditRow {
  what: string;
  /** The series, as PromQL would select it. */
  metric: string;
  server: number;
  clients: number;
  /** server − clients. */
  difference: number;
  /** What a difference in this row means; empty when there is none. */
  meaning: string;
}

/** The whole audit. */
export interface Audit {
  metricsUrl: string;
  rows: AuditRow[];
  /** Rows whose difference is not 0. */
  differences: number;
  /** Server counters shown for context, not compared (close reasons, backpressure). */
  context: Record<string, number>;
  /** False when the server still counted connections of this run at the last scrape (its closes lag the clients'). */
  settled: boolean;
  /**
   * Where the deliveries the clients missed went, by the server's counters (until the drain): written into the buffer of a
   * socket that was then cut, dropped and counted, and owed to a socket the server had already removed (or lost silently).
   * The three add up to the clients' `lost`.
   */
  loss: { lost: number; writtenThenCut: number; droppedCounted: number; notRecipient: number };
  /**
   * Signs that the run was not the server's only load for its app (the audit assumes it was): connections of the app
   * open before the run, more open at the end of the drain than the run ever opened, events on the run's channels that
   * were not its messages. Empty when none was seen (which does not prove there was none).
   */
  otherLoad: string[];
}

const RECEIVED_KINDS: ClientFrameKind[] = ['subscribe', 'unsubscribe', 'ping', 'pong', 'client_event', 'signin', 'invalid'];
const SENT_KINDS: ServerFrameKind[] = ['protocol', 'presence', 'channel_event', 'client_event'];

const MORE_ON_SERVER_OTHERS = 'other clients of this app on the same server (the audit assumes this run is its only load)';

/** Compares the server's counter increases (before → drained → after) with the clients' tally, pair by pair. */
export function buildAudit(
  tally: Tally,
  before: Scrape,
  drained: Scrape,
  after: Scrape,
  options: { appId: string; metricsUrl: string; settled: boolean },
): Audit {
  const app = { app_id: options.appId };
  const delta = (name: string, match: Record<string, string> = {}) =>
    sum(after, name, { ...app, ...match }) - sum(before, name, { ...app, ...match });
  const rows: AuditRow[] = [];
  // Refusals past the frame budget are answered alike whatever frame they refused (a client event, a pong, …): the clients
  // know how many, not which. What depends on it is checked as a range, and the frames of every kind as one sum.
  const overBudget = tally.framesOverBudget;
  const between = (server: number, low: number, high: number) => Math.min(Math.max(server, low), high);
  const row = (what: string, metric: string, server: number, clients: number, more: string, less: string) => {
    const difference = server - clients;
    rows.push({ what, metric, server, clients, difference, meaning: difference > 0 ? more : difference < 0 ? less : '' });
  };
  const sel = (name: string, extra = '') => `${name}{app_id="${options.appId}"${extra}}`;

  row(
    'connections opened',
    sel('websocket_connections_opened_total'),
    delta('websocket_connections_opened_total'),
    tally.established,
    `accepted connections whose pusher:connection_established did not reach the client in time (it gave up: see the "connect timeout" errors) or was lost, or ${MORE_ON_SERVER_OTHERS}`,
    'connections the clients saw established that the server did not count: a telemetry bug',
  );
  row(
    'connections closed',
    sel('websocket_connections_closed_total'),
    delta('websocket_connections_closed_total'),
    tally.closedAfterEstablished,
    `connections the clients gave up on before connection_established (see "connections opened"), or ${MORE_ON_SERVER_OTHERS}`,
    options.settled
      ? 'closes the server never recorded although its connections are gone: a telemetry bug'
      : 'the server had not finished closing these connections at the last scrape (see "settled"): re-run, or a leak',
  );
  const rejected = sum(after, 'websocket_connections_rejected_total') - sum(before, 'websocket_connections_rejected_total');
  row(
    'upgrades refused',
    'websocket_connections_rejected_total',
    rejected,
    tally.refused,
    'refusals the clients could not tell from a lost connection (a refusal flood: past its cap of refused sockets the server cuts them without a close frame, 1006), or refusals of other clients (this series has no app_id label: any app, any client counts)',
    'refusals the clients saw (a pusher:error or a 4xxx close before connection_established, or an HTTP status instead of the upgrade) that the server did not count: a telemetry bug',
  );
  let sentFrames = 0;
  let receivedFrames = 0;
  for (const kind of RECEIVED_KINDS) {
    // A frame refused past its connection's frame budget is counted by the server before it is read: as `invalid`.
    const sent = tally.framesSent.get(kind) ?? 0;
    const server = delta('websocket_messages_received_total', { kind });
    sentFrames += sent;
    receivedFrames += server;
    const clients = kind === 'invalid' ? sent + overBudget : between(server, sent - overBudget, sent);
    if (kind !== 'subscribe' && clients === 0 && server === 0) continue;
    row(
      `frames received: ${kind}`,
      sel('websocket_messages_received_total', `,kind="${kind}"`),
      server,
      clients,
      MORE_ON_SERVER_OTHERS,
      'frames the clients wrote that the server never counted: lost with a connection cut before the server read them, or a telemetry bug',
    );
  }
  if (overBudget > 0) {
    row(
      'frames received: all kinds',
      sel('websocket_messages_received_total'),
      receivedFrames,
      sentFrames,
      MORE_ON_SERVER_OTHERS,
      'frames the clients wrote that the server never counted: lost with a connection cut before the server read them, or a telemetry bug',
    );
  }
  // Frames read on sockets refused before connection_established (the refusal's pusher:error) are not in the tally's
  // framesReceived: the server counts a refusal in websocket_connections_rejected_total (the row above), not here.
  for (const kind of SENT_KINDS) {
    const clients = tally.framesReceived.get(kind) ?? 0;
    const server = delta('websocket_messages_sent_total', { kind });
    if (kind !== 'protocol' && clients === 0 && server === 0) continue;
    row(
      `frames sent: ${kind}`,
      sel('websocket_messages_sent_total', `,kind="${kind}"`),
      server,
      clients,
      `frames the server wrote that never reached a client: lost in the buffer of a socket that was cut — by the server (slow consumer, see websocket_backpressure_events_total) or by a client that gave up (connect timeout) — or ${MORE_ON_SERVER_OTHERS}`,
      'frames the clients received that the server did not count as sent: a telemetry bug',
    );
  }
  const clientEvents = (tally.framesSent.get('client_event') ?? 0) - tally.clientEventsRejected;
  for (const [source, accepted, unsure] of [
    ['http_api', tally.httpPublished + tally.httpAcceptedUnanswered, 0],
    ['client_event', clientEvents, overBudget],
  ] as const) {
    const server = delta('websocket_events_published_total', { source });
    const clients = between(server, accepted, accepted + unsure);
    if (source === 'client_event' && clients === 0 && server === 0) continue;
    row(
      `events published: ${source}`,
      sel('websocket_events_published_total', `,source="${source}"`),
      server,
      clients,
      source === 'http_api'
        ? `publishes counted that this run did not get a 200 for, or ${MORE_ON_SERVER_OTHERS}`
        : `client events counted as published that the server also refused, or ${MORE_ON_SERVER_OTHERS}`,
      'accepted events the server did not count as published: a telemetry bug (or, for client events, frames lost before the server read them)',
    );
  }
  row(
    'frames refused',
    sel('websocket_message_errors_total'),
    delta('websocket_message_errors_total'),
    tally.clientEventsRejected,
    `refusals the clients never heard of (their pusher:error was lost), or ${MORE_ON_SERVER_OTHERS}`,
    'pusher:error answers the server did not count: a telemetry bug',
  );
  // Up to the scrape after the drain: closing sockets makes the server send subscription counts (apps with
  // enableSubscriptionCount) to channels whose other members are closing too, counted as dropped, without a kind.
  const drainedDelta = (name: string, match: Record<string, string>) =>
    sum(drained, name, { ...app, ...match }) - sum(before, name, { ...app, ...match });
  const written =
    drainedDelta('websocket_messages_sent_total', { kind: 'channel_event' }) +
    drainedDelta('websocket_messages_sent_total', { kind: 'client_event' });
  const dropped = drainedDelta('websocket_backpressure_events_total', { action: 'dropped' });
  const cut = drainedDelta('websocket_backpressure_events_total', { action: 'disconnected' });
  row(
    'deliveries accounted for (until the drain)',
    `${sel('websocket_messages_sent_total', ',kind=~"channel_event|client_event"')} + ${sel('websocket_backpressure_events_total', ',action="dropped"')}`,
    written + dropped,
    between(written + dropped, tally.expectedDeliveries, tally.expectedDeliveries + tally.deliveriesUnexpectedOverBudget),
    MORE_ON_SERVER_OTHERS,
    cut > 0
      ? `the server cut ${cut} slow consumer(s) (websocket_backpressure_events_total{action="disconnected"}); once gone from their channels they are no recipients, while the stalled clients, not reading, still counted themselves subscribed. Without slow consumers this difference would be deliveries lost silently`
      : 'deliveries owed to subscribers that the server neither wrote nor counted as dropped: lost silently, a server bug',
  );

  row(
    'deliveries lost (until the drain)',
    sel('websocket_backpressure_events_total', ',action="dropped"'),
    dropped,
    Math.max(0, tally.expectedDeliveries - tally.deliveries),
    'frames the server counted as dropped that every client still received: a telemetry bug',
    'deliveries the clients missed that the server did not count as dropped: lost in the send buffer of a socket it cut (then "frames sent" differs by as many), owed to a socket the server had already removed (see "deliveries accounted for"), or lost silently',
  );

  const context: Record<string, number> = {};
  const closedBy = sumBy(after, 'websocket_connections_closed_total', 'reason', app);
  const closedByBefore = sumBy(before, 'websocket_connections_closed_total', 'reason', app);
  for (const [reason, value] of closedBy) {
    const d = value - (closedByBefore.get(reason) ?? 0);
    if (d !== 0) context[`websocket_connections_closed_total{reason="${reason}"}`] = d;
  }
  context['websocket_backpressure_events_total{action="disconnected"}'] = delta('websocket_backpressure_events_total', {
    action: 'disconnected',
  });
  context['websocket_backpressure_events_total{action="dropped"}'] = delta('websocket_backpressure_events_total', {
    action: 'dropped',
  });
  const received = (tally.framesReceived.get('channel_event') ?? 0) + (tally.framesReceived.get('client_event') ?? 0);
  const lost = Math.max(0, tally.expectedDeliveries - tally.deliveries);
  const writtenThenCut = Math.max(0, written - received);
  const loss = { lost, writtenThenCut, droppedCounted: dropped, notRecipient: lost - writtenThenCut - dropped };
  const otherLoad: string[] = [];
  const openBefore = sum(before, 'websocket_connections', app);
  if (openBefore > 0) otherLoad.push(`${openBefore} connection(s) of app ${options.appId} were open before the run`);
  const openDrained = sum(drained, 'websocket_connections', app);
  if (openDrained - openBefore > tally.established) {
    otherLoad.push(
      `${openDrained - openBefore} more connection(s) of app ${options.appId} were open at the end of the drain than before the run, which opened ${tally.established}`,
    );
  }
  // Connections that opened and closed again within the run (another, shorter run; a tab reloaded) are in neither
  // gauge: the server counting more openings than this run attempted tells them.
  const openedByServer = delta('websocket_connections_opened_total');
  if (openedByServer > tally.attempted) {
    otherLoad.push(
      `the server opened ${openedByServer} connection(s) of app ${options.appId} during the run, which attempted ${tally.attempted}`,
    );
  }
  if (tally.foreignMessages > 0) {
    otherLoad.push(`${tally.foreignMessages} event(s) arrived on this run's channels that were not its messages`);
  }
  return {
    loss,
    otherLoad,
    metricsUrl: options.metricsUrl,
    rows,
    differences: rows.filter((r) => r.difference !== 0).length,
    context,
    settled: options.settled,
  };
}
