/**
 * `client-*` events: only on private and presence channels the sender is subscribed to, only when the app allows them,
 * never echoed to the sender, at most `clientEventsPerSecond` per connection (excess: `pusher:error` 4301, dropped). Each
 * refusal answers `pusher:error` with its own code (4301, 4310–4314) and the channel. The rate limit is checked first, and
 * the data goes out as the client wrote it (`data`: the raw JSON text of the frame's `data` member, or its string): a
 * client event costs work proportional to its size and nothing more.
 */
import type { Context } from '@opentelemetry/api';
import { channelKind } from '../protocol/channel-name.js';
import { ErrorCode, type ErrorCodeValue } from '../protocol/close-codes.js';
import type { ClientEventMessage } from '../protocol/messages.js';
import type { MessageErrorReason, RateLimitScope } from '../telemetry/metrics.js';
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
    refuseClientEvent(
      deps,
      connection,
      message,
      'client_events_disabled',
      ErrorCode.ClientEventsDisabled,
      'Client events are not enabled for this app',
    );
    return;
  }
  if (!connection.admitClientEvent(Date.now())) {
    refuseClientEvent(
      deps,
      connection,
      message,
      'rate_limited',
      ErrorCode.ClientEventRateLimited,
      `Client event rate limit (${app.clientEventsPerSecond}/s) exceeded`,
      'client_events',
    );
    return;
  }
  const kind = channelKind(message.channel);
  if (!kind.allowsClientEvents) {
    refuseClientEvent(
      deps,
      connection,
      message,
      'unauthorized',
      ErrorCode.ClientEventChannelNotAllowed,
      'Client events are only allowed on private and presence channels',
    );
    return;
  }
  if (!connection.subscriptions.has(message.channel)) {
    refuseClientEvent(
      deps,
      connection,
      message,
      'not_subscribed',
      ErrorCode.ClientEventNotSubscribed,
      `Not subscribed to ${message.channel.slice(0, 200)}`,
    );
    return;
  }
  if (message.name.length > deps.limits.maxEventNameLength) {
    refuseClientEvent(
      deps,
      connection,
      message,
      'invalid_message',
      ErrorCode.ClientEventNameTooLong,
      `Event name longer than ${deps.limits.maxEventNameLength}`,
    );
    return;
  }
  if (Buffer.byteLength(data) > deps.limits.maxPayloadBytes) {
    refuseClientEvent(
      deps,
      connection,
      message,
      'too_large',
      ErrorCode.ClientEventTooLarge,
      `Event data over ${deps.limits.maxPayloadBytes} bytes`,
    );
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

/** Every refusal names the channel (bounded: the name is the client's) and has its own code (docs/protocol-compatibility.md). */
function refuseClientEvent(
  deps: RealtimeDeps,
  connection: Connection,
  message: ClientEventMessage,
  reason: MessageErrorReason,
  code: ErrorCodeValue,
  text: string,
  rateLimit?: RateLimitScope,
): void {
  const channel = message.channel.slice(0, deps.limits.maxChannelNameLength);
  connection.reject({ reason, message: text, code, channel, rateLimit });
}

