/** `pusher:subscribe` and `pusher:unsubscribe`: validation, auth, presence membership, cache replay, counts. */
import { context, type Context } from '@opentelemetry/api';
import { EngineUnavailableError } from '../adapters/adapter.js';
import {
  channelKind,
  type ChannelKind,
  hasAtMostCharacters,
  isValidChannelName,
  isWellFormed,
  exactUserId,
  SERVER_TO_USER_PREFIX,
} from '../protocol/channel-name.js';
import { encodeProtocol, encodeSubscriptionSucceeded } from '../protocol/encode.js';
import { Errors, type SubscriptionError, type SubscriptionErrorType } from '../protocol/errors.js';
import { Events } from '../protocol/events.js';
import type { SubscribeMessage, UnsubscribeMessage } from '../protocol/messages.js';
import { channelAuthString, verifyAuth } from '../protocol/signatures.js';
import type { Connection, Membership } from '../transport/connection.js';
import type { MessageErrorReason, SubscriptionResult } from '../telemetry/metrics.js';
import type { RealtimeDeps } from './deps.js';
import type { JoinResultKind, LeaveResult } from './hub.js';
import { afterHubLeave, joinCluster, memberListFrame } from './membership.js';

/** Why a subscription is refused: the metric result and the `pusher:subscription_error` it is answered with. */
export type SubscriptionFailure = {
  result: Exclude<SubscriptionResult, 'ok'>;
  status: number;
  type: SubscriptionErrorType;
  message: string;
  /** Also counted in websocket_message_errors_total under this reason (refusals of the inbound budget). */
  errorReason?: MessageErrorReason;
};

/** A refusal answered with the registry's `error`, its message filled with `args`. */
function failure(
  result: SubscriptionFailure['result'],
  error: SubscriptionError,
  ...args: ReadonlyArray<string | number>
): SubscriptionFailure {
  return { result, status: error.status, type: error.type, message: error.format(...args) };
}

/** The refusal of a `pusher:subscribe` that could not even be decoded (its channel name could): 400 InvalidMessage. */
export function malformedSubscribe(error: SubscriptionError): SubscriptionFailure {
  return failure('invalid', error);
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
  // The frame's `process` span (router.ts) is active only until the first await (otel/sync-context-manager.ts): each step
  // after one runs in it again, explicitly, so its log lines keep the trace id.
  const traced = context.active();
  const { hub } = deps;
  const name = message.channel;
  const kind = channelKind(name);
  const pending = hub.pendingJoin(connection, name);
  // A subscribe as another member than a cancelled join under way, waiting for it to end (below), and not unsubscribed
  // since: the channel the connection is joining.
  const switching = pending?.cancelled === true && pending.switchTurn === pending.turn;
  // A channel the connection holds, or is joining (not cancelled), was authorized by its first subscribe: a repeat is
  // answered as one whatever its signature. pusher-js repeats a subscribe with an auth its backend signed for the socket
  // before a reconnect, answered after it; checked, it was refused 401 (an `.error()` in Echo, a failure counted) while
  // the channel went on delivering. A subscribe after an unsubscribe is a new one, and checked.
  const repeat = connection.subscriptions.has(name) || pending?.cancelled === false || switching;
  const outcome = repeat ? { membership: null } : admit(deps, connection, message);
  if ('result' in outcome) {
    refuseSubscription(deps, connection, name, outcome);
    return;
  }

  if (pending !== undefined) {
    if (switching) {
      // A repeat of the subscribe waiting to switch members: answered after it, as a repeat of the join it begins — unless
      // an unsubscribe came after it (the later frame decides), or that subscribe was refused.
      const turn = pending.turn;
      await new Promise<JoinResultKind>((resolve) => (pending.waiters ??= []).push(resolve));
      if (pending.turn !== turn || !connection.isOpen) return;
      if (!connection.subscriptions.has(name) && hub.pendingJoin(connection, name)?.cancelled !== false) return;
      return context.with(traced, () => subscribe(deps, connection, message));
    }
    if (pending.cancelled && !sameMember(pending.membership, outcome.membership)) {
      // A subscribe after an unsubscribe as another presence member than the join under way records (the client switched
      // users): that join ends cancelled and is taken back out, then this one joins as new (the Redis engine records it
      // only after that leave) — unless a later unsubscribe, or a subscribe after one, came meanwhile: the later frame
      // decides. Taken up again, the join kept the first member, and the client was answered with that one's list. It
      // holds the channel's place under the subscription cap while it waits, as a join under way does (Hub.beginSwitch).
      const turn = hub.beginSwitch(connection, pending);
      await new Promise<JoinResultKind>((resolve) => (pending.waiters ??= []).push(resolve));
      if (pending.turn !== turn || !connection.isOpen) return;
      hub.releaseSwitchPlace(connection, pending);
      return context.with(traced, () => subscribe(deps, connection, message));
    }
    // Its join is under way: a subscribe after an unsubscribe takes a cancelled one up again (as the same member: above).
    // This one is answered once the join has its answer, as a repeat.
    hub.resumeJoin(connection, pending);
    const result = await new Promise<JoinResultKind>((resolve) => (pending.waiters ??= []).push(resolve));
    if (result === 'joined') {
      if (connection.subscriptions.has(name)) await answerRepeat(deps, connection, name, kind, traced);
    } else if (result !== 'gone' && connection.isOpen) {
      context.with(traced, () => refuseSubscription(deps, connection, name, joinRefusal(deps, result)));
    }
    return;
  }
  if (connection.subscriptions.has(name)) {
    await answerRepeat(deps, connection, name, kind, traced);
    return;
  }

  const joining = hub.beginJoin(connection, name, outcome.membership);
  let joined: JoinResultKind = 'gone';
  try {
    joined = await joinCluster(deps, connection, name, outcome.membership);
    if (joined === 'full' || joined === 'unavailable') {
      const refused = joinRefusal(deps, joined);
      context.with(traced, () => refuseSubscription(deps, connection, name, refused));
      return;
    }
    if (joined === 'gone') return;
    // Counted and logged once, however often the client repeats it.
    context.with(traced, () => connection.subscribed(name, kind));
  } finally {
    // Repeats waiting for this join are answered after it.
    for (const waiter of joining.waiters ?? []) waiter(joined);
  }
}

/** Whether two subscribes record the same presence member (both null: no member, any other channel). */
function sameMember(a: Membership | null, b: Membership | null): boolean {
  if (a === null || b === null) return a === b;
  return a.signedUserId === b.signedUserId && JSON.stringify(a.userInfo) === JSON.stringify(b.userInfo);
}

/** The refusal of a join the cluster did not record: the presence channel is full, or the engine could not answer. */
function joinRefusal(deps: RealtimeDeps, result: 'full' | 'unavailable'): SubscriptionFailure {
  return result === 'full'
    ? failure('limit', Errors.SUBSCRIBE_PRESENCE_FULL, deps.limits.maxPresenceMembers)
    : failure('unavailable', Errors.SUBSCRIBE_UNAVAILABLE);
}

/**
 * Answers a subscribe of a channel the connection holds again, as Pusher does: presence with the members as they are now
 * (refused 503 when the engine cannot say, as a join would be: an empty list would tell the client everyone left), the
 * list's size charged to the connection's frame budget past the channel's first repeat (`answerCharged`). It is no new
 * subscription: a client repeating it must not count or log one each time.
 */
async function answerRepeat(
  deps: RealtimeDeps,
  connection: Connection,
  name: string,
  kind: ChannelKind,
  traced: Context,
): Promise<void> {
  if (kind.presence) {
    // Past a channel's first repeat, a list costs its size in the frame budget: once it is spent, a repeat is refused
    // before the list is read — or, for the frames of a burst, all admitted before the first list is made, before it is
    // encoded.
    const charged = !connection.firstRepeat(name);
    if (charged && !connection.admitsChargedAnswer(performance.now())) return;
    const held = connection.subscriptions.get(name);
    const snapshot = await currentMembers(deps, connection, name).catch((err: unknown) => {
      if (err instanceof EngineUnavailableError) return undefined;
      throw err;
    });
    // Left since (an unsubscribe, maybe a subscribe as another member after it): the answer is the later frames' to give.
    // Sent, it came after the client's next subscribe, with a list without that subscribe's member (a review).
    if (!connection.isOpen || connection.subscriptions.get(name) !== held) return;
    if (snapshot === undefined) {
      context.with(traced, () => refuseSubscription(deps, connection, name, failure('unavailable', Errors.SUBSCRIBE_UNAVAILABLE)));
      return;
    }
    if (charged && !connection.admitsChargedAnswer(performance.now())) return;
    const channel = deps.hub.channel(connection.app.id, name);
    if (snapshot.seq !== undefined && channel !== undefined) {
      // The member events on their way that the list already has are not sent to this connection after it (as after a join).
      channel.snapshotSeq.set(connection, Math.max(snapshot.seq, channel.snapshotSeq.get(connection) ?? 0));
      if (snapshot.seq > channel.seenSeq) channel.seenSeq = snapshot.seq;
    }
    const list = memberListFrame(name, snapshot.members);
    if (charged) connection.answerCharged(list.length, performance.now());
    context.with(traced, () => connection.send(list, 'presence'));
  } else {
    connection.send(encodeSubscriptionSucceeded(name), 'protocol');
  }
  context.with(traced, () => connection.resubscribed(kind));
}

/** Reads of a repeat's member list older than a member event already sent before one is sent as it is (Redis lost its data). */
const STALE_READS = 3;

/**
 * The presence members for a repeat's answer, with the `seq` of their last change where the engine numbers them (Redis).
 * There the list's reply and the member events come over two connections, in either order: a list older than an event
 * this node already sent (`seenSeq`) would take that change back — a member who joined missing, one who left still shown —
 * so it is read again; a list at `seq` is followed by only the events past it (`snapshotSeq`), so none is announced twice.
 */
async function currentMembers(
  { adapter, hub }: RealtimeDeps,
  connection: Connection,
  name: string,
): Promise<{ members: Map<string, unknown>; seq?: number }> {
  const appId = connection.app.id;
  if (adapter.membersChangedSince !== undefined) {
    for (let attempt = 1; ; attempt++) {
      // Since -1: whatever the channel's `seq`, the list.
      const answer = await adapter.membersChangedSince(appId, name, -1);
      // This node's subscriptions are being recorded again (Redis lost them): read as before, the resync follows.
      if (answer === 'unrecorded' || answer === 'unchanged') break;
      if (answer.seq >= (hub.channel(appId, name)?.seenSeq ?? 0) || attempt === STALE_READS) return answer;
    }
  }
  return { members: await adapter.members(appId, name) };
}

/** Validates and authorizes a subscription; returns the presence membership (or null) or why it is refused. */
function admit(
  { hub, limits }: RealtimeDeps,
  connection: Connection,
  message: SubscribeMessage,
): { membership: Membership | null } | SubscriptionFailure {
  const name = message.channel;
  if (!isValidChannelName(name, limits)) {
    return name.startsWith(SERVER_TO_USER_PREFIX)
      ? failure('invalid', Errors.SUBSCRIBE_INVALID_USER_CHANNEL, limits.maxPresenceUserIdLength)
      : failure('invalid', Errors.SUBSCRIBE_INVALID_CHANNEL, limits.maxChannelNameLength);
  }
  // Before any signature is checked: a connection at its cap costs nothing more per subscribe.
  // Subscriptions still being recorded cluster-wide count too: a burst of subscribes cannot outrun the cap.
  const cap = limits.maxSubscriptionsPerConnection;
  const held = connection.subscriptions.size + hub.joiningCount(connection);
  if (held >= cap && !connection.subscriptions.has(name) && hub.pendingJoin(connection, name)?.cancelled !== false) {
    return {
      ...failure('limit', Errors.SUBSCRIBE_TOO_MANY, cap),
      errorReason: 'too_many_subscriptions',
    };
  }
  if (name.startsWith(SERVER_TO_USER_PREFIX)) {
    const ok = connection.userId !== undefined && name === SERVER_TO_USER_PREFIX + connection.userId;
    return ok ? { membership: null } : failure('auth_failed', Errors.SUBSCRIBE_NOT_SIGNED_IN);
  }
  const kind = channelKind(name);
  if (!kind.requiresAuth) return { membership: null };

  const app = connection.app;
  const signed = channelAuthString(connection.socketId, name, kind.presence ? message.channelData : undefined);
  if (!verifyAuth(message.auth, app.key, app.secret, signed)) {
    return failure('auth_failed', Errors.SUBSCRIBE_BAD_SIGNATURE, name);
  }
  if (!kind.presence) return { membership: null };

  const channelData = message.channelData;
  // Signed without it (a backend that signs presence as private): the signature held, but there is no member to join.
  if (channelData === undefined) return failure('invalid', Errors.SUBSCRIBE_NO_CHANNEL_DATA);
  if (Buffer.byteLength(channelData) > limits.maxPresenceMemberBytes) {
    return failure('limit', Errors.SUBSCRIBE_MEMBER_TOO_LARGE, limits.maxPresenceMemberBytes);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(channelData);
  } catch {
    return failure('invalid', Errors.SUBSCRIBE_CHANNEL_DATA_NOT_JSON);
  }
  const record = typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : {};
  const signedId = exactUserId(record.user_id, 'user_id', channelData);
  // A lone surrogate has no UTF-8 form of its own: two such ids would be one member in Redis (channel-name.ts).
  if (signedId === undefined || signedId.id.length === 0 || !isWellFormed(signedId.id)) {
    return failure('invalid', Errors.SUBSCRIBE_NO_USER_ID);
  }
  const userId = signedId.id;
  if (!hasAtMostCharacters(userId, limits.maxPresenceUserIdLength)) {
    return failure('invalid', Errors.SUBSCRIBE_USER_ID_TOO_LONG, limits.maxPresenceUserIdLength);
  }
  // MAX_PRESENCE_MEMBERS is enforced cluster-wide by the adapter's join (membership.ts).
  return { membership: { userId, signedUserId: signedId.echoed, userInfo: record.user_info ?? null } };
}

export function unsubscribe(deps: RealtimeDeps, connection: Connection, message: UnsubscribeMessage): void {
  const pending = deps.hub.pendingJoin(connection, message.channel);
  if (pending !== undefined) {
    // Taken back out once the cluster answers, unless subscribed again before that.
    deps.hub.cancelJoin(connection, pending);
    return;
  }
  const left = deps.hub.leave(connection, message.channel);
  if (left === undefined) return;
  connection.unsubscribed(message.channel, channelKind(message.channel));
  afterLeave(deps, connection.app.id, left);
}

/** Presence, count and webhook events after a connection left a channel (unsubscribe or close): decided cluster-wide. */
export function afterLeave(deps: RealtimeDeps, appId: string, left: LeaveResult): void {
  afterHubLeave(deps, appId, left);
}
