/**
 * `client-*` events: only on private and presence channels the sender is subscribed to, only when the app allows them,
 * never echoed to the sender, at most `clientEventsPerSecond` per connection (excess: `pusher:error` 4301, dropped).
 * The rate limit is checked first, and the data goes out as the client wrote it (`data`: the raw JSON text of the frame's
 * `data` member, or its string): a client event costs work proportional to its size and nothing more.
 */
import type { Context } from '@opentelemetry/api';
import { channelKind } from '../protocol/channel-name.js';
import { ErrorCode } from '../protocol/close-codes.js';
import type { ClientEventMessage } from '../protocol/messages.js';
import type { Connection } from '../transport/connection.js';
import type { RealtimeDeps } from './deps.js';

export function clientEvent(
  deps: RealtimeDeps,
  connection: Connection,
  message: ClientEventMessage,
  data: string,
  parent: Context | undefined,
): void {
  const app = connection.app;
  if (!app.enableClientEvents) {
    connection.reject('client_events_disabled', 'Client events are not enabled for this app');
    return;
  }
  if (!connection.clientEvents.allow(Date.now())) {
    deps.metrics.rateLimited(app.id, 'client_events');
    connection.reject('rate_limited', `Client event rate limit (${app.clientEventsPerSecond}/s) exceeded`, ErrorCode.ClientEventRateLimited);
    return;
  }
  const kind = channelKind(message.channel);
  if (!kind.allowsClientEvents) {
    connection.reject('unauthorized', 'Client events are only allowed on private and presence channels');
    return;
  }
  if (!connection.subscriptions.has(message.channel)) {
    connection.reject('not_subscribed', `Not subscribed to ${message.channel.slice(0, 200)}`);
    return;
  }
  if (message.name.length > deps.limits.maxEventNameLength) {
    connection.reject('invalid_message', `Event name longer than ${deps.limits.maxEventNameLength}`);
    return;
  }
  if (Buffer.byteLength(data) > deps.limits.maxPayloadBytes) {
    connection.reject('too_large', `Event data over ${deps.limits.maxPayloadBytes} bytes`);
    return;
  }
  const membership = connection.subscriptions.get(message.channel) ?? null;
  const userId = kind.presence && membership !== null ? membership.userId : undefined;
  deps.publisher.publish({
    appId: app.id,
    channel: message.channel,
    event: message.name,
    data,
    excludeSocketId: connection.socketId,
    userId,
    source: 'client_event',
    parent,
  });
  deps.webhooks.emit(app, {
    name: 'client_event',
    channel: message.channel,
    event: message.name,
    data,
    socket_id: connection.socketId,
    user_id: userId,
  });
}
