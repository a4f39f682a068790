/** `GET /channels`, `GET /channels/{name}`, `GET /channels/{name}/users`. */
import type { FastifyInstance } from 'fastify';
import { clipped } from '../../protocol/clip.js';
import { channelKind, isUserChannel, isValidChannelName, type ChannelNameLimits } from '../../protocol/channel-name.js';
import { Errors } from '../../protocol/errors.js';
import type { ApiDeps } from '../api-deps.js';
import { ApiError } from '../api-error.js';
import { SHOWN_CHANNEL_NAME_LENGTH } from '../publish-request.js';
import type { AppRequest } from '../request-app.js';

function infoList(info: unknown): string[] {
  // Each attribute once: `info=cache,cache,…` (thousands fit in a header) read the cache once per mention, one by one.
  return typeof info === 'string' && info.length > 0 ? [...new Set(info.split(',').map((s) => s.trim()))] : [];
}

/**
 * The `{name}` of `/channels/{name}`, refused as a publish to it would be: no client can subscribe to an invalid name, so
 * answering it as an empty channel would hide a backend's typo.
 */
function channelParam(name: string, limits: ChannelNameLimits): string {
  if (!isValidChannelName(name, limits)) {
    throw ApiError.of(Errors.API_INVALID_CHANNEL_NAME, name.slice(0, SHOWN_CHANNEL_NAME_LENGTH));
  }
  return name;
}

export function registerChannelRoutes(scope: FastifyInstance, deps: ApiDeps): void {
  scope.get<AppRequest & { Querystring: { filter_by_prefix?: string; info?: string } }>('/channels', async (request) => {
    const app = request.beaconApp;
    const prefix = request.query.filter_by_prefix ?? '';
    const info = infoList(request.query.info);
    for (const attribute of info) {
      if (attribute !== 'user_count') throw ApiError.of(Errors.API_UNKNOWN_INFO, clipped(attribute, 32));
    }
    if (info.includes('user_count') && !prefix.startsWith('presence-')) {
      throw ApiError.of(Errors.API_USER_COUNT_NEEDS_PREFIX);
    }
    const userCount = info.includes('user_count');
    const channels: Array<[string, { user_count?: number }]> = [];
    // Only the channels answered are read (on Redis each costs commands): the prefix and the user channels' exclusion
    // are applied to the names first.
    const include = (name: string): boolean => !isUserChannel(name);
    for (const [name, counts] of await deps.adapter.channels(app.id, { prefix, include, userCount })) {
      channels.push([name, userCount ? { user_count: counts.userCount } : {}]);
    }
    // fromEntries defines each name as an own key: assigning `__proto__` (a valid name) would set the prototype instead.
    return { channels: Object.fromEntries(channels) };
  });

  scope.get<AppRequest & { Params: { channel: string }; Querystring: { info?: string } }>(
    '/channels/:channel',
    async (request) => {
      const app = request.beaconApp;
      const name = channelParam(request.params.channel, deps.config);
      const kind = channelKind(name);
      const info = infoList(request.query.info);
      const counts = await deps.adapter.channel(app.id, name);
      const out: Record<string, unknown> = { occupied: counts.subscriptionCount > 0 };
      for (const attribute of info) {
        if (attribute === 'user_count') {
          if (!kind.presence) throw ApiError.of(Errors.API_USER_COUNT_NOT_PRESENCE);
          out.user_count = counts.userCount;
        } else if (attribute === 'subscription_count') {
          out.subscription_count = counts.subscriptionCount;
        } else if (attribute === 'cache') {
          if (!kind.cache) throw ApiError.of(Errors.API_CACHE_NOT_CACHE_CHANNEL);
          const cached = await deps.adapter.cacheGet(app.id, name);
          if (cached !== undefined) out.cache = { event: cached.event, data: cached.data };
        } else {
          throw ApiError.of(Errors.API_UNKNOWN_INFO, clipped(attribute, 32));
        }
      }
      return out;
    },
  );

  scope.get<AppRequest & { Params: { channel: string } }>('/channels/:channel/users', async (request) => {
    const app = request.beaconApp;
    const name = channelParam(request.params.channel, deps.config);
    if (!channelKind(name).presence) throw ApiError.of(Errors.API_USERS_NOT_PRESENCE);
    const members = await deps.adapter.members(app.id, name);
    return { users: [...members.keys()].map((id) => ({ id })) };
  });
}
