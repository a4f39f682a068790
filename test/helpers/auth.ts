/**
 * Real channel authorization and user authentication for pusher-js, signed by the real `pusher` SDK in-process: the
 * `customHandler`s stand in for an app backend's `/pusher/auth` and `/pusher/user-auth` endpoints.
 */
import type Pusher from 'pusher';
import type { PusherClientOptions } from './pusher-js.js';

export interface Identity {
  /** Presence membership signed into `channel_data` (presence channels only). */
  presence?: Pusher.PresenceChannelData;
  /** User data signed for `pusher:signin`. */
  user?: Pusher.UserChannelData;
}

/** pusher-js options whose auth handlers sign with `sdk` (give it a wrong secret to get bad signatures). */
export function authOptions(sdk: Pusher, identity: Identity = {}): Partial<PusherClientOptions> {
  return {
    channelAuthorization: {
      customHandler: ({ socketId, channelName }, callback) => {
        try {
          const presence = channelName.startsWith('presence-') ? identity.presence : undefined;
          callback(null, sdk.authorizeChannel(socketId, channelName, presence));
        } catch (err) {
          callback(err as Error, null);
        }
      },
    },
    userAuthentication: {
      customHandler: ({ socketId }, callback) => {
        try {
          if (identity.user === undefined) throw new Error('this test client has no user to sign in');
          callback(null, sdk.authenticateUser(socketId, identity.user));
        } catch (err) {
          callback(err as Error, null);
        }
      },
    },
  };
}
