/**
 * This node's registry: connections per app, channel subscribers, presence members, signed-in users.
 * Pure bookkeeping with no I/O; the router and the fan-out read and change it. Sizes for the gauges are read from here.
 * The hub keeps only the node's indexes; a connection's own channels, user and watchlist are the Connection's, which the
 * hub tells what happened (`joined`, `left`, `signedIn`, `watches`) so both change in one call (centrifuge's hub.go / client.go).
 */
import type { AdapterStatus } from '../adapters/adapter.js';
import type { Envelope } from '../adapters/envelope.js';
import type { AppConfig } from '../config.js';
import { channelKind, type ChannelKind } from '../protocol/channel-name.js';
import type { Connection, Membership } from '../transport/connection.js';
import { CHANNEL_TYPES, type ChannelType } from '../protocol/channel-type.js';
import type { GaugeSources } from '../telemetry/metrics.js';

/** A presence member: one user, however many of its connections are subscribed. */
export interface Member {
  userId: string;
  /** `user_id` as the backend signed it (see Membership). */
  signedUserId: string | number;
  userInfo: unknown;
  connections: number;
}

/** One occupied channel on this node. */
export class Channel {
  readonly subscribers = new Set<Connection>();
  /** Presence channels only: user id → member. */
  readonly members = new Map<string, Member>();
  /**
   * The sequence number of the answer each recent subscriber was sent (presence: its member list; an app that counts
   * subscriptions on Redis: its own count): member events and counts at or below it are not sent to it again
   * (docs/scaling.md, "Presence across nodes"). Dropped once an envelope past it went by (member-delivery.ts).
   */
  readonly snapshotSeq = new Map<Connection, number>();
  /** Presence: the `seq` of the last member change this node has seen of the channel (a join's answer, a member event). */
  seenSeq = 0;
  /**
   * Presence: `seenSeq` when this node may have begun to miss the channel's events (its Redis subscriber away, a gap), until
   * its members are read again: a change past it is one the clients may lack (realtime/member-resync.ts).
   */
  missedSince: number | undefined = undefined;
  /** Presence: losses begun on the channel so far: a read answers for the noted loss only if no other began meanwhile. */
  losses = 0;

  constructor(
    readonly name: string,
    readonly kind: ChannelKind,
  ) {}
}

/** Everything the node holds for one app. */
export class AppState {
  readonly connections = new Set<Connection>();
  readonly channels = new Map<string, Channel>();
  /** Signed-in user id → its connections on this node. */
  readonly users = new Map<string, Set<Connection>>();
  /** User id → the connections whose sign-in watchlist names it. */
  readonly watchers = new Map<string, Set<Connection>>();
  /** Channel name → its subscriptions being recorded cluster-wide (Hub `beginJoin`). */
  readonly joining = new Map<string, PendingJoins>();

  constructor(readonly app: AppConfig) {}
}

/** What subscribing changed, so the caller knows which presence events to send. */
export interface JoinResult {
  channel: Channel;
  /** The user's first connection to this presence channel: member_added goes to the others. */
  memberAdded: boolean;
  /** The channel had no subscriber on this node before. */
  occupied: boolean;
}

export interface LeaveResult {
  channel: Channel;
  /** The connection that left (its subscription is recorded cluster-wide under this id). */
  socketId: string;
  /** The presence membership the connection held (null for other channels), to record the leave cluster-wide. */
  membership: Membership | null;
  /** The user's last connection left this presence channel: member_removed goes to the others. */
  memberRemoved: Member | undefined;
  /** The channel has no subscriber left on this node. */
  vacated: boolean;
}

/** Told when a signed-in user's first connection on this node arrives or its last one leaves. */
export type UserPresenceListener = (state: AppState, userId: string, online: boolean) => void | Promise<void>;

/** How a cluster-wide join ended for the subscribing connection (realtime/membership.ts). */
export type JoinResultKind = 'joined' | 'full' | 'unavailable' | 'gone';

/**
 * A subscription being recorded cluster-wide (`Hub.beginJoin`): one per connection and channel at a time. A
 * `pusher:unsubscribe` meanwhile cancels it (taken back out once the cluster answers) and a `pusher:subscribe` after that
 * takes it up again, so a subscribe, unsubscribe and subscribe sent together make one join, never a join the take-back of
 * the first undoes. A subscribe repeated meanwhile waits for its outcome.
 */
export interface PendingJoin {
  /** Envelopes of the channel that arrived meanwhile: sent after its `subscription_succeeded`. */
  readonly held: Envelope[];
  /** Unsubscribed since it began (and not subscribed again): `Hub.cancelJoin` / `resumeJoin`. */
  cancelled: boolean;
  /** Repeated subscribes waiting for the outcome (resolved by the first subscribe's `finally`: subscribe.ts); none usually. */
  waiters: Array<(result: JoinResultKind) => void> | undefined;
  /**
   * Ends at once the wait of a join for its next try (`Hub.waitForRetry`), when the client unsubscribes or closes: the
   * join is then given up now, not at the end of a back-off of up to 2 s (a drain closing its connections gets every
   * take-back sent before it settles).
   */
  wake: (() => void) | undefined;
  /** `Hub.lossesBegun` when it began: a presence join answered after a loss began may lack what was missed since. */
  readonly lossesAtBegin: number;
  /** The presence member it records (null on other channels): a subscribe as another one is no repeat of it. */
  readonly membership: Membership | null;
  /**
   * Moved on by every unsubscribe and subscribe of the channel while it is under way: a subscribe waiting for it to end
   * (as another member: subscribe.ts) goes on only if no frame of the channel came after it.
   */
  turn: number;
  /** The `turn` a subscribe as another member took to wait for it to end (subscribe.ts); current while `turn` is still it. */
  switchTurn: number | undefined;
  /** Whether the waiting switch holds a place under the subscription cap: one at most, given back once it is replaced. */
  switchHoldsPlace: boolean;
}

/** Subscriptions waiting for the cluster's answer: events for their channel are held until the member list is sent. */
type PendingJoins = Map<Connection, PendingJoin>;

export class Hub {
  private readonly apps = new Map<string, AppState>();
  /**
   * Channels with a subscription being recorded cluster-wide, over every app (their joins are in `AppState.joining`, keyed
   * by the channel name as the client sent it: no key is built per call).
   */
  private joiningChannels = 0;
  /** Subscriptions of each connection still being recorded cluster-wide (they count against its subscription cap). */
  private readonly joiningOf = new Map<Connection, number>();
  /** Joins the cluster engine could not record, waiting to be tried again (realtime/membership.ts bounds them). */
  joinsWaitingRetry = 0;
  /** Those joins, per connection: woken when it closes (a lookup of its own, not a walk over every join under way). */
  private readonly waitingRetry = new Map<Connection, Set<PendingJoin>>();

  constructor(
    apps: readonly AppConfig[],
    private readonly onUserPresence: UserPresenceListener = () => {},
  ) {
    for (const app of apps) this.apps.set(app.id, new AppState(app));
  }

  state(appId: string): AppState | undefined {
    return this.apps.get(appId);
  }

  /** All connections on this node, every app. */
  *connections(): IterableIterator<Connection> {
    for (const state of this.apps.values()) yield* state.connections;
  }

  /** Connections on this node, every app: kept as they come and go (`MAX_CONNECTIONS` asks on every upgrade). */
  connectionCount(): number {
    return this.connectionTotal;
  }

  /**
   * The sum of every app's connections. Summed over the apps on each call, it cost an upgrade 261 µs with 10 000 apps
   * and `MAX_CONNECTIONS` set (a probe).
   */
  private connectionTotal = 0;

  addConnection(connection: Connection): void {
    const connections = this.apps.get(connection.app.id)?.connections;
    if (connections === undefined || connections.has(connection)) return;
    connections.add(connection);
    this.connectionTotal++;
  }

  /** Forgets a closed connection: its subscriptions (returned, for presence events) and its user. */
  removeConnection(connection: Connection): LeaveResult[] {
    const state = this.apps.get(connection.app.id);
    if (state === undefined) return [];
    const left: LeaveResult[] = [];
    for (const name of [...connection.subscriptions.keys()]) {
      const result = this.leave(connection, name);
      if (result !== undefined) left.push(result);
    }
    this.setWatchlist(connection, []);
    void this.setUser(connection, undefined);
    if (state.connections.delete(connection)) this.connectionTotal--;
    this.joiningOf.delete(connection);
    // Its joins waiting for a next try are given up now, not at the end of their back-off.
    for (const pending of [...(this.waitingRetry.get(connection) ?? [])]) pending.wake?.();
    return left;
  }

  /**
   * Times this node may have begun to miss channels' events (realtime/member-resync.ts `missing`, any channel): a presence
   * join under way then is noted with its list's `seq` once answered (`joinedDuringLoss`).
   */
  lossesBegun = 0;
  /** Called when a presence join answered during a loss noted its channel: the resync's `recovered` (member-resync.ts). */
  onJoinedDuringLoss: () => void = () => {};

  /**
   * A presence join under way when a loss began was answered (membership.ts): its list is as of `seq`, and what came after
   * may be missed, so the channel is noted from there (or from earlier) and read again.
   */
  joinedDuringLoss(channel: Channel, seq: number): void {
    if (channel.missedSince === undefined || seq < channel.missedSince) channel.missedSince = seq;
    channel.losses++;
    this.onJoinedDuringLoss();
  }

  /** The presence channels this node has subscribers of, every app, with their app's id. */
  *presenceChannels(): IterableIterator<[appId: string, channel: Channel]> {
    for (const [appId, state] of this.apps) {
      for (const channel of state.channels.values()) if (channel.kind.presence) yield [appId, channel];
    }
  }

  channel(appId: string, name: string): Channel | undefined {
    return this.apps.get(appId)?.channels.get(name);
  }

  /** Marks a subscription as being recorded cluster-wide: events for the channel are held for it from now on. */
  beginJoin(connection: Connection, name: string, membership: Membership | null): PendingJoin {
    const pending: PendingJoin = {
      held: [],
      cancelled: false,
      waiters: undefined,
      wake: undefined,
      lossesAtBegin: this.lossesBegun,
      membership,
      turn: 0,
      switchTurn: undefined,
      switchHoldsPlace: false,
    };
    const joining = this.apps.get(connection.app.id)?.joining;
    if (joining === undefined) return pending;
    let joins = joining.get(name);
    if (joins === undefined) {
      joins = new Map();
      joining.set(name, joins);
      this.joiningChannels++;
    }
    if (!joins.has(connection)) this.count(connection);
    joins.set(connection, pending);
    return pending;
  }

  /**
   * How many subscriptions of this connection are being recorded cluster-wide now, for its subscription cap: not the
   * cancelled ones (the client holds them no more), as a subscription it left does not count.
   */
  joiningCount(connection: Connection): number {
    return this.joiningOf.get(connection) ?? 0;
  }

  /** The client unsubscribed from a channel it is joining: taken back out once the cluster answers. */
  cancelJoin(connection: Connection, pending: PendingJoin): void {
    pending.turn++;
    this.releaseSwitchPlace(connection, pending);
    if (pending.cancelled) return;
    pending.cancelled = true;
    pending.wake?.();
    this.uncount(connection);
  }

  /** The client subscribed again to a channel whose cancelled join is still under way: that join stands again. */
  resumeJoin(connection: Connection, pending: PendingJoin): void {
    pending.turn++;
    this.releaseSwitchPlace(connection, pending);
    if (!pending.cancelled) return;
    pending.cancelled = false;
    this.count(connection);
  }

  /**
   * A subscribe as another member than the cancelled join under way begins to wait for it to end (subscribe.ts): its turn,
   * and a place under the cap as a join under way holds one — one for the channel, whichever switch holds it: a later
   * switch takes it over, an unsubscribe or a subscribe taking the join up again gives it back (a review: each switch
   * held one more, and the channel's own last subscribe was refused at the cap).
   */
  beginSwitch(connection: Connection, pending: PendingJoin): number {
    const turn = ++pending.turn;
    pending.switchTurn = turn;
    if (!pending.switchHoldsPlace) {
      pending.switchHoldsPlace = true;
      this.count(connection);
    }
    return turn;
  }

  /** The switch's place under the cap given back: it joins now, or was replaced. */
  releaseSwitchPlace(connection: Connection, pending: PendingJoin): void {
    if (!pending.switchHoldsPlace) return;
    pending.switchHoldsPlace = false;
    this.uncount(connection);
  }

  /** One more of the connection's subscriptions being recorded (or a switch's place): counted under its cap. */
  private count(connection: Connection): void {
    this.joiningOf.set(connection, (this.joiningOf.get(connection) ?? 0) + 1);
  }

  private uncount(connection: Connection): void {
    const n = (this.joiningOf.get(connection) ?? 1) - 1;
    if (n > 0) this.joiningOf.set(connection, n);
    else this.joiningOf.delete(connection);
  }

  /**
   * Waits `ms` before a join's next try (realtime/membership.ts `retryJoin`), counted in `joinsWaitingRetry`; less if
   * the join is woken meanwhile (`PendingJoin.wake`: its client unsubscribed or closed).
   */
  waitForRetry(connection: Connection, pending: PendingJoin | undefined, ms: number): Promise<void> {
    this.joinsWaitingRetry++;
    let waiting = this.waitingRetry.get(connection);
    if (pending !== undefined) {
      if (waiting === undefined) this.waitingRetry.set(connection, (waiting = new Set()));
      waiting.add(pending);
    }
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.joinsWaitingRetry--;
        if (pending !== undefined) {
          if (pending.wake === done) pending.wake = undefined;
          waiting?.delete(pending);
          if (waiting?.size === 0 && this.waitingRetry.get(connection) === waiting) this.waitingRetry.delete(connection);
        }
        resolve();
      };
      const timer = setTimeout(done, ms);
      if (pending !== undefined) pending.wake = done;
    });
  }

  /** The join of this subscription under way (cancelled or not), if any. */
  pendingJoin(connection: Connection, name: string): PendingJoin | undefined {
    if (this.joiningChannels === 0) return undefined;
    return this.apps.get(connection.app.id)?.joining.get(name)?.get(connection);
  }

  /** Ends a pending subscription: its entry (look at `cancelled`), or undefined when there was none. */
  endJoin(connection: Connection, name: string): PendingJoin | undefined {
    const joining = this.apps.get(connection.app.id)?.joining;
    const joins = joining?.get(name);
    if (joins === undefined) return undefined;
    const pending = joins.get(connection);
    if (joins.delete(connection) && pending?.cancelled === false) this.uncount(connection);
    if (joins.size === 0) {
      joining!.delete(name);
      this.joiningChannels--;
    }
    return pending;
  }

  /** Holds an envelope for every subscription of its channel still waiting for the cluster's answer. */
  holdForJoining(envelope: Envelope): void {
    if (this.joiningChannels === 0) return;
    const joins = this.apps.get(envelope.appId)?.joining.get(envelope.channel);
    if (joins === undefined) return;
    for (const pending of joins.values()) pending.held.push(envelope);
  }

  join(connection: Connection, name: string, membership: Membership | null, seq = 0): JoinResult {
    const state = this.apps.get(connection.app.id);
    if (state === undefined) throw new Error(`unknown app ${connection.app.id}`);
    let channel = state.channels.get(name);
    const occupied = channel === undefined;
    if (channel === undefined) {
      channel = new Channel(name, channelKind(name));
      state.channels.set(name, channel);
    }
    channel.subscribers.add(connection);
    connection.joined(name, membership);
    let memberAdded = false;
    // Counts carry a `seq` too (the Redis engine's): a subscriber of an app that counts subscriptions skips those published
    // before its own (member-delivery.ts). Not recorded for the others: an entry per subscription for nothing.
    if (membership === null && seq > 0 && connection.app.enableSubscriptionCount) channel.snapshotSeq.set(connection, seq);
    if (membership !== null) {
      channel.snapshotSeq.set(connection, seq);
      if (seq > channel.seenSeq) channel.seenSeq = seq;
      const member = channel.members.get(membership.userId);
      if (member === undefined) {
        channel.members.set(membership.userId, { ...membership, connections: 1 });
        memberAdded = true;
      } else {
        member.connections++;
      }
    }
    return { channel, memberAdded, occupied };
  }

  leave(connection: Connection, name: string): LeaveResult | undefined {
    const membership = connection.left(name);
    if (membership === undefined) return undefined;
    const state = this.apps.get(connection.app.id);
    const channel = state?.channels.get(name);
    if (state === undefined || channel === undefined) return undefined;
    channel.subscribers.delete(connection);
    channel.snapshotSeq.delete(connection);
    let memberRemoved: Member | undefined;
    if (membership !== null) {
      const member = channel.members.get(membership.userId);
      if (member !== undefined && --member.connections === 0) {
        channel.members.delete(membership.userId);
        memberRemoved = member;
      }
    }
    const vacated = channel.subscribers.size === 0;
    if (vacated) state.channels.delete(name);
    return { channel, socketId: connection.socketId, membership, memberRemoved, vacated };
  }

  /** Sets (or clears) the signed-in user of a connection; resolves once a first sign-in of the user is recorded. */
  setUser(connection: Connection, userId: string | undefined): Promise<void> {
    const state = this.apps.get(connection.app.id);
    if (state === undefined) return Promise.resolve();
    const previous = connection.userId;
    if (previous === userId) return Promise.resolve();
    if (previous !== undefined) {
      const set = state.users.get(previous);
      set?.delete(connection);
      if (set?.size === 0) {
        state.users.delete(previous);
        this.onUserPresence(state, previous, false);
      }
    }
    connection.signedIn(userId);
    if (userId !== undefined) {
      let set = state.users.get(userId);
      const first = set === undefined;
      if (set === undefined) {
        set = new Set();
        state.users.set(userId, set);
      }
      set.add(connection);
      if (first) return Promise.resolve(this.onUserPresence(state, userId, true));
    }
    return Promise.resolve();
  }

  /** Replaces the watchlist of a connection (sign-in); an empty list unwatches everything. */
  setWatchlist(connection: Connection, userIds: readonly string[]): void {
    const state = this.apps.get(connection.app.id);
    if (state === undefined) return;
    for (const id of connection.watchlist) {
      const set = state.watchers.get(id);
      set?.delete(connection);
      if (set?.size === 0) state.watchers.delete(id);
    }
    connection.watches(userIds);
    for (const id of userIds) {
      let set = state.watchers.get(id);
      if (set === undefined) {
        set = new Set();
        state.watchers.set(id, set);
      }
      set.add(connection);
    }
  }

  userConnections(appId: string, userId: string): ReadonlySet<Connection> {
    return this.apps.get(appId)?.users.get(userId) ?? new Set();
  }

  /** Gauge sources read by the metrics at scrape time. */
  gaugeSources(adapterStatus: () => AdapterStatus): GaugeSources {
    return {
      connectionsByApp: () => [...this.apps.values()].map((s) => [s.app.id, s.connections.size] as [string, number]),
      channelStats: () => {
        const out: { appId: string; channelType: ChannelType; channels: number; subscriptions: number }[] = [];
        for (const state of this.apps.values()) {
          const channels = new Map<ChannelType, number>();
          const subscriptions = new Map<ChannelType, number>();
          for (const channel of state.channels.values()) {
            const t = channel.kind.type;
            channels.set(t, (channels.get(t) ?? 0) + 1);
            subscriptions.set(t, (subscriptions.get(t) ?? 0) + channel.subscribers.size);
          }
          for (const t of CHANNEL_TYPES) {
            out.push({
              appId: state.app.id,
              channelType: t,
              channels: channels.get(t) ?? 0,
              subscriptions: subscriptions.get(t) ?? 0,
            });
          }
        }
        return out;
      },
      presenceMembersByApp: () =>
        [...this.apps.values()].map((s) => {
          let n = 0;
          for (const channel of s.channels.values()) n += channel.members.size;
          return [s.app.id, n] as [string, number];
        }),
      sendBufferBytes: () => {
        // Plain loops, not the connections() generator: this visits every connection on every scrape (10 000: ms apart).
        let n = 0;
        for (const state of this.apps.values()) for (const c of state.connections) n += c.queuedBytes;
        return n;
      },
      adapterStatus,
    };
  }
}
