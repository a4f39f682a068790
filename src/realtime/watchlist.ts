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
  let frame: string | undefined;
  for (const connection of watchers) {
    // A connection still waiting for its first watchlist frame (signin.ts) gets the change after it.
    if (connection.holdsWatchlistChange(userId, online)) continue;
    frame ??= watchlistFrame(userId, online);
    connection.send(frame, 'protocol');
  }
};

/** The `pusher_internal:watchlist_events` frame of one change. */
export function watchlistFrame(userId: string, online: boolean): string {
  return encodeProtocol(Events.WatchlistEvents, { events: [{ name: online ? 'online' : 'offline', user_ids: [userId] }] });
}
