/** `pusher:signin`: user authentication, after which the client subscribes to `#server-to-user-{id}`. */
import { context, type Context } from '@opentelemetry/api';
import { exactUserId, isValidUserId, signedUserId } from '../protocol/channel-name.js';
import { Errors } from '../protocol/errors.js';
import { encodeProtocol } from '../protocol/encode.js';
import { Events } from '../protocol/events.js';
import type { SigninMessage } from '../protocol/messages.js';
import { userAuthString, verifyAuth } from '../protocol/signatures.js';
import type { Connection } from '../transport/connection.js';
import type { RealtimeDeps } from './deps.js';
import { watchlistFrame } from './watchlist.js';

export async function signin(deps: RealtimeDeps, connection: Connection, message: SigninMessage): Promise<void> {
  // The frame's span, re-entered after the await (subscribe.ts says why).
  const traced = context.active();
  const app = connection.app;
  if (!verifyAuth(message.auth, app.key, app.secret, userAuthString(connection.socketId, message.userData))) {
    connection.reject({
      reason: 'unauthorized',
      message: Errors.SIGNIN_BAD_SIGNATURE.message,
      code: Errors.SIGNIN_BAD_SIGNATURE.code,
      logAs: 'auth_failed',
    });
    return;
  }
  let user: unknown;
  try {
    user = JSON.parse(message.userData);
  } catch {
    connection.reject({ reason: 'invalid_message', message: Errors.SIGNIN_USER_DATA_NOT_JSON.message, code: Errors.SIGNIN_USER_DATA_NOT_JSON.code });
    return;
  }
  const record = typeof user === 'object' && user !== null ? (user as Record<string, unknown>) : {};
  // Backends with integer ids sign `{"id":1}`: held as "1", as lenient as presence `user_id` (and the same string form, so
  // the client's `#server-to-user-1` matches). `signin_success` still echoes user_data exactly as it was signed.
  const id = exactUserId(record.id, 'id', message.userData)?.id ?? '';
  // The same rule makes its `#server-to-user-{id}` channel valid (protocol/channel-name.ts), whatever its characters.
  if (!isValidUserId(id, deps.limits.maxPresenceUserIdLength)) {
    const error = Errors.SIGNIN_USER_ID_INVALID;
    connection.reject({ reason: 'invalid_message', message: error.format(deps.limits.maxPresenceUserIdLength), code: error.code });
    return;
  }
  // A connection is one user for its life: a second sign-in as another user is refused and the first identity kept
  // (its user channel, terminate index and watchlist stay consistent). Signing in again as the same user goes on.
  if (connection.userId !== undefined && connection.userId !== id) {
    connection.reject({ reason: 'unauthorized', message: Errors.SIGNIN_OTHER_USER.message, code: Errors.SIGNIN_OTHER_USER.code });
    return;
  }
  const watchlist = watchlistOf(record.watchlist, deps.limits.maxWatchlistSize, deps.limits.maxPresenceUserIdLength);
  if (watchlist === 'too_long') {
    const error = Errors.SIGNIN_WATCHLIST_TOO_LONG;
    connection.reject({ reason: 'invalid_message', message: error.format(deps.limits.maxWatchlistSize), code: error.code });
    return;
  }
  if (watchlist === 'invalid') {
    const error = Errors.SIGNIN_WATCHLIST_INVALID;
    connection.reject({ reason: 'invalid_message', message: error.message, code: error.code });
    return;
  }
  deps.hub.setWatchlist(connection, watchlist);
  if (watchlist.length === 0) {
    await signedIn(deps, connection, id, message.userData, traced);
    return;
  }
  // Changes of watched users that arrive before the first watchlist frame is sent are held, then sent after it, except
  // those it already says: the cluster's answer below may or may not include a change that arrived while it was asked.
  connection.holdWatchlist();
  let told: Map<string, boolean> | undefined;
  try {
    await signedIn(deps, connection, id, message.userData, traced);
    if (!connection.isOpen) return;
    // Who is signed in anywhere in the cluster (the adapter's answer), not only on this node.
    const present = await deps.adapter.usersOnline(app.id, watchlist);
    if (!connection.isOpen) return;
    const online = watchlist.filter((id) => present.has(id));
    const offline = watchlist.filter((id) => !present.has(id));
    const events: { name: 'online' | 'offline'; user_ids: string[] }[] = [];
    if (online.length > 0) events.push({ name: 'online', user_ids: online });
    if (offline.length > 0) events.push({ name: 'offline', user_ids: offline });
    context.with(traced, () => connection.send(encodeProtocol(Events.WatchlistEvents, { events }), 'protocol'));
    told = new Map(watchlist.map((id) => [id, present.has(id)]));
  } finally {
    // Without a first frame (the adapter failed, the connection closed) every held change goes out as it came.
    for (const { userId, online } of connection.releaseWatchlist()) {
      if (told?.get(userId) === online) continue;
      told?.set(userId, online);
      connection.send(watchlistFrame(userId, online), 'protocol');
    }
  }
}

/**
 * The watched users, each once, in their first order: user ids as `id` must be (a string, or a number held as its
 * string). None when the field is absent or null. Anything else is refused rather than turned into text: `String()` made
 * `{}` the id "[object Object]", and an object whose `toString` is not a function, or arrays nested thousands deep, threw
 * inside the handler (a `handler_failed` error line, and no answer). Counted before anything is read: work bounded by
 * `MAX_WATCHLIST_SIZE`.
 */
function watchlistOf(raw: unknown, maxSize: number, maxIdLength: number): string[] | 'too_long' | 'invalid' {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) return 'invalid';
  if (raw.length > maxSize) return 'too_long';
  const ids = new Set<string>();
  for (const entry of raw as unknown[]) {
    const id = signedUserId(entry);
    if (id === undefined || !isValidUserId(id, maxIdLength)) return 'invalid';
    ids.add(id);
  }
  return [...ids];
}

/**
 * Records the user cluster-wide, then answers `signin_success`: a watchlist asked on any node right after sees it online.
 * Logged once, at the first sign-in: signing in again as the same user is answered again but changes nothing, so it is
 * not logged again — a client repeating it within its frame budget wrote an info line each time (a probe: 958 in 5 s).
 */
async function signedIn(deps: RealtimeDeps, connection: Connection, id: string, userData: string, traced: Context): Promise<void> {
  const first = connection.userId === undefined;
  await deps.hub.setUser(connection, id);
  if (!connection.isOpen) return;
  context.with(traced, () => {
    connection.send(encodeProtocol(Events.SigninSuccess, { user_data: userData }), 'protocol');
    if (first) connection.log('info', { event: 'signin', user_id: id }, 'signed in');
  });
}
