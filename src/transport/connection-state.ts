/**
 * What a connection knows about itself, as pure bookkeeping with no I/O: its channels, its user and watchlist, its
 * counters, its pending ping, its inbound budgets and why it closed. Only its own methods change it (what happened to the
 * connection); everyone else reads it. The hub keeps the node's indexes and tells the connection what it did
 * (centrifuge's hub.go / client.go split); Connection (connection.ts) adds the socket, the telemetry and closing.
 */
import { FixedWindow } from '../limits/fixed-window.js';
import type { CloseReason } from './close-reasons.js';

/**
 * How much of a repeated answer one frame of the inbound budget pays for: a small presence channel's list is free, one
 * of 100 members of 2 KB each costs ~50 frames (4 a second in the default budget of 200).
 */
export const ANSWER_CHARS_PER_FRAME = 4096;

/** A presence membership held by this connection on one channel. */
export interface Membership {
  /** The member's identity (its string form): the key of presence bookkeeping. */
  userId: string;
  /**
   * `user_id` exactly as the backend signed it (a number stays a number): what member_added / member_removed and their
   * webhooks echo, as Pusher does (docs/protocol-compatibility.md, "Numeric user ids").
   */
  signedUserId: string | number;
  userInfo: unknown;
}

/** A watched user came online (its first signed-in connection in the cluster) or went offline (its last). */
export interface WatchlistChange {
  userId: string;
  online: boolean;
}

/** A connection's own state; see the module comment. Subclassed by Connection, which writes the protected parts. */
export class ConnectionState {
  readonly openedAt: number;
  /** Channel name → presence membership (or null for non-presence channels). */
  private readonly channels = new Map<string, Membership | null>();
  private signedInAs: string | undefined = undefined;
  protected authorizedBySubscription = false;
  private watched: readonly string[] = [];
  /** Watchlist changes held while its sign-in builds the first watchlist frame (`holdWatchlist`); undefined otherwise. */
  private heldWatchlist: WatchlistChange[] | undefined = undefined;
  private lastFrameAt: number;
  /** When the server's unanswered ping was sent; 0 when none is pending. */
  protected pingAt = 0;
  private framesIn = 0;
  protected framesOut = 0;
  private receivedBytes = 0;
  protected sentBytes = 0;
  /** Channels whose one free repeated subscribe was answered since they were subscribed (`firstRepeat`). */
  private repeated: Set<string> | undefined = undefined;
  /** The inbound budget: every frame counts, checked before the frame is decoded. */
  protected readonly frames: FixedWindow;
  /** Client events per second (the app's clientEventsPerSecond). */
  private readonly clientEvents: FixedWindow;
  protected failedWith: string | undefined = undefined;
  /** Set once; a closing connection sends nothing more. */
  protected closedFor: CloseReason | undefined = undefined;
  protected closedWith = 0;

  /** `framesPerSecond` and `clientEventsPerSecond` of 0 mean unlimited. */
  constructor(framesPerSecond: number, clientEventsPerSecond: number) {
    this.frames = new FixedWindow(framesPerSecond);
    this.clientEvents = new FixedWindow(clientEventsPerSecond);
    this.openedAt = performance.now();
    this.lastFrameAt = this.openedAt;
  }

  /** The channels this connection is subscribed to, with its presence membership on each (null elsewhere). */
  get subscriptions(): ReadonlyMap<string, Membership | null> {
    return this.channels;
  }

  /** Signed-in user id (pusher:signin), if any. */
  get userId(): string | undefined {
    return this.signedInAs;
  }

  /** Subscribed to a private or presence channel the app's backend signed: as good as a sign-in for 4009 (Pusher's rule). */
  get authorized(): boolean {
    return this.authorizedBySubscription;
  }

  /** The user ids of its sign-in watchlist. */
  get watchlist(): readonly string[] {
    return this.watched;
  }

  /** When the last frame of any kind arrived (ms). */
  get lastActivityAt(): number {
    return this.lastFrameAt;
  }

  /** When the server's unanswered ping was sent; 0 when none is pending. */
  get pingSentAt(): number {
    return this.pingAt;
  }

  /** Frames received, every kind, refused ones too. */
  get messagesIn(): number {
    return this.framesIn;
  }

  /** Frames written to the socket. */
  get messagesOut(): number {
    return this.framesOut;
  }

  /** Bytes of the frames received (the same frames `messagesIn` counts). */
  get bytesIn(): number {
    return this.receivedBytes;
  }

  /** Bytes of the frames written. */
  get bytesOut(): number {
    return this.sentBytes;
  }

  /** The socket-level error that ended the connection, if any (its code: `ECONNRESET`, `WS_ERR_…`). */
  get socketError(): string | undefined {
    return this.failedWith;
  }

  /** Why the connection closed or is closing; undefined while it is open. */
  get closeReason(): CloseReason | undefined {
    return this.closedFor;
  }

  /** The close code sent or received; 0 while open. */
  get closeCode(): number {
    return this.closedWith;
  }

  /**
   * A frame of `bytes` bytes arrived (any kind, refused or not): counted in messages and bytes together, and proof of life.
   * Returns whether it is within the inbound budget (FRAME_RATE_LIMIT_PER_SECOND), checked before any work on the frame.
   */
  frameReceived(bytes: number, now: number): boolean {
    this.framesIn++;
    this.receivedBytes += bytes;
    this.lastFrameAt = now;
    return this.frames.allow(now);
  }

  /**
   * A WebSocket ping of `bytes` bytes arrived: counted and held to the inbound budget as any frame, but no proof of life.
   * Pings alone must not keep a connection open: a client holding a message half sent (ws buffers up to twice
   * MAX_PAYLOAD_BYTES of it) cannot answer the activity check's `pusher:ping`, and is closed at its timeout.
   */
  pingReceived(bytes: number, now: number): boolean {
    this.framesIn++;
    this.receivedBytes += bytes;
    return this.frames.allow(now);
  }

  /**
   * An answer of `chars` characters was made for a frame that asked for it again (a repeated presence subscribe's member
   * list, past its first repeat: `firstRepeat`): charged to the inbound budget at one frame per `ANSWER_CHARS_PER_FRAME`,
   * so that a 70-byte frame repeated within the budget cannot have the server encode and write a 200 KB list each time
   * (a probe: 37 MB/s out, other clients' pings at 0.5 s). Past the budget the next frames get 4301, as any flood's, and
   * so do the answers still to be made for frames admitted before (`withinFrameBudget`: a burst's frames are all admitted
   * before any is answered).
   */
  answerCharged(chars: number, now: number): void {
    this.frames.charge(Math.floor(chars / ANSWER_CHARS_PER_FRAME), now);
  }

  /** Whether the inbound budget of the current window is not spent, answers charged to it included. */
  withinFrameBudget(now: number): boolean {
    return this.frames.within(now);
  }

  /** Counts one client event at `now`; false when it is over the app's clientEventsPerSecond. */
  admitClientEvent(now: number): boolean {
    return this.clientEvents.allow(now);
  }

  /** Joined `channel` on this node (with its presence membership, or null). */
  joined(channel: string, membership: Membership | null): void {
    this.channels.set(channel, membership);
  }

  /** Left `channel`: the membership it held there (null for non-presence), or undefined when it was not subscribed. */
  left(channel: string): Membership | null | undefined {
    const membership = this.channels.get(channel);
    if (membership === undefined) return undefined;
    this.channels.delete(channel);
    this.repeated?.delete(channel);
    return membership;
  }

  /**
   * Whether this is the first repeated subscribe of `channel` since it was subscribed: its answer is free, the later
   * ones are charged (`answerCharged`). pusher-js repeats a subscribe once per channel after a reconnect race (its
   * stale-auth subscribe, docs/protocol-compatibility.md): charged to the shared budget, five such repeats of large
   * presence channels spent a whole second of it, and the client's next real subscribe got 4301 and was never sent again
   * (the review). The set holds at most the channels held (MAX_SUBSCRIPTIONS_PER_CONNECTION), made at the first repeat.
   */
  firstRepeat(channel: string): boolean {
    if (this.repeated?.has(channel) === true) return false;
    (this.repeated ??= new Set()).add(channel);
    return true;
  }

  /** Signed in as `userId` (undefined: signed out, as on close). */
  signedIn(userId: string | undefined): void {
    this.signedInAs = userId;
  }

  /** Its sign-in watchlist is now `userIds`. */
  watches(userIds: readonly string[]): void {
    this.watched = userIds;
  }

  /** From now until `releaseWatchlist`, changes of watched users are held: its first watchlist frame is not sent yet. */
  holdWatchlist(): void {
    this.heldWatchlist ??= [];
  }

  /** Holds the change if the first watchlist frame is pending (true); false: send it now. */
  holdsWatchlistChange(userId: string, online: boolean): boolean {
    if (this.heldWatchlist === undefined) return false;
    this.heldWatchlist.push({ userId, online });
    return true;
  }

  /** Ends the hold: the changes held, in the order they arrived. */
  releaseWatchlist(): readonly WatchlistChange[] {
    const held = this.heldWatchlist ?? [];
    this.heldWatchlist = undefined;
    return held;
  }

  /**
   * When the server's ping was sent if it is still unanswered, else 0. Any frame after the ping proves the client alive,
   * not only its pong: such a ping is settled here.
   */
  unansweredPingSince(): number {
    if (this.pingAt !== 0 && this.lastFrameAt > this.pingAt) this.pingAt = 0;
    return this.pingAt;
  }
}
