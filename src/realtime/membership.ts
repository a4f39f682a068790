/**
 * A subscription's life in the cluster: recorded through the adapter (which decides cluster-wide whether it occupied the
 * channel or added a presence member, and publishes the member and count events itself), then added to this node's hub
 * and answered with `subscription_succeeded`; on leave, removed from the hub at once and from the cluster after.
 * The webhooks of a change are emitted by the node whose `join` / `leave` made it, so each goes out once per cluster; so is
 * the `subscription_count` of the count the change published (the outcome's `count`).
 */
import { context } from '@opentelemetry/api';
import type { CachedEvent, JoinOutcome, LeaveOutcome, TakeBackOutcome } from '../adapters/adapter.js';
import type { Envelope } from '../adapters/envelope.js';
import { channelKind } from '../protocol/channel-name.js';
import { encodeChannelEvent, encodeDataless, encodeProtocol, encodeSubscriptionSucceeded } from '../protocol/encode.js';
import { Events } from '../protocol/events.js';
import type { AppConfig } from '../config.js';
import type { Connection, Membership } from '../transport/connection.js';
import type { RealtimeDeps } from './deps.js';
import type { JoinResultKind, LeaveResult } from './hub.js';
import { jitteredBackoffMs } from '../limits/backoff.js';
import { flushHeld } from './member-delivery.js';

/**
 * Records the subscription cluster-wide, then joins the hub and sends `subscription_succeeded` (with the cluster's
 * member list for presence) followed by whatever was published meanwhile. The caller began the join (`Hub.beginJoin`)
 * and answers a refusal; a join cancelled meanwhile (`PendingJoin.cancelled`: unsubscribed) ends `gone`, unanswered, and
 * is taken back out of the cluster if it was recorded.
 */
export async function joinCluster(
  deps: RealtimeDeps,
  connection: Connection,
  name: string,
  membership: Membership | null,
): Promise<JoinResultKind> {
  // The subscribe frame's span is active only until the await: what follows runs in it again (subscribe.ts says why).
  const traced = context.active();
  const { hub, adapter } = deps;
  let outcome: JoinOutcome;
  const started = performance.now();
  for (let attempt = 1; ; attempt++) {
    try {
      outcome = await adapter.join(connection.app.id, name, connection.socketId, membership, deps.limits.maxPresenceMembers);
      break;
    } catch {
      // The engine could not record it (down, a shard failing over, no answer in time): tried again for a while. An
      // attempt that timed out may have run late: the next one answers what it changed, or giving up takes it back.
      const retry = await retryJoin(deps, connection, name, started, attempt);
      if (retry === 'again') continue;
      const app = connection.app;
      void adapter.abandonJoin?.(app.id, name, connection.socketId, membership).then((told) => abandoned(deps, app, name, membership, told));
      return hub.endJoin(connection, name)?.cancelled === true || retry === 'gone' ? 'gone' : 'unavailable';
    }
  }
  // A cache channel's last event is read while the channel's events are still held, in order with them (`cacheReplay`).
  const cached = outcome.admitted && channelKind(name).cache ? await adapter.cacheReplay(connection.app.id, name) : undefined;
  return context.with(traced, () => joined(deps, connection, name, membership, outcome, cached));
}

/** The first retry of a join the engine could not record waits about this long, each next one twice as long… */
const JOIN_RETRY_BASE_MS = 250;
/** …up to this. A shard's failover takes seconds; a retry costs the engine one failed command. */
const JOIN_RETRY_MAX_MS = 2000;
/**
 * Joins one node keeps waiting to be tried again; past it a failed join is refused at once, as before retries. A
 * reconnect storm while Redis is down resubscribes every client's channels: each waiting join holds a timer and its
 * closure, and each retry is a command (or a refusal) per 2 s — bounded, not one per subscription the storm brings.
 */
export const JOIN_RETRIES_WAITING_MAX = 10_000;

/**
 * Whether to try a join again after its `attempt`-th failure: after a back-off, as long as the connection is open, the
 * client has not unsubscribed meanwhile, and `SUBSCRIBE_RETRY_MS` since the first attempt is not over (the last try is
 * at its end). A join that timed out may have run late: the next attempt is answered what it changed (so its webhooks
 * go out once, and the channel's members see it added once), and one given up is taken back by the engine
 * (`abandonJoin`). pusher-js never subscribes again after a refusal, so refusing during a failover of a few seconds left
 * the client off the channel for good.
 */
async function retryJoin(
  { hub, limits }: RealtimeDeps,
  connection: Connection,
  name: string,
  started: number,
  attempt: number,
): Promise<'again' | 'refuse' | 'gone'> {
  const gone = (): boolean => !connection.isOpen || hub.pendingJoin(connection, name)?.cancelled !== false;
  // The channel's events held for the join so far came before anything was recorded: the client is owed none of them
  // (the join that records it answers with the state after them). Kept, they piled up over the whole window — 1 164
  // events in 2.5 s on a busy channel in the review — and went out at once after the answer, a slow consumer's burst.
  const dropHeld = (): void => {
    const held = hub.pendingJoin(connection, name)?.held;
    if (held !== undefined) held.length = 0;
  };
  if (gone()) return 'gone';
  // The last wait ends at the window's end, for one more try there: refused only once the window is over (a probe saw
  // refusals up to 2 s early when a wait that would end past it was not begun).
  const left = limits.subscribeRetryMs - (performance.now() - started);
  if (left <= 0 || hub.joinsWaitingRetry >= JOIN_RETRIES_WAITING_MAX) return 'refuse';
  const wait = Math.min(jitteredBackoffMs(attempt, JOIN_RETRY_BASE_MS, JOIN_RETRY_MAX_MS), left);
  dropHeld();
  await hub.waitForRetry(connection, hub.pendingJoin(connection, name), wait);
  if (gone()) return 'gone';
  dropHeld();
  return 'again';
}

/** After the cluster recorded the join: its webhooks, then the hub and the answer (or the leave, if the client went). */
function joined(
  deps: RealtimeDeps,
  connection: Connection,
  name: string,
  membership: Membership | null,
  outcome: JoinOutcome,
  cached: CachedEvent | undefined,
): JoinResultKind {
  const { hub } = deps;
  const app = connection.app;
  const pending = hub.endJoin(connection, name);
  if (!outcome.admitted) return pending?.cancelled === true ? 'gone' : 'full';
  if (outcome.occupied) deps.webhooks.emit(app, { name: 'channel_occupied', channel: name });
  if (outcome.memberAdded && membership !== null) {
    deps.webhooks.emit(app, { name: 'member_added', channel: name, user_id: membership.signedUserId });
  }
  // After channel_occupied: a receiver hears of the channel before its first count.
  if (outcome.count !== undefined) {
    deps.webhooks.emit(app, { name: 'subscription_count', channel: name, subscription_count: outcome.count });
  }
  if (pending === undefined || pending.cancelled || !connection.isOpen) {
    // Unsubscribed or closed while the cluster answered: take the subscription back out.
    leaveCluster(deps, app, name, connection.socketId, membership);
    return 'gone';
  }
  // A join told no count (the app counts none) has no count to protect from older ones; one told its count, published or
  // held back, has: a count published before it and still on its way is older.
  const told = outcome.count ?? outcome.heldCount;
  const { channel } = hub.join(connection, name, membership, membership === null && told === undefined ? 0 : outcome.seq);
  // Answered after the node may have begun to miss events (its Redis subscriber closed while the join ran): read again.
  if (membership !== null && pending.lossesAtBegin !== hub.lossesBegun) hub.joinedDuringLoss(channel, outcome.seq);
  if (membership !== null) {
    connection.send(memberListFrame(name, outcome.members), 'presence');
  } else {
    connection.send(encodeSubscriptionSucceeded(name), 'protocol');
    // The count this join published went to the others; the joiner hears it right after its answer — and so it does
    // when the throttle held it back (a probe: a joiner of a channel of 101 whose count had not moved by the end of the
    // interval got none for good).
    if (told !== undefined) {
      connection.send(encodeProtocol(Events.SubscriptionCount, { subscription_count: told }, name), 'protocol');
    }
  }
  if (channelKind(name).cache) replayCached(deps, connection, name, pending.held, cached);
  flushHeld(connection, pending.held, outcome.seq);
  return 'joined';
}

/**
 * A presence channel's members as `subscription_succeeded` lists them. `hash` has no prototype: a user id `__proto__` is a
 * key of it like any other (on a plain object the assignment set the prototype instead, and the member was left out of
 * `hash`, which pusher-js builds its member list from).
 */
function presenceList(members: ReadonlyMap<string, unknown>): { ids: string[]; hash: Record<string, unknown> } {
  const hash: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  for (const [id, info] of members) hash[id] = info;
  return { ids: [...members.keys()], hash };
}

/** A presence channel's `pusher_internal:subscription_succeeded`: its member list, as a join or a repeat answers it. */
export function memberListFrame(name: string, members: ReadonlyMap<string, unknown>): string {
  const { ids, hash } = presenceList(members);
  return encodeProtocol(Events.SubscriptionSucceeded, { presence: { ids, hash, count: ids.length } }, name);
}

/**
 * A new subscriber of a cache channel gets its last event, or `pusher:cache_miss` (and the `cache_miss` webhook) when it has
 * none — unless an event of the channel it receives arrived while it joined: the cache was read in order with the events
 * held, so the last of those is the cached one, and it is sent with them (once, in its place) rather than replayed ahead
 * of them. Only the backend's events count: client events are never cached, so one held leaves the cached event to be
 * replayed first. Events held that exclude this connection (`socket_id`) do not count: it would get none of them.
 */
function replayCached(
  deps: RealtimeDeps,
  connection: Connection,
  name: string,
  held: readonly Envelope[],
  cached: CachedEvent | undefined,
): void {
  const socketId = connection.socketId;
  const receives = (e: Envelope): boolean => e.kind === 'channel_event' && e.excludeSocketId !== socketId;
  if (held.some(receives)) return;
  if (cached === undefined) {
    connection.send(encodeDataless(Events.CacheMiss, name), 'protocol');
    deps.webhooks.emit(connection.app, { name: 'cache_miss', channel: name });
  } else {
    connection.send(encodeChannelEvent(cached.event, name, cached.data), 'channel_event');
  }
}

/**
 * The webhooks of a join given up (`Adapter.abandonJoin`): what its take-back changed beyond undoing the late join's own
 * changes, or what of those it left standing — in the order a join's and a leave's would go.
 */
function abandoned(deps: RealtimeDeps, app: AppConfig, name: string, membership: Membership | null, told: TakeBackOutcome): void {
  if (told.occupied) deps.webhooks.emit(app, { name: 'channel_occupied', channel: name });
  if (membership !== null) {
    if (told.memberAdded) deps.webhooks.emit(app, { name: 'member_added', channel: name, user_id: membership.signedUserId });
    if (told.memberRemoved) deps.webhooks.emit(app, { name: 'member_removed', channel: name, user_id: told.removedUserId ?? membership.signedUserId });
  }
  if (told.vacated) deps.webhooks.emit(app, { name: 'channel_vacated', channel: name });
  else if (told.count !== undefined) {
    deps.webhooks.emit(app, { name: 'subscription_count', channel: name, subscription_count: told.count });
  }
}

/** After the hub forgot a subscription (unsubscribe or close): records the leave cluster-wide and emits its webhooks. */
export function afterHubLeave(deps: RealtimeDeps, appId: string, left: LeaveResult): void {
  const app = deps.hub.state(appId)?.app;
  if (app !== undefined) leaveCluster(deps, app, left.channel.name, left.socketId, left.membership);
}

function leaveCluster(deps: RealtimeDeps, app: AppConfig, name: string, socketId: string, membership: Membership | null): void {
  deps.adapter.leave(app.id, name, socketId, membership).then(
    (outcome: LeaveOutcome) => {
      if (outcome.memberRemoved && membership !== null) {
        deps.webhooks.emit(app, { name: 'member_removed', channel: name, user_id: outcome.removedUserId ?? membership.signedUserId });
      }
      if (outcome.vacated) deps.webhooks.emit(app, { name: 'channel_vacated', channel: name });
      // Never with channel_vacated: an empty channel gets no count, as in Pusher (the vacate says it).
      if (outcome.count !== undefined) {
        deps.webhooks.emit(app, { name: 'subscription_count', channel: name, subscription_count: outcome.count });
      }
    },
    // The engine keeps a leave it could not record and retries it when it is back; a rejection means it closed.
    () => undefined,
  );
}
