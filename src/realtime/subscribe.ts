/** `pusher:subscribe` and `pusher:unsubscribe`: validation, auth, presence membership, cache replay, counts. */
import { channelKind, isValidChannelName, SERVER_TO_USER_PREFIX } from '../protocol/channel-name.js';
import { encodeChannelEvent, encodeDataless, encodeProtocol } from '../protocol/encode.js';
import { Events } from '../protocol/events.js';
import type { SubscribeMessage, UnsubscribeMessage } from '../protocol/messages.js';
import { channelAuthString, verifyAuth } from '../protocol/signatures.js';
import type { Connection, Membership } from '../transport/connection.js';
import type { MessageErrorReason, SubscriptionResult } from '../telemetry/metrics.js';
import type { RealtimeDeps } from './deps.js';
import type { Channel, LeaveResult } from './hub.js';

/** subscription_count goes out on every change for small channels, at most this often for channels over 100. */
const BIG_CHANNEL_COUNT_INTERVAL_MS = 5000;
const BIG_CHANNEL = 100;

/** Why a subscription is refused: the metric result and the `pusher:subscription_error` it is answered with. */
export type SubscriptionFailure = {
  result: Exclude<SubscriptionResult, 'ok'>;
  status: number;
  type: string;
  message: string;
  /** Also counted in websocket_message_errors_total under this reason (refusals of the inbound budget). */
  errorReason?: MessageErrorReason;
};

function failure(result: SubscriptionFailure['result'], status: number, type: string, message: string): SubscriptionFailure {
  return { result, status, type, message };
}

/** The refusal of a `pusher:subscribe` that could not even be decoded (its channel name could): 400 InvalidMessage. */
export function malformedSubscribe(message: string): SubscriptionFailure {
  return failure('invalid', 400, 'InvalidMessage', message);
}

/**
 * Refuses one subscription: counted, logged, and answered with `pusher:subscription_error` on that channel — every refused
 * subscribe ends here, because a client waiting on a channel only hears about it on that channel.
 */
export function refuseSubscription(
  { metrics, limits }: RealtimeDeps,
  connection: Connection,
  name: string,
  refusal: SubscriptionFailure,
): void {
  metrics.subscription(connection.app.id, channelKind(name).type, refusal.result);
  if (refusal.errorReason !== undefined) metrics.messageError(connection.app.id, refusal.errorReason);
  // Within the connection's rejection cap, like every other refusal: 5000 bad subscribes are 20 lines, not 5000.
  connection.logRejection(
    refusal.result === 'auth_failed' ? 'auth_failed' : 'subscription_failed',
    // An invalid name can be as long as the frame: the line carries what a valid one could hold.
    { channel: name.slice(0, limits.maxChannelNameLength), reason: refusal.result },
    refusal.message,
  );
  connection.send(
    encodeProtocol(Events.SubscriptionError, { type: refusal.type, error: refusal.message, status: refusal.status }, name),
    'protocol',
  );
}

export async function subscribe(deps: RealtimeDeps, connection: Connection, message: SubscribeMessage): Promise<void> {
  const { hub, adapter, metrics } = deps;
  const name = message.channel;
  const kind = channelKind(name);
  const outcome = admit(deps, connection, message);
  if ('result' in outcome) {
    refuseSubscription(deps, connection, name, outcome);
    return;
  }

  const already = connection.subscriptions.has(name);
  const joined = already ? undefined : hub.join(connection, name, outcome.membership);
  metrics.subscription(connection.app.id, kind.type, 'ok');
  // A subscription the app's backend signed authorizes the connection, as Pusher counts it (APP_USER_AUTHENTICATION_REQUIRED).
  if (kind.requiresAuth) connection.authorized = true;
  if (joined?.occupied) deps.webhooks.emit(connection.app, { name: 'channel_occupied', channel: name });
  if (joined?.memberAdded && outcome.membership !== null) {
    deps.webhooks.emit(connection.app, { name: 'member_added', channel: name, user_id: outcome.membership.signedUserId });
  }

  if (kind.presence) {
    const members = await adapter.members(connection.app.id, name);
    if (!connection.isOpen) return;
    const ids = [...members.keys()];
    const hash: Record<string, unknown> = {};
    for (const [id, info] of members) hash[id] = info;
    connection.send(
      encodeProtocol(Events.SubscriptionSucceeded, { presence: { ids, hash, count: ids.length } }, name),
      'presence',
    );
  } else {
    connection.send(encodeProtocol(Events.SubscriptionSucceeded, {}, name), 'protocol');
  }
  connection.logger.info({ event: 'subscribed', channel: name, channel_type: kind.type }, 'subscribed');

  if (joined?.memberAdded && outcome.membership !== null) {
    const { signedUserId, userInfo } = outcome.membership;
    deps.publisher.publishInternal(
      connection.app.id,
      name,
      Events.MemberAdded,
      JSON.stringify({ user_id: signedUserId, user_info: userInfo }),
      'presence',
      connection.socketId,
    );
  }
  if (kind.cache && !already) {
    const cached = await adapter.cacheGet(connection.app.id, name);
    if (!connection.isOpen) return;
    if (cached === undefined) {
      connection.send(encodeDataless(Events.CacheMiss, name), 'protocol');
      deps.webhooks.emit(connection.app, { name: 'cache_miss', channel: name });
    } else {
      connection.send(encodeChannelEvent(cached.event, name, cached.data), 'channel_event');
    }
  }
  if (joined !== undefined && !kind.presence) sendSubscriptionCount(deps, connection.app.id, joined.channel);
}

/** Validates and authorizes a subscription; returns the presence membership (or null) or why it is refused. */
function admit(
  { hub, limits }: RealtimeDeps,
  connection: Connection,
  message: SubscribeMessage,
): { membership: Membership | null } | SubscriptionFailure {
  const name = message.channel;
  if (!isValidChannelName(name, limits.maxChannelNameLength)) {
    return failure('invalid', 400, 'InvalidChannel', `Invalid channel name (at most ${limits.maxChannelNameLength} of [A-Za-z0-9_-=@,.;])`);
  }
  // Before any signature is checked: a connection at its cap costs nothing more per subscribe.
  const cap = limits.maxSubscriptionsPerConnection;
  if (connection.subscriptions.size >= cap && !connection.subscriptions.has(name)) {
    return {
      ...failure('limit', 403, 'LimitReached', `Subscription limit reached (${cap} channels per connection)`),
      errorReason: 'too_many_subscriptions',
    };
  }
  if (name.startsWith(SERVER_TO_USER_PREFIX)) {
    const ok = connection.userId !== undefined && name === SERVER_TO_USER_PREFIX + connection.userId;
    return ok ? { membership: null } : failure('auth_failed', 401, 'AuthError', 'Sign in as this user first');
  }
  const kind = channelKind(name);
  if (!kind.requiresAuth) return { membership: null };

  const app = connection.app;
  const signed = channelAuthString(connection.socketId, name, kind.presence ? message.channelData : undefined);
  if (!verifyAuth(message.auth, app.key, app.secret, signed)) {
    return failure('auth_failed', 401, 'AuthError', `Invalid signature for ${name}`);
  }
  if (!kind.presence) return { membership: null };

  const channelData = message.channelData ?? '';
  if (Buffer.byteLength(channelData) > limits.maxPresenceMemberBytes) {
    return failure('limit', 413, 'LimitReached', `Presence channel_data over ${limits.maxPresenceMemberBytes} bytes`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(channelData);
  } catch {
    return failure('invalid', 400, 'InvalidChannelData', 'channel_data is not JSON');
  }
  const record = typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : {};
  const rawId = record.user_id;
  if ((typeof rawId !== 'string' && typeof rawId !== 'number') || String(rawId).length === 0) {
    return failure('invalid', 400, 'InvalidChannelData', 'channel_data needs a user_id');
  }
  const userId = String(rawId);
  if (userId.length > limits.maxPresenceUserIdLength) {
    return failure('invalid', 400, 'InvalidChannelData', `user_id longer than ${limits.maxPresenceUserIdLength}`);
  }
  const channel = hub.channel(app.id, name);
  if (channel !== undefined && channel.members.size >= limits.maxPresenceMembers && !channel.members.has(userId)) {
    return failure('limit', 403, 'LimitReached', `Presence channel is full (${limits.maxPresenceMembers} members)`);
  }
  return { membership: { userId, signedUserId: rawId, userInfo: record.user_info ?? null } };
}

export function unsubscribe(deps: RealtimeDeps, connection: Connection, message: UnsubscribeMessage): void {
  const left = deps.hub.leave(connection, message.channel);
  if (left === undefined) return;
  connection.logger.info({ event: 'unsubscribed', channel: message.channel }, 'unsubscribed');
  afterLeave(deps, connection.app.id, left);
}

/** Presence and count events after a connection left a channel (unsubscribe or close). */
export function afterLeave(deps: RealtimeDeps, appId: string, left: LeaveResult): void {
  const app = left.memberRemoved !== undefined || left.vacated ? deps.hub.state(appId)?.app : undefined;
  if (app !== undefined && left.memberRemoved !== undefined) {
    deps.webhooks.emit(app, { name: 'member_removed', channel: left.channel.name, user_id: left.memberRemoved.signedUserId });
  }
  if (app !== undefined && left.vacated) deps.webhooks.emit(app, { name: 'channel_vacated', channel: left.channel.name });
  if (left.memberRemoved !== undefined) {
    deps.publisher.publishInternal(
      appId,
      left.channel.name,
      Events.MemberRemoved,
      JSON.stringify({ user_id: left.memberRemoved.signedUserId }),
      'presence',
    );
  }
  if (!left.vacated && !left.channel.kind.presence) sendSubscriptionCount(deps, appId, left.channel);
}

function sendSubscriptionCount(deps: RealtimeDeps, appId: string, channel: Channel): void {
  const count = channel.subscribers.size;
  const now = Date.now();
  if (count > BIG_CHANNEL && now - channel.lastCountSentAt < BIG_CHANNEL_COUNT_INTERVAL_MS) return;
  channel.lastCountSentAt = now;
  deps.publisher.publishInternal(
    appId,
    channel.name,
    Events.SubscriptionCount,
    JSON.stringify({ subscription_count: count }),
    'protocol',
  );
}
