/**
 * Every instrument of the telemetry contract (docs/telemetry.md) is declared here, and nowhere else.
 * The rest of the code calls the intent-named recorders of `Metrics`; gauges are observable callbacks that read sizes from
 * the hub (`GaugeSources`) at scrape time, so they are exact by construction instead of inc/dec scattered around.
 *
 * Instruments are declared with the Prometheus-facing name, counters with their `_total` (the exporter leaves a name that
 * already ends in `_total` alone and adds no unit suffix), so the names below are exactly what `/metrics` shows. Spelling the
 * suffix out also keeps the `websocket_subscriptions` gauge and the `websocket_subscriptions_total` counter distinct instruments.
 *
 * Labels are bounded by construction: `app_id` comes from configured apps only, `webhook` is a position in an app's
 * configured webhook list, `event` is a webhook event name (webhooks/webhook-event.ts), `channel_type`, `reason`, `kind`,
 * `scope`, `action`, `result`, `direction`, `op`, `state` come from fixed sets below. Client-chosen values (socket ids, user ids, channel names, IPs, event names, close codes sent by a
 * client) are never labels: a hostile client could mint unbounded series.
 */
import type { AdapterStatus } from '../adapters/adapter.js';
import { CHANNEL_TYPES, type ChannelType } from '../protocol/channel-type.js';
import type { ReceivedKind, SentKind } from '../protocol/frame-kinds.js';
import { APP_REJECT_REASONS, CLOSE_REASONS, REJECT_REASONS, type CloseReason, type RejectReason } from '../transport/close-reasons.js';
import type { WebhookEventName } from '../webhooks/webhook-event.js';
import { metrics, type Attributes, type Counter, type Meter } from '@opentelemetry/api';
import { CounterTable } from './counter-table.js';
import type { StdoutDropReason } from './stdout-writer.js';
import { processTables, type HistogramTable, type MetricTables } from './histogram-table.js';
import type { ViewOptions } from '@opentelemetry/sdk-metrics';
import { ATTR_HTTP_REQUEST_METHOD, ATTR_HTTP_RESPONSE_STATUS_CODE, ATTR_HTTP_ROUTE } from '@opentelemetry/semantic-conventions';

export const MESSAGE_ERROR_REASONS = [
  'invalid_json',
  'invalid_message',
  'unknown_event',
  'too_large',
  'not_subscribed',
  'unauthorized',
  'client_events_disabled',
  'rate_limited',
  'frame_rate_limited',
  'too_deep',
  'too_many_subscriptions',
  'invalid_utf8',
  'invalid_frame',
] as const;
export type MessageErrorReason = (typeof MESSAGE_ERROR_REASONS)[number];
export type PublishSource = 'http_api' | 'client_event';
export const SUBSCRIPTION_RESULTS = ['ok', 'auth_failed', 'invalid', 'limit', 'unavailable'] as const;
export type SubscriptionResult = (typeof SUBSCRIPTION_RESULTS)[number];
export const RATE_LIMIT_SCOPES = ['client_events', 'http_api', 'connections', 'frames'] as const;
export type RateLimitScope = (typeof RATE_LIMIT_SCOPES)[number];
export const BACKPRESSURE_ACTIONS = ['dropped', 'disconnected'] as const;
export type BackpressureAction = (typeof BACKPRESSURE_ACTIONS)[number];
export const API_AUTH_FAILURE_REASONS = ['bad_signature', 'expired', 'unknown_key', 'body_md5'] as const;
export type ApiAuthFailureReason = (typeof API_AUTH_FAILURE_REASONS)[number];

/** The request methods `http_request_method` names; any other is `_OTHER` (the HTTP semantic conventions' rule). */
const HTTP_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH']);
const OTHER_METHOD = '_OTHER';

/** The meter Beacon's own instruments are declared on (`createMetrics`), which METRIC_VIEWS select. */
export const BEACON_METER = 'beacon';

/**
 * The views the meter provider applies (otel/sdk.ts): Beacon's instruments without the SDK's limit of 2 000 series a
 * metric. Their series are bounded by the configured apps and the fixed label enums (docs/telemetry.md), and past that
 * limit the SDK folds the rest into one `otel_metric_overflow="true"` series that, for observable counters and gauges
 * (Beacon's counters, its gauges), it computes wrongly: a counter read a fifth low, and the overflow series grew on every
 * scrape with nothing counted (SDK 2.12, `DeltaMetricProcessor.batchCumulate`). 25 subscription series an app: 80 apps.
 */
export const METRIC_VIEWS: ViewOptions[] = [
  { meterName: BEACON_METER, instrumentName: '*', aggregationCardinalityLimit: Number.POSITIVE_INFINITY },
];

/**
 * Apps whose per-app counter series of rare events are exported at 0 from start: at most this many, the first enabled
 * ones configured (53 series an app; past it an app's series appear with their first event). Every series costs the
 * Prometheus that scrapes every node, and a multi-tenant node's hundreds of apps would add thousands of zeros each, so
 * their count stays small — 20 subscription failure series an app, 400 in all.
 */
export const SEEDED_APPS_MAX = 20;
/** The subscription results seeded: the failures (`ok` comes with the first subscription, one lost count of many). */
const SEEDED_SUBSCRIPTION_RESULTS = SUBSCRIPTION_RESULTS.filter((result) => result !== 'ok');
/**
 * Why the HTTP API refused a call, other than its signature (`ApiAuthFailureReason`), its rate limit (`rateLimited`), a path
 * no route matches and what the parser or the router refused (`MalformedRequestReason`): the registry error it answered
 * (protocol/errors.ts), lower-cased without `API_` (http/api-refusals.ts maps them). Every one is exported from start, at 0.
 */
export const API_REFUSAL_REASONS = [
  'invalid_request',
  'invalid_json',
  'unsupported_media_type',
  'unsupported_encoding',
  'body_too_large',
  'body_not_object',
  'event_name_invalid',
  'event_name_too_long',
  'event_name_reserved',
  'data_not_string',
  'data_too_large',
  'channel_not_string',
  'channel_or_channels',
  'channels_empty',
  'too_many_channels',
  'invalid_channel_name',
  'encrypted_not_alone',
  'invalid_socket_id',
  'unknown_info',
  'batch_not_array',
  'batch_too_large',
  'user_count_needs_prefix',
  'user_count_not_presence',
  'cache_not_cache_channel',
  'users_not_presence',
  'app_disabled',
  'shutting_down',
  'engine_unavailable',
] as const;
export type ApiRefusalReason = (typeof API_REFUSAL_REASONS)[number];
export type WebhookResult = 'ok' | 'retried' | 'failed';
export type AdapterDirection = 'published' | 'received';
export type AdapterOp = 'channels' | 'members' | 'counts';
/**
 * Why the cluster engine lost a publish: on the publishing node, it was down (not sent), the publish command failed
 * (`error`), got no answer in time (`timeout`: it may still be carried) or was not sent because Redis had not taken what
 * was sent before (`backlog`: adapters/adapter.ts `congested`); on a receiving node, envelopes it never received
 * (`gap`, adapters/envelope-gaps.ts).
 */
export type AdapterDropReason = 'down' | 'error' | 'timeout' | 'backlog' | 'gap';
/** Why Node's HTTP parser refused a request (http/client-errors.ts). */
export type MalformedRequestReason =
  | 'bad_request'
  | 'header_overflow'
  | 'timeout'
  | 'bad_url'
  | 'param_too_long'
  | 'no_host'
  | 'bad_method'
  | 'expectation'
  | 'pipelined';
/** Why a log line never reached Loki: the spool was full (oldest dropped), Loki refused it for good (4xx), or shutdown came first. */
export type LogDropReason = 'spool_full' | 'rejected' | 'shutdown' | 'worker_failed';
/** Log lines that reached Loki and those dropped, by reason (counters since start). */
export interface LogShippingCounts {
  shipped: number;
  dropped: Record<LogDropReason, number>;
}

/**
 * One webhook's events waiting on this node (webhooks/webhook-queue.ts): what `WEBHOOK_MAX_PENDING_EVENTS` bounds, split by
 * where they wait. `webhook` is the index in the app's webhook list, as in `websocket_webhooks_total`.
 */
export interface WebhookBacklog {
  appId: string;
  webhook: number;
  /** Waiting for a request: the next batch, or a free request slot. */
  queued: number;
  /** In requests in flight or waiting to retry. */
  inFlight: number;
  /** The size of its waiting events (queued and in flight), as `WEBHOOK_MAX_PENDING_BYTES` counts it. */
  bytes: number;
}

/** Sizes read at collection time. Every callback must be cheap: it runs on each scrape. */
export interface GaugeSources {
  /** Open connections per configured app id (every configured app, zeros included). */
  connectionsByApp(): Iterable<[appId: string, count: number]>;
  /** Occupied channels and subscriptions on this node per app and channel type. */
  channelStats(): Iterable<{ appId: string; channelType: ChannelType; channels: number; subscriptions: number }>;
  /** Presence members (distinct users per channel, summed) per app on this node. */
  presenceMembersByApp(): Iterable<[appId: string, count: number]>;
  /** Bytes queued in socket send buffers, summed over connections. */
  sendBufferBytes(): number;
  /** The cluster engine: reachable (the local adapter always is), and its membership changes not recorded yet. */
  adapterStatus(): AdapterStatus;
  /** Loki shipping counts; undefined (no series) when logs are not shipped to Loki. */
  logShipping?: () => LogShippingCounts | undefined;
  /** stdout lines dropped, by reason; undefined (no series) when the logger does not write stdout itself. */
  stdoutDropped?: () => Readonly<Record<StdoutDropReason, number>> | undefined;
  /** Every configured webhook's events waiting, zeros included; undefined (no series) when no webhook sender is wired. */
  webhookBacklog?: () => Iterable<WebhookBacklog>;
  /** `channel_vacated` / `member_removed` held back for the vacate delay, per app with a webhook (zeros included). */
  webhookHeld?: () => Iterable<[appId: string, count: number]>;
}

/** Bucket boundaries, per unit: seconds-scale for durations, bytes for sizes, counts for fan-out. */
const SECONDS_FAST = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
const SECONDS_RTT = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const SECONDS_LIFETIME = [1, 5, 15, 30, 60, 300, 900, 1800, 3600, 7200, 21600, 86400];
const SECONDS_HTTP = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
const BYTES = [64, 256, 1024, 4096, 16384, 65536, 262144, 1048576];
const RECIPIENTS = [0, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];

/** `recipients` label of `websocket_broadcast_duration_seconds`: a fixed set of buckets, never the raw count. */
export function recipientsBucket(n: number): string {
  if (n <= 1) return '1';
  if (n <= 10) return '2-10';
  if (n <= 100) return '11-100';
  if (n <= 1000) return '101-1000';
  return '1001+';
}

/** Intent-named recorders; the only way the rest of the code touches instruments. */
export interface Metrics {
  connectionOpened(appId: string): void;
  connectionClosed(appId: string, reason: CloseReason, lifetimeSeconds: number): void;
  /** `appId` once the upgrade's key named an app (disabled, over its quota or rate, …); undefined before. */
  connectionRejected(reason: RejectReason, appId?: string): void;
  messageReceived(appId: string, kind: ReceivedKind, bytes: number): void;
  /** `count` frames of `bytes` each (fan-out records once per message, not per recipient). */
  messagesSent(appId: string, kind: SentKind, bytes: number, count: number): void;
  messageProcessed(kind: ReceivedKind, seconds: number): void;
  messageError(appId: string, reason: MessageErrorReason): void;
  eventPublished(appId: string, source: PublishSource): void;
  broadcast(channelType: ChannelType, recipients: number, seconds: number): void;
  subscription(appId: string, channelType: ChannelType, result: SubscriptionResult): void;
  rateLimited(appId: string, scope: RateLimitScope): void;
  /** `count` frames dropped (or one connection disconnected) because a socket could not take them. */
  backpressure(appId: string, action: BackpressureAction, count?: number): void;
  pingRtt(seconds: number): void;
  apiAuthFailure(reason: ApiAuthFailureReason): void;
  /** An HTTP API call refused with a registry error counted nowhere else by reason (http/api-refusals.ts). */
  apiRefused(reason: ApiRefusalReason): void;
  httpRequest(method: string, route: string, statusCode: number, seconds: number): void;
  /** A request Node's HTTP parser refused before any route saw it. */
  httpMalformed(reason: MalformedRequestReason): void;
  /** `webhook` is the index in the app's webhook list (bounded by configuration; never the URL). */
  webhook(event: WebhookEventName, result: WebhookResult, appId: string, webhook: number): void;
  /**
   * Exports a configured webhook's `failed` series for each event type it takes, at 0, from start: a series that appeared
   * only with its first failure after a restart (the process's old samples still within 20 minutes) was neither new to
   * BeaconWebhookFailures nor an increase, and the alert stayed silent.
   */
  webhookConfigured(appId: string, webhook: number, events: readonly WebhookEventName[]): void;
  adapterMessage(direction: AdapterDirection): void;
  adapterRequest(op: AdapterOp, seconds: number): void;
  /** The graceful drain began: the gauge reads the seconds since, rising, until `shutdownDuration` sets the whole. */
  shutdownStarted(): void;
  shutdownDuration(seconds: number): void;
  /** A publish the cluster engine could not carry (counted, never buffered). */
  adapterDropped(reason: AdapterDropReason, count?: number): void;
  /** A cache channel's last event dropped to keep the cache within its byte bound. */
  cacheEvicted(appId: string): void;
}

/**
 * Declares Beacon's histograms, its counters of the message and connection paths and its gauges on `tables` (the
 * process's, by default, which the metric reader must list as a producer: otel/sdk.ts), its other instruments on `meter`
 * (the global one by default), and returns the recorders.
 */
export function createMetrics(
  sources: GaugeSources,
  options: {
    version: string;
    meter?: Meter;
    /** Where the histograms, counters and gauges read at collection time live (the process's by default). */
    tables?: MetricTables;
    /** The enabled apps, whose counters of rare events are exported at 0 from start (the first SEEDED_APPS_MAX). */
    appIds?: readonly string[];
    /** The disabled apps, whose one refusal (`app_disabled`) is exported at 0 from start (the first SEEDED_APPS_MAX). */
    disabledAppIds?: readonly string[];
  } = { version: '0.0.0' },
): Metrics {
  const meter = options.meter ?? metrics.getMeter(BEACON_METER, options.version);
  const tables = options.tables ?? processTables;
  // Histograms are plain numbers read at collection time too (histogram-table.ts); `attributesOf` builds a row's label set
  // from its one or two label values, once per row.
  const histogram = (
    name: string,
    description: string,
    unit: string,
    boundaries: number[],
    attributesOf: (first: string, second: string) => Attributes = () => ({}),
  ): HistogramTable => tables.histogram({ name, description, unit, boundaries }, attributesOf);
  const counter = (name: string, description: string, unit = ''): Counter =>
    meter.createCounter(name, { description, unit });

  // Counters of the per-message and per-connection paths are plain numbers read at collection time (counter-table.ts).
  const counted = (name: string, description: string, table: CounterTable, unit = ''): CounterTable => {
    return tables.counter({ name, description, unit }, table);
  };
  const byApp = (): CounterTable => new CounterTable((appId) => ({ app_id: appId }));
  const byAppAnd = (label: string): CounterTable => new CounterTable((appId, value) => ({ app_id: appId, [label]: value }));
  const opened = counted('websocket_connections_opened_total', 'Accepted WebSocket connections', byApp());
  const closed = counted('websocket_connections_closed_total', 'Closed WebSocket connections by reason', byAppAnd('reason'));
  const rejected = counted(
    'websocket_connections_rejected_total',
    'WebSocket upgrades refused by reason',
    // `app_id` only once the key named an app: an unknown key must not become a label value.
    new CounterTable((reason, appId) => (appId === '' ? { reason } : { reason, app_id: appId })),
  );
  const duration = histogram(
    'websocket_connection_duration_seconds',
    'Lifetime of closed connections',
    's',
    SECONDS_LIFETIME,
    (appId, reason) => ({ app_id: appId, reason }),
  );
  const received = counted('websocket_messages_received_total', 'Frames received from clients by kind', byAppAnd('kind'));
  const sent = counted('websocket_messages_sent_total', 'Frames sent to clients by kind', byAppAnd('kind'));
  const receivedBytes = counted('websocket_received_bytes_total', 'Payload bytes received from clients', byApp(), 'By');
  const sentBytes = counted('websocket_sent_bytes_total', 'Payload bytes sent to clients', byApp(), 'By');
  const size = histogram('websocket_message_size_bytes', 'Frame sizes by direction', 'By', BYTES, (direction) => ({ direction }));
  const processing = histogram(
    'websocket_message_processing_duration_seconds',
    'Client frame received until its handler is done',
    's',
    SECONDS_FAST,
    (kind) => ({ kind }),
  );
  const errors = counted('websocket_message_errors_total', 'Rejected client frames by reason', byAppAnd('reason'));
  const published = counted('websocket_events_published_total', 'Events accepted for publishing by source', byAppAnd('source'));
  const broadcastDuration = histogram(
    'websocket_broadcast_duration_seconds',
    'Publish accepted until the last frame is written on this node',
    's',
    SECONDS_FAST,
    (channelType, recipients) => ({ channel_type: channelType, recipients }),
  );
  const broadcastRecipients = histogram(
    'websocket_broadcast_recipients',
    'Fan-out size per publish on this node',
    '',
    RECIPIENTS,
    (channelType) => ({ channel_type: channelType }),
  );
  // Two of its three labels share the table's second key ('public ok'): one row per (app, channel type, result).
  const subscriptionsTotal = counted(
    'websocket_subscriptions_total',
    'Subscription attempts by result',
    new CounterTable((appId, typeAndResult) => {
      const [channelType, result] = typeAndResult.split(' ');
      return { app_id: appId, channel_type: channelType ?? '', result: result ?? '' };
    }),
  );
  // A row like the frame counters': a flooding client hits its frame budget on every frame past it.
  const rateLimits = counted('websocket_rate_limit_triggered_total', 'Rate limits hit by scope', byAppAnd('scope'));
  const backpressureEvents = counted('websocket_backpressure_events_total', 'Slow consumers disconnected, and fan-out frames a closing socket could not take', byAppAnd('action'));
  const pingRtt = histogram('websocket_ping_rtt_seconds', 'Server ping to client pong', 's', SECONDS_RTT);
  const apiAuthFailures = counter('websocket_api_auth_failures_total', 'HTTP API requests refused by signing');
  const apiRefusals = counted(
    'websocket_api_refusals_total',
    'HTTP API requests refused by reason (signing, rate limit and unknown paths apart)',
    // `app_id` only once the key named an app: an unknown key must not become a label value.
    new CounterTable((reason, appId) => (appId === '' ? { reason } : { reason, app_id: appId })),
  );
  // Every reason from start, at 0: its rows exist before the first refusal.
  for (const reason of API_REFUSAL_REASONS) apiRefusals.row(reason);
  // `http.request.method` as the HTTP semantic conventions bound it: the methods of RFC 9110 and PATCH, any other
  // (Node's parser takes 33, WebDAV's among them, each a label value anyone could add) as `_OTHER`.
  const httpDuration = histogram(
    'http_server_request_duration_seconds',
    'HTTP API request duration',
    's',
    SECONDS_HTTP,
    // Keyed by (method, 'status route'): a route pattern has no space.
    (method, statusAndRoute) => {
      const space = statusAndRoute.indexOf(' ');
      return {
        [ATTR_HTTP_REQUEST_METHOD]: method,
        [ATTR_HTTP_ROUTE]: statusAndRoute.slice(space + 1),
        [ATTR_HTTP_RESPONSE_STATUS_CODE]: Number(statusAndRoute.slice(0, space)),
      };
    },
  );
  const webhooks = counter('websocket_webhooks_total', 'Webhook deliveries by result');
  const adapterMessages = counted(
    'websocket_adapter_messages_total',
    'Messages through the cluster engine',
    new CounterTable((direction) => ({ direction })),
  );
  const adapterRequests = histogram(
    'websocket_adapter_request_duration_seconds',
    'Cross-node queries',
    's',
    SECONDS_RTT,
    (op) => ({ op }),
  );
  const adapterDropped = counter('websocket_adapter_dropped_total', 'Publishes the cluster engine dropped by reason');
  // Every reason from start, at 0: "none dropped" reads as 0 on a dashboard, not as no data, and `increase` sees the first.
  const adapterDropReasons: readonly AdapterDropReason[] = ['down', 'error', 'timeout', 'backlog', 'gap'];
  const adapterDropAttributes = new Map(adapterDropReasons.map((reason) => [reason, { reason }]));
  for (const attributes of adapterDropAttributes.values()) adapterDropped.add(0, attributes);
  const malformed = counter('websocket_http_malformed_requests_total', 'HTTP requests refused before any route saw them, by reason');
  const malformedReasons: readonly MalformedRequestReason[] = [
    'bad_request',
    'header_overflow',
    'timeout',
    'bad_url',
    'param_too_long',
    'no_host',
    'bad_method',
    'expectation',
    'pipelined',
  ];
  const malformedAttributes = new Map(malformedReasons.map((reason) => [reason, { reason }]));
  // Every reason from start, at 0, as the adapter's drops above.
  for (const attributes of malformedAttributes.values()) malformed.add(0, attributes);
  const cacheEvictions = counter('websocket_cache_evictions_total', 'Cache-channel events evicted to stay within CACHE_MAX_BYTES');
  let lastShutdownSeconds: number | undefined;
  let shutdownStartedAt: number | undefined;

  const buildAttributes = { version: options.version, node_version: process.version };
  tables.gauges(
    {
      websocket_connections: { description: 'Open connections now' },
      websocket_channels: { description: 'Occupied channels on this node' },
      websocket_subscriptions: { description: 'Subscriptions on this node' },
      websocket_presence_members: { description: 'Presence members on this node' },
      websocket_send_buffer_bytes: { description: 'Bytes queued in socket send buffers', unit: 'By' },
      websocket_adapter_up: { description: '1 when the cluster engine is reachable' },
      websocket_adapter_pending_changes: { description: 'Membership changes kept because the cluster engine could not record them yet' },
      websocket_shutdown_duration_seconds: { description: 'Seconds since the graceful drain began while it runs, then its duration', unit: 's' },
      websocket_build_info: { description: 'Build information; always 1' },
    },
    (observe) => {
      for (const [appId, count] of sources.connectionsByApp()) observe('websocket_connections', count, { app_id: appId });
      for (const s of sources.channelStats()) {
        const attrs = { app_id: s.appId, channel_type: s.channelType };
        observe('websocket_channels', s.channels, attrs);
        observe('websocket_subscriptions', s.subscriptions, attrs);
      }
      for (const [appId, count] of sources.presenceMembersByApp()) observe('websocket_presence_members', count, { app_id: appId });
      observe('websocket_send_buffer_bytes', sources.sendBufferBytes());
      const adapter = sources.adapterStatus();
      const adapterAttrs = { adapter: adapter.adapter };
      observe('websocket_adapter_up', adapter.up ? 1 : 0, adapterAttrs);
      observe('websocket_adapter_pending_changes', adapter.pending, adapterAttrs);
      const shutdownSeconds =
        lastShutdownSeconds ?? (shutdownStartedAt === undefined ? undefined : (performance.now() - shutdownStartedAt) / 1000);
      if (shutdownSeconds !== undefined) observe('websocket_shutdown_duration_seconds', shutdownSeconds);
      observe('websocket_build_info', 1, buildAttributes);
    },
  );

  // The webhook sender's queues, read at scrape time: nothing is counted per event. Held-back events are a gauge of their
  // own, per app: they are not routed yet (a re-occupied channel cancels them, one may go to several webhooks), so putting
  // them under a webhook would guess, and a `state="held"` series beside the others would make a sum add events counted
  // once per app to events counted once per webhook that took them.
  tables.gauges(
    {
      websocket_webhook_pending_events: {
        description: 'Webhook events waiting per webhook: queued for a request, or in requests in flight or waiting to retry',
      },
      websocket_webhook_pending_bytes: {
        description: 'Size of the events waiting per webhook (queued and in flight), as WEBHOOK_MAX_PENDING_BYTES counts it',
        unit: 'By',
      },
      websocket_webhook_held_events: {
        description: 'channel_vacated and member_removed events held back for the vacate delay, per app, not yet routed',
      },
    },
    (observe) => {
      for (const w of sources.webhookBacklog?.() ?? []) {
        const webhook = String(w.webhook);
        observe('websocket_webhook_pending_events', w.queued, { app_id: w.appId, webhook, state: 'queued' });
        observe('websocket_webhook_pending_events', w.inFlight, { app_id: w.appId, webhook, state: 'in_flight' });
        observe('websocket_webhook_pending_bytes', w.bytes, { app_id: w.appId, webhook });
      }
      for (const [appId, count] of sources.webhookHeld?.() ?? []) observe('websocket_webhook_held_events', count, { app_id: appId });
    },
  );

  // Loki shipping runs in a worker thread that keeps its counts in shared memory: read them at scrape time.
  const logShipped = meter.createObservableCounter('loki_lines_shipped_total', { description: 'Log lines Loki accepted' });
  const logDropped = meter.createObservableCounter('loki_lines_dropped_total', {
    description: 'Log lines that never reached Loki, by reason',
  });
  const dropReasons: readonly LogDropReason[] = ['spool_full', 'rejected', 'shutdown', 'worker_failed'];
  const dropAttributes = new Map(dropReasons.map((reason) => [reason, { reason }]));
  meter.addBatchObservableCallback(
    (result) => {
      const counts = sources.logShipping?.();
      if (counts === undefined) return;
      result.observe(logShipped, counts.shipped);
      for (const reason of dropReasons) result.observe(logDropped, counts.dropped[reason], dropAttributes.get(reason));
    },
    [logShipped, logDropped],
  );

  // The logger's stdout writer counts the lines it could not write (a full disk, a reader gone): read at scrape time.
  const stdoutDropped = meter.createObservableCounter('stdout_lines_dropped_total', {
    description: 'Log lines that could not be written to stdout, by reason',
  });
  const stdoutReasons: readonly StdoutDropReason[] = ['closed', 'write_error', 'stalled'];
  const stdoutAttributes = new Map(stdoutReasons.map((reason) => [reason, { reason }]));
  stdoutDropped.addCallback((result) => {
    const counts = sources.stdoutDropped?.();
    if (counts === undefined) return;
    for (const reason of stdoutReasons) result.observe(counts[reason], stdoutAttributes.get(reason));
  });

  // Attribute sets are cached per (label values) so the hot path allocates nothing per frame.
  const cache = new Map<string, Attributes>();
  const attrs = (key: string, build: () => Attributes): Attributes => {
    let a = cache.get(key);
    if (a === undefined) {
      a = build();
      cache.set(key, a);
    }
    return a;
  };
  // Rare events' series exported at 0 from start, for the configured apps (up to SEEDED_APPS_MAX): a series that appears
  // with its first event has no sample before it, so `increase` and `rate` never count that event — a panel of
  // disconnects by reason showed no pong timeout and no drain's 4200s at all, an alert's first refusal went unseen.
  // Without `app_id`: the reasons that can come before the key named an app (`over_capacity` also while draining).
  for (const reason of REJECT_REASONS) if (reason === 'over_capacity' || !APP_REJECT_REASONS.includes(reason)) rejected.row(reason);
  for (const reason of API_AUTH_FAILURE_REASONS) apiAuthFailures.add(0, attrs(`af|${reason}`, () => ({ reason })));
  for (const appId of (options.appIds ?? []).slice(0, SEEDED_APPS_MAX)) {
    opened.row(appId);
    for (const reason of CLOSE_REASONS) closed.row(appId, reason);
    for (const reason of APP_REJECT_REASONS) rejected.row(reason, appId);
    for (const reason of MESSAGE_ERROR_REASONS) errors.row(appId, reason);
    for (const type of CHANNEL_TYPES) for (const result of SEEDED_SUBSCRIPTION_RESULTS) subscriptionsTotal.row(appId, `${type} ${result}`);
    for (const scope of RATE_LIMIT_SCOPES) rateLimits.row(appId, scope);
    for (const action of BACKPRESSURE_ACTIONS) backpressureEvents.row(appId, action);
    cacheEvictions.add(0, attrs(`ce|${appId}`, () => ({ app_id: appId })));
  }
  // A disabled app has nothing but its refusals: the first of them counted too.
  for (const appId of (options.disabledAppIds ?? []).slice(0, SEEDED_APPS_MAX)) rejected.row('app_disabled', appId);

  return {
    connectionOpened(appId) {
      opened.row(appId).value++;
    },
    connectionClosed(appId, reason, lifetimeSeconds) {
      closed.row(appId, reason).value++;
      duration.row(appId, reason).record(lifetimeSeconds);
    },
    connectionRejected(reason, appId) {
      rejected.row(reason, appId).value++;
    },
    messageReceived(appId, kind, bytes) {
      received.row(appId, kind).value++;
      receivedBytes.row(appId).value += bytes;
      size.row('in').record(bytes);
    },
    messagesSent(appId, kind, bytes, count) {
      if (count <= 0) return;
      sent.row(appId, kind).value += count;
      sentBytes.row(appId).value += bytes * count;
      // One sample per frame written: a fan-out to 300 weighs 300 frames, as in the counters.
      size.row('out').record(bytes, count);
    },
    messageProcessed(kind, seconds) {
      processing.row(kind).record(seconds);
    },
    messageError(appId, reason) {
      errors.row(appId, reason).value++;
    },
    eventPublished(appId, source) {
      published.row(appId, source).value++;
    },
    broadcast(channelType, recipients, seconds) {
      // "Accepted → last frame written": a fan-out that wrote none (its sender the only subscriber, every frame dropped)
      // has no such duration, and was recorded as a one-recipient fan-out.
      if (recipients > 0) broadcastDuration.row(channelType, recipientsBucket(recipients)).record(seconds);
      broadcastRecipients.row(channelType).record(recipients);
    },
    subscription(appId, channelType, result) {
      subscriptionsTotal.row(appId, `${channelType} ${result}`).value++;
    },
    rateLimited(appId, scope) {
      rateLimits.row(appId, scope).value++;
    },
    backpressure(appId, action, count = 1) {
      if (count <= 0) return;
      backpressureEvents.row(appId, action).value += count;
    },
    pingRtt(seconds) {
      pingRtt.row('').record(seconds);
    },
    apiAuthFailure(reason) {
      apiAuthFailures.add(1, attrs(`af|${reason}`, () => ({ reason })));
    },
    apiRefused(reason) {
      apiRefusals.row(reason).value++;
    },
    httpRequest(method, route, statusCode, seconds) {
      httpDuration.row(HTTP_METHODS.has(method) ? method : OTHER_METHOD, `${statusCode} ${route}`).record(seconds);
    },
    webhook(event, result, appId, webhook) {
      webhooks.add(1, attrs(`w|${event}|${result}|${appId}|${webhook}`, () => ({ event, result, app_id: appId, webhook: String(webhook) })));
    },
    webhookConfigured(appId, webhook, events) {
      for (const event of events) {
        webhooks.add(0, attrs(`w|${event}|failed|${appId}|${webhook}`, () => ({ event, result: 'failed', app_id: appId, webhook: String(webhook) })));
      }
    },
    adapterMessage(direction) {
      adapterMessages.row(direction).value++;
    },
    adapterRequest(op, seconds) {
      adapterRequests.row(op).record(seconds);
    },
    shutdownStarted() {
      shutdownStartedAt = performance.now();
    },
    shutdownDuration(seconds) {
      lastShutdownSeconds = seconds;
    },
    adapterDropped(reason, count = 1) {
      adapterDropped.add(count, adapterDropAttributes.get(reason));
    },
    httpMalformed(reason) {
      malformed.add(1, malformedAttributes.get(reason));
    },
    cacheEvicted(appId) {
      cacheEvictions.add(1, attrs(`ce|${appId}`, () => ({ app_id: appId })));
    },
  };
}
