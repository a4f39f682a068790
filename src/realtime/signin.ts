/** `pusher:signin`: user authentication, after which the client subscribes to `#server-to-user-{id}`. */
import { Errors } from '../protocol/errors.js';
import { encodeProtocol } from '../protocol/encode.js';
import { Events } from '../protocol/events.js';
import type { SigninMessage } from '../protocol/messages.js';
import { userAuthString, verifyAuth } from '../protocol/signatures.js';
import type { Connection } from '../transport/connection.js';
import type { RealtimeDeps } from './deps.js';

export async function signin(deps: RealtimeDeps, connection: Connection, message: SigninMessage): Promise<void> {
  const app = connection.app;
  if (!verifyAuth(message.auth, app.key, app.secret, userAuthString(connection.socketId, message.userData))) {
    connection.reject('unauthorized', Errors.SIGNIN_BAD_SIGNATURE.message, Errors.SIGNIN_BAD_SIGNATURE.code, 'auth_failed');
    return;
  }
  let user: unknown;
  try {
    user = JSON.parse(message.userData);
  } catch {
    connection.reject('invalid_message', Errors.SIGNIN_USER_DATA_NOT_JSON.message, Errors.SIGNIN_USER_DATA_NOT_JSON.code);
    return;
  }
  const record = typeof user === 'object' && user !== null ? (user as Record<string, unknown>) : {};
  // Backends with integer ids sign `{"id":1}`: held as "1", as lenient as presence `user_id` (and the same string form, so
  // the client's `#server-to-user-1` matches). `signin_success` still echoes user_data exactly as it was signed.
  const rawId = record.id;
  const id = typeof rawId === 'string' || typeof rawId === 'number' ? String(rawId) : '';
  if (id.length === 0 || id.length > deps.limits.maxPresenceUserIdLength) {
    connection.reject('invalid_message', Errors.SIGNIN_USER_ID_INVALID.message, Errors.SIGNIN_USER_ID_INVALID.code);
    return;
  }
  const watchlist = Array.isArray(record.watchlist) ? record.watchlist.map(String) : [];
  if (watchlist.length > deps.limits.maxWatchlistSize) {
    const error = Errors.SIGNIN_WATCHLIST_TOO_LONG;
    connection.reject('invalid_message', error.format(deps.limits.maxWatchlistSize), error.code);
    return;
  }
  deps.hub.setWatchlist(connection, watchlist);
  deps.hub.setUser(connection, id);
  connection.send(encodeProtocol(Events.SigninSuccess, { user_data: message.userData }), 'protocol');
  connection.logger.info({ event: 'signin', user_id: id }, 'signed in');
  if (watchlist.length > 0) {
    // Who is signed in anywhere in the cluster (the adapter's answer), not only on this node.
    const present = await deps.adapter.usersOnline(app.id, watchlist);
    if (!connection.isOpen) return;
    const online = watchlist.filter((id) => present.has(id));
    const offline = watchlist.filter((id) => !present.has(id));
    const events = [];
    if (online.length > 0) events.push({ name: 'online', user_ids: online });
    if (offline.length > 0) events.push({ name: 'offline', user_ids: offline });
    connection.send(encodeProtocol(Events.WatchlistEvents, { events }), 'protocol');
  }
}
