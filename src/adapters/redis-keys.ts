/**
 * Every Redis key and pub/sub channel of the Redis engine. A channel's keys and its event channel share one hash tag,
 * `{appId:channel}`, so each Lua script touches one slot and its sharded publication goes to the same shard (Redis
 * Cluster); channel names cannot contain braces, app ids are escaped so they cannot either.
 */

/** The keys of one channel's cluster-wide state. */
export interface ChannelKeys {
  /**
   * Hash: `total` subscriptions, `n:<node>` subscriptions per node, `seq` of the last presence change, `countAt`, and
   * `listed` once a presence subscriber was answered with the member list (redis-scripts.ts, JOIN_LUA).
   */
  state: string;
  /** Hash: presence user id → connections in the cluster. */
  users: string;
  /** Hash: presence user id → its user_info JSON. */
  info: string;
  /** Pub/sub channel of the channel's envelopes. */
  events: string;
}

/** Key and channel names under one prefix. */
export class RedisKeys {
  constructor(readonly prefix: string) {}

  private tag(appId: string, channel: string): string {
    return `${this.prefix}:{${appId.replace(/[{}%]/g, encodeURIComponent)}:${channel}}`;
  }

  channel(appId: string, channel: string): ChannelKeys {
    const t = this.tag(appId, channel);
    return { state: `${t}:state`, users: `${t}:users`, info: `${t}:info`, events: `${t}:ev` };
  }

  /** Hash: presence user id → its connections on `node` (the node's share, removed when it dies). */
  share(appId: string, channel: string, node: string): string {
    return `${this.tag(appId, channel)}:share:${node}`;
  }

  /**
   * Hash: socket id → what its join changed (`1` nothing to report, else `o` occupied, `a` member added, `c` count
   * published: JOIN_LUA) for each subscription `node` recorded on the channel. The scripts change the counts only when the
   * socket's entry is added (join) or removed (leave), so a join tried again or a leave retried after a timeout, or a
   * join taken back after it timed out, never counts twice.
   */
  subscriptions(appId: string, channel: string, node: string): string {
    return `${this.tag(appId, channel)}:subs:${node}`;
  }

  /**
   * A `SCAN` pattern matching every `subscriptions(…, node)` hash, and the `[appId, channel]` JSON pair of one of them
   * (undefined for a key that is none): how a node finds what Redis holds for it without its channel index, which a
   * shard restarted from a snapshot can hold apart from (on a Redis Cluster the index is on another shard).
   */
  subscriptionsPattern(node: string): string {
    return `${globEscape(this.prefix)}:{*}:subs:${globEscape(node)}`;
  }

  pairOfSubscriptions(key: string, node: string): string | undefined {
    const head = `${this.prefix}:{`;
    const tail = `}:subs:${node}`;
    if (!key.startsWith(head) || !key.endsWith(tail)) return undefined;
    const tag = key.slice(head.length, key.length - tail.length);
    // No channel name holds a brace: one here is another key of the channel's (a mark `…:gone:<user id>` whose user id
    // ends like a subscriptions hash).
    if (tag.includes('}')) return undefined;
    // An app id has no ':' (config.ts); a channel may.
    const colon = tag.indexOf(':');
    if (colon < 0) return undefined;
    let appId: string;
    try {
      appId = decodeURIComponent(tag.slice(0, colon));
    } catch {
      // No app id of Beacon's escapes so (a stray key under the prefix): none, rather than a prune that fails for good.
      return undefined;
    }
    return JSON.stringify([appId, tag.slice(colon + 1)]);
  }

  /**
   * String: what one leave of `node` on the channel changed, kept for a short while by the leave script when it changed
   * something, so that the same leave tried again (its first attempt got no answer in time, then ran) answers it
   * (redis-scripts.ts, LEAVE_LUA). `leave` names that one leave: the same for all its attempts.
   */
  leaveReceipt(appId: string, channel: string, node: string, leave: string): string {
    return `${this.tag(appId, channel)}:left:${node}:${leave}`;
  }

  /**
   * String: what the reap of dead `node`'s share of the channel changed, kept for a while by the reap script when it
   * changed something, so that a later attempt finds it if the attempt that ran got no answer in time (REAP_LUA). The
   * reaper deletes it once it has the answer.
   */
  reapReceipt(appId: string, channel: string, node: string): string {
    return `${this.tag(appId, channel)}:reaped:${node}`;
  }

  /**
   * String with a time to live: a node sent `channel_vacated` for the channel (no `userId`) or `member_removed` for the
   * user, after its vacate delay, while the cluster said so (STILL_GONE_LUA). Another node whose own vacate was held
   * then, and is cancelled by its own channel_occupied / member_added, sends that one after all when it finds this
   * (webhook-sender.ts): the receiver's last word was the other node's vacate.
   */
  goneSent(appId: string, channel: string, userId?: string): string {
    return userId === undefined ? `${this.tag(appId, channel)}:gone` : `${this.tag(appId, channel)}:gone:${userId}`;
  }

  /** The field of `state` holding `node`'s subscriptions. */
  nodeField(node: string): string {
    return `n:${node}`;
  }

  /** Set of `[appId, channel]` JSON pairs where `node` holds subscriptions (what a reaper walks). */
  nodeChannels(node: string): string {
    return `${this.prefix}:nodechannels:{${node}}`;
  }

  /** Set of the channels of an app that may be occupied (GET /channels); entries with no subscription are skipped. */
  appChannels(appId: string): string {
    return `${this.prefix}:channels:{${appId.replace(/[{}%]/g, encodeURIComponent)}}`;
  }

  /** Hash of an app's connections (`total`, `n:<node>`), for its cluster-wide quota. */
  appConnections(appId: string): string {
    return `${this.prefix}:connections:{${appId.replace(/[{}%]/g, encodeURIComponent)}}`;
  }

  /** Hash: reservation id → 1 for each connection of the app `node` counted (so a retried release counts nothing twice). */
  appReservations(appId: string, node: string): string {
    return `${this.prefix}:connections:{${appId.replace(/[{}%]/g, encodeURIComponent)}}:ids:${node}`;
  }

  /** Set of the apps whose connections `node` counted (what a reaper walks). */
  nodeApps(node: string): string {
    return `${this.prefix}:nodeapps:{${node}}`;
  }

  /**
   * The signed-in users of an app (watchlist): hash user → nodes it is signed in on, one set per node, the channel of their
   * transitions, and `listed`, set when a watchlist is answered from the hash (redis-scripts.ts, USER_PRESENCE_LUA).
   */
  users(appId: string): { count: string; events: string; listed: string; share: (node: string) => string } {
    // Also a channel's tag `{appId:channel}` for the app `u`: the configuration refuses that id (RESERVED_APP_IDS).
    const t = `${this.prefix}:{u:${appId.replace(/[{}%]/g, encodeURIComponent)}}`;
    return { count: `${t}:users`, events: `${t}:watch`, listed: `${t}:listed`, share: (node) => `${t}:share:${node}` };
  }

  /**
   * A random id, set by the first node to find it missing and never changed: a node that reads another id than at its
   * last heartbeat knows Redis lost its data meanwhile (redis-reaper.ts).
   */
  get epoch(): string {
    return `${this.prefix}:epoch`;
  }

  /**
   * On a Redis Cluster, the epoch of the shard serving the slot of `tag` (`epoch-0`, `epoch-1`, …: redis-reaper.ts picks
   * one per master). Same value and script as `epoch`, one key per shard, since a shard loses its data on its own.
   */
  shardEpoch(tag: string): string {
    return `${this.prefix}:epoch:{${tag}}`;
  }

  /** Liveness key of a node (TTL). */
  node(node: string): string {
    return `${this.prefix}:node:${node}`;
  }

  /**
   * Set (with a TTL) by a node from the start of its drain (`markDraining`): a node that takes no clients any more does
   * not count as one where another draining node's clients can reconnect, so that node holds no leaves for it.
   */
  draining(node: string): string {
    return `${this.prefix}:draining:${node}`;
  }

  /** Set of every node that may hold state: removed only once its share is reaped. */
  get nodes(): string {
    return `${this.prefix}:nodes`;
  }

  /** The lock that makes one survivor reap a dead node. */
  reapLock(node: string): string {
    return `${this.prefix}:reap:${node}`;
  }

  /** Control pub/sub channel (user termination), every node. */
  get control(): string {
    return `${this.prefix}:control`;
  }

  cache(appId: string, channel: string): string {
    return `${this.tag(appId, channel)}:cache`;
  }
}

/** `text` matched literally in a Redis glob pattern (`SCAN MATCH`): its `*`, `?`, `[`, `]` and `\` escaped. */
export function globEscape(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}
