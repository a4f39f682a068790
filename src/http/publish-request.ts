/** Validation of one event of `POST /events` or of a `batch_events` item, and the `info` attributes of the answer. */
import type { ChannelCounts } from '../adapters/adapter.js';
import { channelKind, isValidChannelName } from '../protocol/channel-name.js';
import { Errors } from '../protocol/errors.js';
import { ApiError, type ApiDeps } from './api-deps.js';

export interface EventRequest {
  name: string;
  data: string;
  channels: string[];
  socketId: string | undefined;
  info: string[];
}

const SOCKET_ID = /^\d+\.\d+$/;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Parses and checks one event; throws ApiError(400|413) with the reason. */
export function parseEventRequest(body: unknown, config: ApiDeps['config'], batch: boolean): EventRequest {
  if (!isRecord(body)) throw new ApiError(Errors.API_BODY_NOT_OBJECT);
  const { name, data, channel, channels, socket_id: socketId, info } = body;
  if (typeof name !== 'string' || name.length === 0) throw new ApiError(Errors.API_EVENT_NAME_INVALID);
  if (name.length > config.maxEventNameLength) {
    throw new ApiError(Errors.API_EVENT_NAME_TOO_LONG, config.maxEventNameLength);
  }
  if (typeof data !== 'string') throw new ApiError(Errors.API_DATA_NOT_STRING);
  if (Buffer.byteLength(data) > config.maxPayloadBytes) {
    throw new ApiError(Errors.API_DATA_TOO_LARGE, config.maxPayloadBytes);
  }
  let list: string[];
  if (typeof channel === 'string' && channels === undefined) list = [channel];
  else if (!batch && Array.isArray(channels) && channel === undefined) list = channels as string[];
  else throw new ApiError(batch ? Errors.API_CHANNEL_NOT_STRING : Errors.API_CHANNEL_OR_CHANNELS);
  if (list.length === 0) throw new ApiError(Errors.API_CHANNELS_EMPTY);
  if (list.length > config.maxChannelsPerPublish) {
    throw new ApiError(Errors.API_TOO_MANY_CHANNELS, config.maxChannelsPerPublish);
  }
  for (const c of list) {
    // `#server-to-user-{id}` is how the SDK's sendToUser addresses a user; isValidChannelName refuses any other `#` name.
    if (typeof c !== 'string' || !isValidChannelName(c, config.maxChannelNameLength)) {
      throw new ApiError(Errors.API_INVALID_CHANNEL_NAME, String(c).slice(0, 64));
    }
  }
  if (list.length > 1 && list.some((c) => channelKind(c).encrypted)) {
    throw new ApiError(Errors.API_ENCRYPTED_NOT_ALONE);
  }
  if (socketId !== undefined && (typeof socketId !== 'string' || !SOCKET_ID.test(socketId))) {
    throw new ApiError(Errors.API_INVALID_SOCKET_ID);
  }
  const infoList = typeof info === 'string' && info.length > 0 ? info.split(',').map((s) => s.trim()) : [];
  for (const attribute of infoList) {
    if (attribute !== 'user_count' && attribute !== 'subscription_count') {
      throw new ApiError(Errors.API_UNKNOWN_INFO, attribute.slice(0, 32));
    }
  }
  return { name, data, channels: list, socketId, info: infoList };
}

/** `info` attributes of one channel; `user_count` only for presence channels. */
export function channelInfo(name: string, counts: ChannelCounts, info: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  if (info.includes('user_count') && channelKind(name).presence) out.user_count = counts.userCount;
  if (info.includes('subscription_count')) out.subscription_count = counts.subscriptionCount;
  return out;
}
