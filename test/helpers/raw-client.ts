/**
 * A frame-level WebSocket client (the `ws` package) for what pusher-js hides or will not do: exact close codes, silent
 * clients, unanswered pings, frames a real client never sends. Every wait is bounded.
 */
import WebSocket from 'ws';
import { channelAuthString, sign } from '../../src/protocol/signatures.js';
import { APP } from './server.js';
import { WAIT_MS, within } from './wait.js';

/** One server frame, with `data` decoded from its JSON string form when it is one. */
export interface Frame {
  event: string;
  channel?: string;
  user_id?: string;
  /** `data` exactly as it came on the wire. */
  raw: unknown;
  /** `data` parsed once more when it was a JSON string (the protocol's double encoding), else `raw`. */
  data: unknown;
}

export interface Closed {
  code: number;
  reason: string;
}

/** The query pusher-js 8 sends. */
export const PUSHER_QUERY = 'protocol=7&client=js&version=8.6.0&flash=false';

export class RawClient {
  readonly frames: Frame[] = [];
  /** Resolves when the socket closes, with the close frame's code and reason. */
  readonly closed: Promise<Closed>;
  private readonly waiters = new Set<() => void>();

  private constructor(readonly ws: WebSocket) {
    this.closed = new Promise((resolve) => {
      ws.on('close', (code: number, reason: Buffer) => resolve({ code, reason: reason.toString('utf8') }));
    });
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) return;
      const parsed = JSON.parse(data.toString('utf8')) as { event: string; channel?: string; user_id?: string; data?: unknown };
      let decoded: unknown = parsed.data;
      if (typeof decoded === 'string') {
        try {
          decoded = JSON.parse(decoded);
        } catch {
          // a plain string payload stays as it is
        }
      }
      this.frames.push({ ...parsed, raw: parsed.data, data: decoded });
      for (const wake of this.waiters) wake();
    });
    ws.on('error', () => {
      // surfaced through `closed` (1006) or the open rejection
    });
  }

  /** Opens `ws://127.0.0.1:{port}{path}`; by default the path pusher-js uses for the default app. */
  static async connect(port: number, path = `/app/${APP.key}?${PUSHER_QUERY}`, headers?: Record<string, string>): Promise<RawClient> {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, { headers });
    const client = new RawClient(ws);
    await within(
      new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
      }),
      `WebSocket open on ${path}`,
    );
    return client;
  }

  /** Connects and resolves after `pusher:connection_established`, with the socket id. */
  static async established(port: number, path?: string): Promise<{ client: RawClient; socketId: string }> {
    const client = await RawClient.connect(port, path);
    const frame = await client.next('pusher:connection_established');
    return { client, socketId: (frame.data as { socket_id: string }).socket_id };
  }

  /**
   * A fresh connection that answers pings and subscribes `user` to presence `channel`, signed as the default app's
   * backend would sign it (the answer is not awaited).
   */
  static async presenceMember(port: number, channel: string, user: string): Promise<RawClient> {
    const { client, socketId } = await RawClient.established(port);
    client.answerPings();
    const channelData = JSON.stringify({ user_id: user });
    const auth = `${APP.key}:${sign(APP.secret, channelAuthString(socketId, channel, channelData))}`;
    client.send({ event: 'pusher:subscribe', data: { channel, auth, channel_data: channelData } });
    return client;
  }

  /** `presenceMember`, once its subscription succeeded. */
  static async subscribedMember(port: number, channel: string, user: string): Promise<RawClient> {
    const client = await RawClient.presenceMember(port, channel, user);
    await client.next((f) => f.event === 'pusher_internal:subscription_succeeded' && f.channel === channel);
    return client;
  }

  /** Answers every server `pusher:ping` with `pusher:pong`, as pusher-js does. */
  answerPings(): this {
    this.ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (!isBinary && (JSON.parse(data.toString('utf8')) as { event?: string }).event === 'pusher:ping') {
        this.send({ event: 'pusher:pong', data: {} });
      }
    });
    return this;
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  /** The first frame (already received or still to come) matching `match`: an event name or a predicate. */
  next(match: string | ((frame: Frame) => boolean), timeoutMs = WAIT_MS): Promise<Frame> {
    const test = typeof match === 'string' ? (f: Frame) => f.event === match : match;
    const found = this.frames.find(test);
    if (found !== undefined) return Promise.resolve(found);
    let wake: (() => void) | undefined;
    const arrived = new Promise<Frame>((resolve) => {
      wake = () => {
        const frame = this.frames.find(test);
        if (frame !== undefined) resolve(frame);
      };
      this.waiters.add(wake);
    });
    const what = typeof match === 'string' ? `frame "${match}"` : 'a matching frame';
    return within(arrived, what, timeoutMs).finally(() => {
      if (wake !== undefined) this.waiters.delete(wake);
    });
  }

  /** Frames named `event` received so far. */
  all(event: string): Frame[] {
    return this.frames.filter((f) => f.event === event);
  }

  /** Waits for the close, bounded. */
  waitClosed(timeoutMs = WAIT_MS): Promise<Closed> {
    return within(this.closed, 'the socket to close', timeoutMs);
  }

  /** Closes from our side and waits for the close to complete. */
  async close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    this.ws.close();
    await within(this.closed, 'our close to complete').catch(() => this.ws.terminate());
  }
}
