/** Validation of one event of `POST /events` or of a `batch_events` item, and the `info` attributes of the answer. */
import type { ChannelCounts } from '../adapters/adapter.js';
import { channelKind, isValidChannelName } from '../protocol/channel-name.js';
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
  if (!isRecord(body)) throw new ApiError(400, 'Body must be a JSON object');
  const { name, data, channel, channels, socket_id: socketId, info } = body;
  if (typeof name !== 'string' || name.length === 0) throw new ApiError(400, '"name" must be a non-empty string');
  if (name.length > config.maxEventNameLength) {
    throw new ApiError(400, `"name" longer than ${config.maxEventNameLength} characters`);
  }
  if (typeof data !== 'string') throw new ApiError(400, '"data" must be a string (JSON-encode objects)');
  if (Buffer.byteLength(data) > config.maxPayloadBytes) {
    throw new ApiError(413, `"data" over ${config.maxPayloadBytes} bytes`);
  }
  let list: string[];
  if (typeof channel === 'string' && channels === undefined) list = [channel];
  else if (!batch && Array.isArray(channels) && channel === undefined) list = channels as string[];
  else throw new ApiError(400, batch ? '"channel" must be a string' : 'Give exactly one of "channel" or "channels"');
  if (list.length === 0) throw new ApiError(400, '"channels" is empty');
  if (list.length > config.maxChannelsPerPublish) {
    throw new ApiError(400, `More than ${config.maxChannelsPerPublish} channels`);
  }
  for (const c of list) {
    // `#server-to-user-{id}` is how the SDK's sendToUser addresses a user; isValidChannelName refuses any other `#` name.
    if (typeof c !== 'string' || !isValidChannelName(c, config.maxChannelNameLength)) {
      throw new ApiError(400, `Invalid channel name: ${String(c).slice(0, 64)}`);
    }
  }
  if (list.length > 1 && list.some((c) => channelKind(c).encrypted)) {
    throw new ApiError(400, 'An encrypted channel must be the only channel of a publish');
  }
  if (socketId !== undefined && (typeof socketId !== 'string' || !SOCKET_ID.test(socketId))) {
    throw new ApiError(400, '"socket_id" must look like 123.456');
  }
  const infoList = typeof info === 'string' && info.length > 0 ? info.split(',').map((s) => s.trim()) : [];
  for (const attribute of infoList) {
    if (attribute !== 'user_count' && attribute !== 'subscription_count') {
      throw new ApiError(400, `Unknown info attribute: ${attribute.slice(0, 32)}`);
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
