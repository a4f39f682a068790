/**
 * The log-event catalog of docs/telemetry.md as a type: every line Beacon writes names exactly one of these in its `event`
 * field, and is written through `logEvent` (or an intent method built on it, such as `Connection.reject`), so a name
 * outside the catalog does not compile. test/telemetry/log-events.test.ts keeps this list and the doc's table the same.
 */
import type { LogFn, Logger } from 'pino';

/** Every event of the catalog, in the doc's order. */
export const LOG_EVENTS = [
  'server_started',
  'config_warning',
  'connection_opened',
  'connection_closed',
  'connection_rejected',
  'connections_dropped',
  'subscribed',
  'unsubscribed',
  'subscriptions_unlogged',
  'subscription_failed',
  'auth_failed',
  'signin',
  'message_received',
  'message_rejected',
  'handler_failed',
  'rate_limited',
  'slow_consumer',
  'api_request',
  'request_malformed',
  'webhook_failed',
  'webhook_held_full',
  'process_crashed',
  'adapter_up',
  'adapter_eviction_policy',
  'adapter_info_denied',
  'adapter_down',
  'adapter_still_down',
  'adapter_changes_pending',
  'adapter_changes_recorded',
  'adapter_request_failed',
  'adapter_congested',
  'adapter_congestion_ended',
  'adapter_shard_down',
  'adapter_shard_up',
  'adapter_stalled',
  'adapter_stall_ended',
  'adapter_sentinel_watch_failed',
  'adapter_sentinel_watch_resumed',
  'node_reaped',
  'reap_stopped',
  'reap_incomplete',
  'node_expired',
  'node_heartbeat_failed',
  'node_heartbeat_resumed',
  'node_share_recorded',
  'node_share_pruned',
  'presence_resynced',
  'shutdown_started',
  'shutdown_completed',
  'shutdown_timed_out',
  'loki_push_failed',
  'loki_shipping_failed',
  'loki_shipping_stopped',
] as const;

/** One event name of the catalog. */
export type LogEvent = (typeof LOG_EVENTS)[number];

/** The levels Beacon writes its catalog events at (`fatal` and `trace` are left to pino and fastify). */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'fatal';

/**
 * The fields of one line: its catalog event first, then the event's own fields. The caller builds the object once and it
 * is handed to pino as is, so the wire format is exactly the literal the call site writes (no copy, no reordering).
 */
export type LogLine = { readonly event: LogEvent } & Readonly<Record<string, unknown>>;

/** Writes one catalog event at `level` with `msg` (a logger narrowed to the levels it is used at will do). */
export function logEvent<L extends LogLevel>(logger: Pick<Logger, L>, level: L, line: LogLine, msg: string): void {
  const write: LogFn = logger[level];
  write.call(logger, line, msg);
}
