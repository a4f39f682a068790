/**
 * Awaiting pusher-js events with a bound: connection, subscription, the next event on a channel, and a recorder of every
 * event a channel emitted (to prove an event did *not* arrive: record, send a later marker, await the marker, inspect).
 */
import type { Channel, PusherClient } from './pusher-js.js';
import './pusher-js-close-timer.js';
import { WAIT_MS, within } from './wait.js';

/** Anything pusher-js lets us bind to: a channel, the client, its connection, its user. */
export interface Bindable {
  bind(event: string, callback: (data: never) => void): unknown;
  unbind(event?: string, callback?: (data: never) => void): unknown;
}

/** The next `event` emitted by `target`. */
export function nextEvent<T = unknown>(target: Bindable, event: string, timeoutMs = WAIT_MS): Promise<T> {
  let handler: ((data: T) => void) | undefined;
  const received = new Promise<T>((resolve) => {
    handler = (data: T) => resolve(data);
    target.bind(event, handler as (data: never) => void);
  });
  return within(received, `"${event}"`, timeoutMs).finally(() => target.unbind(event, handler as (data: never) => void));
}

/** Resolves with the socket id once the client is connected. */
export async function connected(client: PusherClient, timeoutMs = WAIT_MS): Promise<string> {
  if (client.connection.state !== 'connected') await nextEvent(client.connection, 'connected', timeoutMs);
  const socketId = client.connection.socket_id;
  if (socketId === undefined) throw new Error('connected without a socket id');
  return socketId;
}

/**
 * Subscribes and resolves with the channel once pusher:subscription_succeeded arrives;
 * rejects with the error data if the server refuses the subscription.
 */
export async function subscribed<C extends Channel = Channel>(
  client: PusherClient,
  name: string,
  timeoutMs = WAIT_MS,
): Promise<C> {
  const channel = client.subscribe(name) as C;
  // One listener pair and one timer: a losing `nextEvent` would keep its timer (and the test process) alive.
  const succeeded = () => settle();
  const failed = (error: unknown) => settle(new Error(`subscription to ${name} failed: ${JSON.stringify(error)}`));
  let settle: (error?: Error) => void = () => {};
  const outcome = new Promise<void>((resolve, reject) => {
    settle = (error) => (error === undefined ? resolve() : reject(error));
  });
  channel.bind('pusher:subscription_succeeded', succeeded);
  channel.bind('pusher:subscription_error', failed);
  try {
    await within(outcome, `subscription to ${name}`, timeoutMs);
  } finally {
    channel.unbind('pusher:subscription_succeeded', succeeded);
    channel.unbind('pusher:subscription_error', failed);
  }
  return channel;
}

/** One event as pusher-js emitted it. */
export interface Recorded {
  event: string;
  data: unknown;
}

/** Records every event `target` emits, from now on. */
export function record(target: { bind_global(callback: Function): unknown }): Recorded[] {
  const events: Recorded[] = [];
  target.bind_global((event: string, data: unknown) => events.push({ event, data }));
  return events;
}

/** The names of recorded events, for compact assertions. */
export function names(events: readonly Recorded[]): string[] {
  return events.map((e) => e.event);
}

/**
 * `client.signin()` and resolves once the server accepted it and the client's `#server-to-user-{id}` subscription
 * succeeded (so `sendToUser` reaches it). Rejects on `pusher:signin_error` or after the bound.
 */
export async function signedIn(client: PusherClient, timeoutMs = WAIT_MS): Promise<void> {
  client.signin();
  const user = client.user;
  const failed = (error: unknown) => reject(new Error(`signin failed: ${JSON.stringify(error)}`));
  let reject: (error: Error) => void = () => {};
  const refused = new Promise<never>((_, r) => {
    reject = r;
  });
  user.bind('pusher:signin_error', failed);
  try {
    await within(Promise.race([user.signinDonePromise, refused]), 'signin_success', timeoutMs);
  } finally {
    user.unbind('pusher:signin_error', failed);
  }
  const channel = user.serverToUserChannel;
  if (!channel.subscribed) await nextEvent(channel, 'pusher:subscription_succeeded', timeoutMs);
}
