/**
 * Cluster-wide membership for the single-node engine: the same bookkeeping the Redis engine keeps in Redis (subscriptions
 * per channel, presence connections per user, a sequence number per presence change), kept in memory. One node is the
 * whole cluster, so the two engines answer `join` / `leave` and the queries alike (test/adapters/adapter-contract.ts).
 */
import { isUserChannel } from '../protocol/channel-name.js';
import type { ChannelCounts, JoinOutcome, LeaveOutcome, MemberRef } from './adapter.js';
import type { Envelope } from './envelope.js';
import {
  countData,
  countWaitMs,
  internalEnvelope,
  memberAddedData,
  memberRemovedData,
} from './membership-events.js';

interface ChannelState {
  subscriptions: number;
  /** Presence: user id → connections, and the info and `user_id` as signed of its first one. */
  users: Map<string, { connections: number; info: unknown; signedUserId: string | number }>;
  lastCountAt: number;
  /** The count last published (-1: none yet). */
  countSent: number;
  /** The trailing count, armed while a change the throttle held back waits for the end of the interval. */
  countTimer: NodeJS.Timeout | undefined;
}

/** In-memory membership; `publish` receives the internal events in the order of the changes. */
export class MemoryMembership {
  private readonly apps = new Map<string, Map<string, ChannelState>>();
  private seq = 0;

  constructor(
    private readonly publish: (envelope: Envelope) => void,
    /** Whether the app opted in to subscription_count (Pusher: off unless enabled per app); others never get it. */
    private readonly countsSubscriptions: (appId: string) => boolean = () => true,
    /** Told each trailing count published (the counts of joins and leaves are in their outcomes instead). */
    private readonly countPublished: (appId: string, channel: string, count: number) => void = () => {},
  ) {}

  join(appId: string, channel: string, socketId: string, member: MemberRef | null, maxMembers: number): JoinOutcome {
    let channels = this.apps.get(appId);
    if (channels === undefined) {
      channels = new Map();
      this.apps.set(appId, channels);
    }
    const existing = channels.get(channel);
    if (member !== null && existing !== undefined && !existing.users.has(member.userId)) {
      if (maxMembers > 0 && existing.users.size >= maxMembers) {
        return { admitted: false, occupied: false, memberAdded: false, members: new Map(), seq: this.seq };
      }
    }
    const state = existing ?? { subscriptions: 0, users: new Map(), lastCountAt: Number.NEGATIVE_INFINITY, countSent: -1, countTimer: undefined };
    if (existing === undefined) channels.set(channel, state);
    state.subscriptions++;
    let memberAdded = false;
    if (member !== null) {
      const user = state.users.get(member.userId);
      if (user === undefined) {
        state.users.set(member.userId, { connections: 1, info: member.userInfo, signedUserId: member.signedUserId ?? member.userId });
        memberAdded = true;
        this.publish(internalEnvelope(appId, channel, 'added', memberAddedData(member), ++this.seq, socketId));
      } else {
        user.connections++;
      }
    }
    const count = member === null ? this.publishCount(appId, channel, state, socketId) : undefined;
    const heldCount = member === null && count === undefined && this.countsChannel(appId, channel) ? state.subscriptions : undefined;
    // Told to the joiner alone: the trailing count must go out even if the channel is back at the count published last,
    // or the joiner would keep one the channel has left (the review).
    if (heldCount !== undefined) state.countSent = -1;
    const members = new Map<string, unknown>();
    if (member !== null) for (const [id, u] of state.users) members.set(id, u.info);
    // Counts here carry no `seq` (published in order, at once): a non-presence subscriber needs no snapshot.
    return { admitted: true, occupied: existing === undefined, memberAdded, members, seq: member === null ? 0 : this.seq, count, heldCount };
  }

  leave(appId: string, channel: string, member: MemberRef | null): LeaveOutcome {
    const channels = this.apps.get(appId);
    const state = channels?.get(channel);
    if (channels === undefined || state === undefined) return { vacated: false, memberRemoved: false, count: undefined };
    state.subscriptions--;
    let memberRemoved = false;
    let removedUserId: string | number | undefined;
    if (member !== null) {
      const user = state.users.get(member.userId);
      if (user !== undefined && --user.connections <= 0) {
        state.users.delete(member.userId);
        memberRemoved = true;
        // As member_added echoed it: a user signed `2` by one connection and `"2"` by another is one member, and a
        // receiver that compares strictly must see the same id leave (a probe: added as 2, removed as "2").
        removedUserId = user.signedUserId;
        this.publish(internalEnvelope(appId, channel, 'removed', memberRemovedData({ userId: member.userId, signedUserId: removedUserId }), ++this.seq));
      }
    }
    const vacated = state.subscriptions <= 0;
    let count: number | undefined;
    if (vacated) {
      channels.delete(channel);
      clearTimeout(state.countTimer);
    } else if (member === null) count = this.publishCount(appId, channel, state);
    return { vacated, memberRemoved, count, ...(removedUserId !== undefined ? { removedUserId } : {}) };
  }

  counts(appId: string, channel: string): ChannelCounts {
    const state = this.apps.get(appId)?.get(channel);
    return { subscriptionCount: state?.subscriptions ?? 0, userCount: state?.users.size ?? 0 };
  }

  channelNames(appId: string): string[] {
    return [...(this.apps.get(appId)?.keys() ?? [])];
  }

  members(appId: string, channel: string): Map<string, unknown> {
    const out = new Map<string, unknown>();
    for (const [id, u] of this.apps.get(appId)?.get(channel)?.users ?? []) out.set(id, u.info);
    return out;
  }

  hasMember(appId: string, channel: string, userId: string): boolean {
    return this.apps.get(appId)?.get(channel)?.users.has(userId) ?? false;
  }

  /** Whether the channel's subscriptions are counted: its app counts them, and it is no user's own channel. */
  private countsChannel(appId: string, channel: string): boolean {
    return this.countsSubscriptions(appId) && !isUserChannel(channel);
  }

  /** Stops the trailing counts still armed (the engine is closing). */
  close(): void {
    for (const channels of this.apps.values()) for (const state of channels.values()) clearTimeout(state.countTimer);
  }

  /**
   * Publishes the channel's count after a change, unless the throttle of big channels holds it back: then the count as
   * it is at the end of the interval goes out then, once (membership-events.ts).
   */
  private publishCount(appId: string, channel: string, state: ChannelState, excludeSocketId?: string): number | undefined {
    if (!this.countsChannel(appId, channel)) return undefined;
    // The monotonic clock: on the wall clock one set back an hour held the counts of big channels for that hour.
    const now = performance.now();
    const wait = countWaitMs(state.subscriptions, now, state.lastCountAt);
    if (wait > 0) {
      state.countTimer ??= setTimeout(() => this.trailingCount(appId, channel, state), wait).unref();
      return undefined;
    }
    clearTimeout(state.countTimer);
    state.countTimer = undefined;
    state.lastCountAt = now;
    state.countSent = state.subscriptions;
    this.publish(internalEnvelope(appId, channel, 'count', countData(state.subscriptions), undefined, excludeSocketId));
    return state.subscriptions;
  }

  /** The end of a throttled interval: the count goes out if it moved since the last one published. */
  private trailingCount(appId: string, channel: string, state: ChannelState): void {
    state.countTimer = undefined;
    if (this.apps.get(appId)?.get(channel) !== state || state.subscriptions === state.countSent) return;
    const count = this.publishCount(appId, channel, state);
    if (count !== undefined) this.countPublished(appId, channel, count);
  }
}
