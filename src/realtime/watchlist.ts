/**
 * Watchlist events: a signed-in connection whose `user_data.watchlist` names a user is told when that user comes online
 * (its first signed-in connection) or goes offline (its last one closes) — `pusher_internal:watchlist_events`.
 * Called by the cluster engine on the user's first / last signed-in connection in the cluster (Adapter `userPresence`).
 */
import { encodeProtocol } from '../protocol/encode.js';
import { Events } from '../protocol/events.js';
import type { UserPresenceListener } from './hub.js';

export const notifyWatchers: UserPresenceListener = (state, userId, online) => {
  const watchers = state.watchers.get(userId);
  if (watchers === undefined) return;
  const frame = encodeProtocol(Events.WatchlistEvents, {
    events: [{ name: online ? 'online' : 'offline', user_ids: [userId] }],
  });
  for (const connection of watchers) connection.send(frame, 'protocol');
};
