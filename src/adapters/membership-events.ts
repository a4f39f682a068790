/**
 * The internal events a cluster engine publishes when membership changes, built one way for both engines: the local
 * adapter delivers them as Envelopes, the Redis adapter hands their JSON to a Lua script that publishes them inside the
 * same atomic step as the change (so their order is the order of the changes). The script only fills in the `data`
 * string and the sequence number: `head` is the envelope JSON up to `"data":`.
 */
import { Events } from '../protocol/events.js';
import type { MemberRef } from './adapter.js';
import type { Envelope } from './envelope.js';

/**
 * subscription_count goes out on every change for channels up to this size, at most every COUNT_INTERVAL_MS above. A
 * change held back by that throttle is not dropped: the count as it is when the interval ends goes out then (the
 * trailing count), so subscribers never keep a count the channel has left behind.
 */
export const BIG_CHANNEL = 100;
export const COUNT_INTERVAL_MS = 5000;

/** The data of `pusher_internal:member_added`. */
export function memberAddedData(member: MemberRef): string {
  return JSON.stringify({ user_id: member.signedUserId ?? member.userId, user_info: member.userInfo });
}

/** The data of `pusher_internal:member_removed` (the id as signed, like member_added's). */
export function memberRemovedData(member: Pick<MemberRef, 'userId' | 'signedUserId'>): string {
  return JSON.stringify({ user_id: member.signedUserId ?? member.userId });
}

/** The data of `pusher_internal:subscription_count`. */
export function countData(count: number): string {
  return JSON.stringify({ subscription_count: count });
}

/**
 * How long a count change waits before it may be published: 0 (now) for small channels and once the interval since the
 * last one has passed, else what is left of that interval (the trailing count goes out then).
 */
export function countWaitMs(count: number, now: number, lastSentAt: number): number {
  if (count <= BIG_CHANNEL) return 0;
  return Math.max(0, COUNT_INTERVAL_MS - (now - lastSentAt));
}

type EventKind = 'added' | 'removed' | 'count';

/** An internal event envelope (no trace: these are consequences of a subscribe, not publishes). */
export function internalEnvelope(
  appId: string,
  channel: string,
  kind: EventKind,
  data: string,
  seq: number | undefined,
  excludeSocketId?: string,
): Envelope {
  const event = kind === 'added' ? Events.MemberAdded : kind === 'removed' ? Events.MemberRemoved : Events.SubscriptionCount;
  return {
    appId,
    channel,
    event,
    data,
    userId: undefined,
    excludeSocketId,
    kind: kind === 'count' ? 'protocol' : 'presence',
    trace: undefined,
    publishedAt: Date.now(),
    acceptedAt: performance.now(),
    ...(seq === undefined ? {} : { seq }),
  };
}

/** The envelope JSON up to and including `"data":`, for a script to append `<data string>,"seq":N}` or `<data string>}`. */
export function envelopeHead(appId: string, channel: string, kind: EventKind, excludeSocketId?: string): string {
  // `acceptedAt` is this process's clock: it means nothing on another node (a review: it went into every member and count message).
  const { data: _data, seq: _seq, acceptedAt: _local, ...rest } = internalEnvelope(appId, channel, kind, '', undefined, excludeSocketId);
  return `${JSON.stringify(rest).slice(0, -1)},"data":`;
}
