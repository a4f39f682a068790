/**
 * The cluster engine seam.
 *
 * Contract:
 * - `publish(envelope)` delivers the envelope to the handler registered with `onEnvelope` on every node, this one included,
 *   at most once per node; envelopes published by one node on one channel arrive in publish order.
 * - Queries (`channels`, `channel`, `members`) answer for the whole cluster; the local adapter answers for this node.
 * - `terminateUser` closes that user's connections on every node.
 * - A publish while the engine is down is counted and dropped (never buffered without bound); `status().up` says so.
 * - `flush()` resolves once every envelope this node published before the call has reached this node's envelope handler
 *   (the graceful drain waits for it before closing connections, so an accepted publish is written before the 4200 close).
 * Every implementation runs the same contract suite (test/adapters/adapter-contract.ts).
 */
import type { Envelope } from './envelope.js';

export interface ChannelCounts {
  subscriptionCount: number;
  /** Distinct presence users; 0 for other channels. */
  userCount: number;
}

/** The last event of a cache channel, replayed to new subscribers. */
export interface CachedEvent {
  event: string;
  data: string;
}

export interface Adapter {
  readonly name: string;
  onEnvelope(handler: (envelope: Envelope) => void): void;
  /** Hands on a callback for `terminateUser` requests arriving from any node. */
  onTerminateUser(handler: (appId: string, userId: string) => void): void;
  publish(envelope: Envelope): void;
  channels(appId: string): Promise<Map<string, ChannelCounts>>;
  channel(appId: string, channel: string): Promise<ChannelCounts>;
  /** Presence members: user id → user info. */
  members(appId: string, channel: string): Promise<Map<string, unknown>>;
  cacheGet(appId: string, channel: string): Promise<CachedEvent | undefined>;
  cacheSet(appId: string, channel: string, event: CachedEvent): void;
  terminateUser(appId: string, userId: string): void;
  status(): { adapter: string; up: boolean };
  /** Resolves once every envelope published by this node so far was handed to this node's envelope handler. */
  flush(): Promise<void>;
  close(): Promise<void>;
}
