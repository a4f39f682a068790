/**
 * Subscriber and publisher connections for each target. Beacon and the bare-`ws` server are spoken to with the same `ws`
 * client library (Beacon's Pusher protocol 7 by hand, as pusher-js would send it); Socket.IO needs its own client,
 * `socket.io-client`, on the WebSocket transport only.
 */
import { createHmac } from 'node:crypto';
import { io, type Socket } from 'socket.io-client';
import { WebSocket } from 'ws';
import { BEACON_APP, protocolOf, type TargetId } from './targets.js';

/** What every benchmark message carries: its index, the publisher's clock when it was published, and padding. */
export interface Payload {
  i: number;
  /** performance.now() of the load process at publish time (publishers and subscribers share the process and its clock). */
  t: number;
  pad: string;
}

/** One open connection, closed without a handshake at the end of a run. */
export interface Closable {
  close(): void;
}

const CONNECT_TIMEOUT_MS = 15_000;

/** `i` and `t` of a benchmark message, read from the raw frame (plain or JSON-in-a-string) without parsing it twice. */
const PAYLOAD_FIELDS = /"i\\?":(\d+),\\?"t\\?":([\d.e+-]+)/;

/** The payload of a benchmark frame, or undefined for any other frame. Cheap: the load process must not be the limit. */
function payloadOf(text: string): Payload | undefined {
  const m = PAYLOAD_FIELDS.exec(text);
  return m === null ? undefined : { i: Number(m[1]), t: Number(m[2]), pad: '' };
}

function withTimeout<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer in ${CONNECT_TIMEOUT_MS} ms`)), CONNECT_TIMEOUT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A frame that is not a benchmark message. */
interface ControlFrame {
  event: string;
  data?: unknown;
}

/** Hands every benchmark message on `ws` to `onPayload` (when given), every other frame, parsed, to `onControl`. */
function onFrames(ws: WebSocket, onPayload: ((p: Payload) => void) | undefined, onControl: (frame: ControlFrame) => void): void {
  ws.on('message', (raw) => {
    const text = raw.toString();
    const payload = onPayload === undefined ? undefined : payloadOf(text);
    if (payload !== undefined) {
      onPayload?.(payload);
      return;
    }
    onControl(JSON.parse(text) as ControlFrame);
  });
}

/** `subscribed`, bounded by CONNECT_TIMEOUT_MS; `ws` is terminated if it fails. */
function terminatedUnless(ws: WebSocket, subscribed: Promise<WebSocket>, what: string): Promise<WebSocket> {
  return withTimeout(subscribed, what).catch((err: unknown) => {
    ws.terminate();
    throw err;
  });
}

/** Where a subscriber listens: Beacon's channel and event name, the event name (and room) on the baselines. */
export interface Subscription {
  beaconChannel: string;
  beaconEvent: string;
  event: string;
  /** The baselines' room; `bench` when absent. */
  room?: string;
  /** The Beacon app to connect to; the bench app when absent. */
  app?: { key: string; secret: string };
}

/**
 * A Pusher protocol 7 connection to Beacon subscribed to `channel` (private channels are authorised with the app secret, as
 * an auth endpoint would). Resolves with the socket once `pusher_internal:subscription_succeeded` arrives.
 */
export function connectBeacon(
  port: number,
  channel: string,
  event: string,
  onPayload: ((p: Payload) => void) | undefined,
  app: { key: string; secret: string } = BEACON_APP,
): Promise<WebSocket> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/app/${app.key}?protocol=7&client=bench&version=1.0.0`);
  const subscribed = new Promise<WebSocket>((resolve, reject) => {
    ws.once('error', reject);
    ws.once('close', (code) => reject(new Error(`beacon closed the connection (${code})`)));
    onFrames(ws, onPayload, (frame) => {
      if (frame.event === event) {
        // Not a benchmark payload (none is expected on this connection).
      } else if (frame.event === 'pusher:connection_established') {
        const socketId = (JSON.parse(frame.data as string) as { socket_id: string }).socket_id;
        const data: Record<string, string> = { channel };
        if (channel.startsWith('private-')) {
          data.auth = `${app.key}:${createHmac('sha256', app.secret).update(`${socketId}:${channel}`).digest('hex')}`;
        }
        ws.send(JSON.stringify({ event: 'pusher:subscribe', data }));
      } else if (frame.event === 'pusher_internal:subscription_succeeded') {
        resolve(ws);
      } else if (frame.event === 'pusher:ping') {
        ws.send('{"event":"pusher:pong","data":{}}');
      } else if (frame.event === 'pusher:error') {
        reject(new Error(`beacon: ${JSON.stringify(frame.data)}`));
      }
    });
  });
  return terminatedUnless(ws, subscribed, 'beacon subscribe');
}

/** A connection to the bare-`ws` server: greeted, it asks to join `room` and resolves once the server says `subscribed`. */
export function connectWs(
  port: number,
  event: string,
  onPayload: ((p: Payload) => void) | undefined,
  room = 'bench',
): Promise<WebSocket> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
  const subscribed = new Promise<WebSocket>((resolve, reject) => {
    ws.once('error', reject);
    onFrames(ws, onPayload, (frame) => {
      if (frame.event === 'connected') ws.send(JSON.stringify({ event: 'subscribe', room }));
      else if (frame.event === 'subscribed') resolve(ws);
    });
  });
  return terminatedUnless(ws, subscribed, 'ws subscribe');
}

/** A Socket.IO connection (WebSocket transport) that has joined the room (acknowledged). */
export function connectSocketIo(
  port: number,
  event: string,
  onPayload: ((p: Payload) => void) | undefined,
  room = 'bench',
): Promise<Socket> {
  const socket = io(`http://127.0.0.1:${port}`, { transports: ['websocket'], forceNew: true, reconnection: false, timeout: CONNECT_TIMEOUT_MS });
  if (onPayload !== undefined) socket.on(event, onPayload);
  const joined = new Promise<Socket>((resolve, reject) => {
    socket.once('connect_error', reject);
    socket.once('connect', () => socket.emit('join', room, () => resolve(socket)));
  });
  return withTimeout(joined, 'socket.io join').catch((err: unknown) => {
    socket.disconnect();
    throw err;
  });
}

/** A subscriber of `target` that calls `onPayload` for every benchmark message. */
export async function subscribe(
  target: TargetId,
  port: number,
  subscription: Subscription,
  onPayload: (p: Payload) => void,
): Promise<Closable> {
  switch (protocolOf(target)) {
    case 'beacon': {
      const ws = await connectBeacon(port, subscription.beaconChannel, subscription.beaconEvent, onPayload, subscription.app);
      return { close: () => ws.terminate() };
    }
    case 'ws': {
      const ws = await connectWs(port, subscription.event, onPayload, subscription.room);
      return { close: () => ws.terminate() };
    }
    case 'socketio': {
      const socket = await connectSocketIo(port, subscription.event, onPayload, subscription.room);
      return { close: () => socket.disconnect() };
    }
  }
}
