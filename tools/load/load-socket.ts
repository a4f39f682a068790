/**
 * One load connection: Pusher protocol 7 over a bare `ws` socket (thousands fit in one process, unlike pusher-js).
 * It subscribes to its channel once established (private and presence auth signed here with the app secret, exactly as
 * an auth endpoint signs it), answers server pings, sends client events when asked, and tallies every frame both ways.
 */
import WebSocket from 'ws';
import { Errors } from '../../src/protocol/errors.js';
import { channelAuthString, sign } from '../../src/protocol/signatures.js';
import { decodePayload } from './payload.js';
import { bump, serverFrameKind, type Tally } from './tally.js';

/** How Beacon's refusal of a frame past the connection's frame budget begins ("Frame rate limit (200/s) exceeded; …"). */
const FRAME_BUDGET_REFUSAL = Errors.FRAME_RATE_LIMITED.message.split('%s')[0]!;

/** Where and how one socket connects. */
export interface SocketPlan {
  index: number;
  /** The run's id: in its channel names and in every load message it sends; only messages carrying it are counted. */
  runId: string;
  /** ws://host:port/app/{key}?protocol=7&… */
  url: string;
  channel: string;
  appKey: string;
  appSecret: string;
}

/** The event name of load messages sent as client events (HTTP publishes use `load`). */
export const CLIENT_EVENT = 'client-load';

type State = 'connecting' | 'established' | 'subscribed' | 'closed';

interface Frame {
  event?: unknown;
  channel?: unknown;
  data?: unknown;
}

/** One load connection; every frame it sends or receives is counted in the shared `Tally`. */
export class LoadSocket {
  readonly plan: SocketPlan;
  state: State = 'connecting';
  /** The subscription succeeded (the socket may have closed since). */
  everSubscribed = false;
  socketId = '';
  /** Resolves once subscribed (true) or failed/closed before that (false). */
  readonly settled: Promise<boolean>;
  /** Resolves when the socket is closed, with its close code. */
  readonly closed: Promise<number>;
  private readonly ws: WebSocket;
  private readonly tally: Tally;
  private readonly startedAt = performance.now();
  private closing = false;
  /** A `pusher:error` arrived before `connection_established`: the server refused this socket at the upgrade. */
  private refusedWithFrame = false;
  /** The HTTP status the upgrade was answered with instead of 101, if any. */
  private httpStatus: number | undefined;
  /** The socket failed before it opened (its 'error' says why: ECONNREFUSED, an HTTP status, …). */
  private failedToOpen = false;
  private settle: (ok: boolean) => void = () => {};
  private onProbeError: ((message: string) => void) | undefined;
  /**
   * Called when the server refuses one of this socket's client events (so its deliveries are not expected); `overBudget`:
   * a frame-budget refusal, which may have answered another frame (Tally.framesOverBudget).
   */
  onClientEventRejected: (overBudget: boolean) => void = () => {};

  constructor(plan: SocketPlan, tally: Tally) {
    this.plan = plan;
    this.tally = tally;
    tally.attempted++;
    this.settled = new Promise((resolve) => {
      let done = false;
      this.settle = (ok) => {
        if (done) return;
        done = true;
        if (!ok) tally.failed++;
        resolve(ok);
      };
    });
    this.ws = new WebSocket(plan.url, { perMessageDeflate: false, handshakeTimeout: 10_000 });
    this.closed = new Promise((resolve) => {
      this.ws.on('close', (code: number, reason: Buffer) => {
        const was = this.state;
        const wasEstablished = was !== 'connecting';
        this.state = 'closed';
        // A socket that never opened (refused, EMFILE, or given up by the tool while connecting) ended no connection: its
        // 1006 is ws's word for "no close frame", not a connection lost. Its error says why.
        const neverOpened = this.failedToOpen || (this.closing && was === 'connecting');
        if (!neverOpened) bump(tally.closeCodes, code);
        if (wasEstablished) tally.closedAfterEstablished++;
        else tally.closedBeforeEstablished++;
        // Refused with an answer: a pusher:error frame or a 4xxx close before connection_established, or an HTTP status
        // instead of the upgrade. A socket that got none of those may never have reached the server (refused, reset).
        if (!wasEstablished && (this.refusedWithFrame || (code >= 4000 && code < 5000) || this.httpStatus !== undefined)) {
          tally.refused++;
        }
        if (!this.closing && was === 'subscribed') bump(tally.closedDuringRun, code);
        // A socket that failed before it opened (ECONNREFUSED, an HTTP answer to the upgrade) has its 'error' counted
        // already, which says why; its 1006 adds nothing.
        if (!this.closing && !this.failedToOpen) {
          const text = reason.toString('utf8');
          // 1006 is no close code anyone sent: the connection ended without a close frame (killed, reset, cut).
          if (code === 1006) {
            tally.error(
              wasEstablished
                ? 'connection lost (1006, no close frame)'
                : 'connection lost before connection_established (1006, no close frame)',
            );
          } else {
            const detail = `${code}${text === '' ? '' : ` ${text}`}`;
            tally.error(wasEstablished ? `closed by the server: ${detail}` : `closed before connection_established: ${detail}`);
          }
        }
        this.settle(false);
        resolve(code);
      });
    });
    this.ws.on('error', (err: Error & { code?: string }) => {
      // ws's words for an upgrade answered with an HTTP status (503 while the server drains, 400, …): a refusal.
      const status = /^Unexpected server response: (\d+)$/.exec(err.message);
      if (status !== null) this.httpStatus = Number(status[1]);
      // The tool's own terminate of a socket still connecting (its connect timeout, counted as such) makes ws say "closed
      // before the connection was established": the same socket counted twice.
      if (this.closing && this.state === 'connecting') return;
      if (this.ws.readyState !== WebSocket.OPEN && this.state === 'connecting') this.failedToOpen = true;
      tally.error(`socket error: ${err.code ?? err.message}`);
    });
    this.ws.on('message', (raw: Buffer) => this.onFrame(raw));
  }

  get isOpen(): boolean {
    return this.state === 'subscribed' && this.ws.readyState === WebSocket.OPEN;
  }

  /** Sends one load message as a client event on this socket's channel; false when the socket cannot send. */
  sendClientEvent(data: string): boolean {
    return this.sendFrame({ event: CLIENT_EVENT, channel: this.plan.channel, data }, 'client_event');
  }

  /**
   * Asks the server whether client events are allowed: a client event on a channel this socket is not subscribed to is
   * always refused with `pusher:error`, and the message says whether it was because client events are disabled.
   * Resolves with that message (or undefined when no answer came in `timeoutMs`).
   */
  probeClientEvents(timeoutMs: number): Promise<string | undefined> {
    const prefix = this.plan.channel.startsWith('presence-') ? 'presence-' : 'private-';
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.onProbeError = undefined;
        resolve(undefined);
      }, timeoutMs);
      this.onProbeError = (message) => {
        clearTimeout(timer);
        this.onProbeError = undefined;
        resolve(message);
      };
      const channel = `${prefix}beacon-load-${this.plan.runId}-probe`;
      const sent = this.sendFrame({ event: 'client-beacon-load-probe', channel, data: '{}' }, 'client_event');
      if (!sent) this.onProbeError('socket not open');
    });
  }

  /** Stops reading (a stalled client): the server's writes pile up in the kernel buffers, then in its send buffer. */
  stall(): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.pause();
  }

  resume(): void {
    if (this.ws.isPaused) this.ws.resume();
  }

  /** Closes with 1000 (terminates a socket still connecting); resolves once the close handshake finished. */
  close(): Promise<number> {
    this.closing = true;
    this.resume();
    if (this.ws.readyState === WebSocket.CONNECTING) this.ws.terminate();
    else if (this.ws.readyState === WebSocket.OPEN) this.ws.close(1000, 'load test done');
    return this.closed;
  }

  /** Cuts the socket without a handshake (a close that did not finish in time). */
  terminate(): void {
    this.closing = true;
    this.ws.terminate();
  }

  /** Gives up on a connection that did not subscribe in time. */
  timeOut(): void {
    if (this.state === 'subscribed' || this.state === 'closed') return;
    this.tally.error(this.state === 'connecting' ? 'connect timeout' : 'subscribe timeout');
    this.terminate();
  }

  private sendFrame(frame: Record<string, unknown>, kind: 'subscribe' | 'pong' | 'client_event'): boolean {
    if (this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(frame));
    this.tally.sent(kind);
    return true;
  }

  private onFrame(raw: Buffer): void {
    let frame: Frame;
    try {
      frame = JSON.parse(raw.toString('utf8')) as Frame;
    } catch {
      this.tally.error('server sent a frame that is not JSON');
      return;
    }
    const event = typeof frame.event === 'string' ? frame.event : '';
    const channel = typeof frame.channel === 'string' ? frame.channel : undefined;
    if (this.state === 'connecting' && event !== 'pusher:connection_established') {
      // Before connection_established only a refusal is sent (pusher:error, then a 4xxx close): no connection of the
      // server's sent it, so it is tallied apart from the frames the audit compares with websocket_messages_sent_total.
      this.tally.framesOnRefusedSockets++;
      if (event === 'pusher:error') this.refusedWithFrame = true;
      return;
    }
    this.tally.received(serverFrameKind(event, channel));
    switch (event) {
      case 'pusher:connection_established':
        this.established(frame.data);
        return;
      case 'pusher_internal:subscription_succeeded':
        if (channel === this.plan.channel && this.state === 'established') {
          this.state = 'subscribed';
          this.everSubscribed = true;
          this.tally.subscribed++;
          this.settle(true);
        }
        return;
      case 'pusher:subscription_error': {
        const data = parseData(frame.data);
        this.tally.error(`subscription_error ${String(data.status ?? '')} ${String(data.error ?? '')}`.trim());
        this.settle(false);
        return;
      }
      case 'pusher:ping':
        this.sendFrame({ event: 'pusher:pong', data: {} }, 'pong');
        return;
      case 'pusher:error': {
        const data = parseData(frame.data);
        const code = typeof data.code === 'number' ? data.code : null;
        // 4000–4299 come with a close frame: counted there, with the close code.
        if (code !== null && code >= 4000 && code < 4300) return;
        const message = String(data.message ?? '');
        // Every other pusher:error on a load socket answers a client event (the probe included): not published.
        this.tally.clientEventsRejected++;
        const overBudget = code === 4301 && message.startsWith(FRAME_BUDGET_REFUSAL);
        if (overBudget) this.tally.framesOverBudget++;
        if (this.onProbeError !== undefined) {
          this.onProbeError(message);
        } else {
          this.tally.error(`pusher:error ${code ?? '-'} ${message}`);
          bump(this.tally.pusherErrors, code === null ? '-' : String(code));
          this.onClientEventRejected(overBudget);
        }
        return;
      }
      default: {
        if (event.startsWith('pusher')) return;
        const payload = decodePayload(frame.data);
        // Only this run's messages are its deliveries (their clock is this process's): anything else on its channels is
        // other traffic, counted apart.
        if (payload !== undefined && payload.r === this.plan.runId) this.tally.delivered(payload.s, (performance.now() - payload.t) * 1000);
        else this.tally.foreignMessages++;
      }
    }
  }

  private established(data: unknown): void {
    if (this.state !== 'connecting') return;
    this.state = 'established';
    this.tally.established++;
    this.tally.connectTime.recordValue(Math.max(1, Math.round((performance.now() - this.startedAt) * 1000)));
    this.socketId = String(parseData(data).socket_id ?? '');
    const channel = this.plan.channel;
    const subscribe: Record<string, string> = { channel };
    if (channel.startsWith('presence-')) {
      const channelData = JSON.stringify({ user_id: `load-${this.plan.index}`, user_info: { load: true } });
      subscribe.channel_data = channelData;
      subscribe.auth = `${this.plan.appKey}:${sign(this.plan.appSecret, channelAuthString(this.socketId, channel, channelData))}`;
    } else if (channel.startsWith('private-')) {
      subscribe.auth = `${this.plan.appKey}:${sign(this.plan.appSecret, channelAuthString(this.socketId, channel))}`;
    }
    this.sendFrame({ event: 'pusher:subscribe', data: subscribe }, 'subscribe');
  }
}

/** Server → client `data` is a JSON string (or, from other servers, an object). */
function parseData(data: unknown): Record<string, unknown> {
  if (typeof data === 'object' && data !== null) return data as Record<string, unknown>;
  if (typeof data !== 'string') return {};
  try {
    const parsed = JSON.parse(data) as unknown;
    return typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}
