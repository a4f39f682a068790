/**
 * `client-*` events: only on private and presence channels the sender is subscribed to, only when the app allows them,
 * never echoed to the sender, at most `clientEventsPerSecond` per connection (excess: `pusher:error` 4301, dropped). Each
 * refusal answers `pusher:error` with its own code (4301, 4310–4314) and the channel. The rate limit is checked first, and
 * the data goes out as the client wrote it (`data`: the raw JSON text of the frame's `data` member, or its string): a
 * client event costs work proportional to its size and nothing more.
 */
import type { Context } from '@opentelemetry/api';
import { clipped } from '../protocol/clip.js';
import { channelKind, hasAtMostCharacters } from '../protocol/channel-name.js';
import { Errors, type FrameError } from '../protocol/errors.js';
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
      Errors.CLIENT_EVENTS_DISABLED,
      Errors.CLIENT_EVENTS_DISABLED.message,
    );
    return;
  }
  if (!connection.admitClientEvent(performance.now())) {
    refuseClientEvent(
      deps,
      connection,
      message,
      'rate_limited',
      Errors.CLIENT_EVENT_RATE_LIMITED,
      Errors.CLIENT_EVENT_RATE_LIMITED.format(app.clientEventsPerSecond),
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
      Errors.CLIENT_EVENT_CHANNEL_NOT_ALLOWED,
      Errors.CLIENT_EVENT_CHANNEL_NOT_ALLOWED.message,
    );
    return;
  }
  if (!connection.subscriptions.has(message.channel)) {
    refuseClientEvent(
      deps,
      connection,
      message,
      'not_subscribed',
      Errors.CLIENT_EVENT_NOT_SUBSCRIBED,
      Errors.CLIENT_EVENT_NOT_SUBSCRIBED.format(clipped(message.channel, 200)),
    );
    return;
  }
  if (!hasAtMostCharacters(message.name, deps.limits.maxEventNameLength)) {
    refuseClientEvent(
      deps,
      connection,
      message,
      'invalid_message',
      Errors.CLIENT_EVENT_NAME_TOO_LONG,
      Errors.CLIENT_EVENT_NAME_TOO_LONG.format(deps.limits.maxEventNameLength),
    );
    return;
  }
  if (Buffer.byteLength(data) > deps.limits.maxPayloadBytes) {
    refuseClientEvent(
      deps,
      connection,
      message,
      'too_large',
      Errors.CLIENT_EVENT_TOO_LARGE,
      Errors.CLIENT_EVENT_TOO_LARGE.format(deps.limits.maxPayloadBytes),
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
  error: FrameError,
  text: string,
  rateLimit?: RateLimitScope,
): void {
  const channel = message.channel.slice(0, deps.limits.maxChannelNameLength);
  connection.reject({ reason, message: text, code: error.code, channel, rateLimit });
}

