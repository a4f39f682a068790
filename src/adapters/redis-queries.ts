/**
 * The cross-node queries of the Redis engine, as pure functions: what one node answers from its own hub, and how the
 * requester merges the answers of every live node into one cluster-wide result. The transport (pub/sub request and
 * reply, the live-node list, the timeout) is in redis-adapter.ts.
 */
import type { Hub } from '../realtime/hub.js';
import type { ChannelCounts } from './adapter.js';

/** The queries of the Adapter seam, as they travel between nodes. */
export type QueryOp = 'channels' | 'channel' | 'members';

/** One node's part of a query answer. Presence user ids travel (not counts) so a user on two nodes is counted once. */
export type NodeAnswer =
  | { op: 'channels'; channels: [name: string, subscriptions: number, userIds: string[]][] }
  | { op: 'channel'; subscriptions: number; userIds: string[] }
  | { op: 'members'; members: [userId: string, userInfo: unknown][] };

/** What this node knows about `appId` (and `channel`, for the channel and members queries). */
export function answerFromHub(hub: Hub, appId: string, op: QueryOp, channel: string): NodeAnswer {
  switch (op) {
    case 'channels': {
      const channels: [string, number, string[]][] = [];
      for (const c of hub.state(appId)?.channels.values() ?? []) channels.push([c.name, c.subscribers.size, [...c.members.keys()]]);
      return { op, channels };
    }
    case 'channel': {
      const c = hub.channel(appId, channel);
      return { op, subscriptions: c?.subscribers.size ?? 0, userIds: c === undefined ? [] : [...c.members.keys()] };
    }
    case 'members': {
      const members: [string, unknown][] = [];
      for (const m of hub.channel(appId, channel)?.members.values() ?? []) members.push([m.userId, m.userInfo]);
      return { op, members };
    }
  }
}

/** Sum of subscriptions per channel; presence users counted once however many nodes hold them. */
export function mergeChannels(answers: readonly NodeAnswer[]): Map<string, ChannelCounts> {
  const merged = new Map<string, { subscriptions: number; users: Set<string> }>();
  for (const answer of answers) {
    if (answer.op !== 'channels') continue;
    for (const [name, subscriptions, userIds] of answer.channels) {
      let entry = merged.get(name);
      if (entry === undefined) {
        entry = { subscriptions: 0, users: new Set() };
        merged.set(name, entry);
      }
      entry.subscriptions += subscriptions;
      for (const id of userIds) entry.users.add(id);
    }
  }
  const out = new Map<string, ChannelCounts>();
  for (const [name, e] of merged) out.set(name, { subscriptionCount: e.subscriptions, userCount: e.users.size });
  return out;
}

/** One channel's counts across nodes. */
export function mergeChannel(answers: readonly NodeAnswer[]): ChannelCounts {
  let subscriptionCount = 0;
  const users = new Set<string>();
  for (const answer of answers) {
    if (answer.op !== 'channel') continue;
    subscriptionCount += answer.subscriptions;
    for (const id of answer.userIds) users.add(id);
  }
  return { subscriptionCount, userCount: users.size };
}

/** Presence members across nodes; a user on several nodes appears once (the first answer's info wins). */
export function mergeMembers(answers: readonly NodeAnswer[]): Map<string, unknown> {
  const out = new Map<string, unknown>();
  for (const answer of answers) {
    if (answer.op !== 'members') continue;
    for (const [id, info] of answer.members) if (!out.has(id)) out.set(id, info);
  }
  return out;
}
