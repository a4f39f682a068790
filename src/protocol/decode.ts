/** Client frame → typed message, or the reason it is rejected. Pure: no I/O, no state. */
import { CLIENT_EVENT_PREFIX, Events } from './events.js';
import type { ClientMessage, Decoded } from './messages.js';

export type DecodeErrorReason = 'invalid_json' | 'invalid_message' | 'unknown_event';

/**
 * A refused frame. `subscribeChannel` is the channel of a malformed `pusher:subscribe` whose channel name could be read:
 * the client waits on that channel, so it is answered with `pusher:subscription_error` there rather than `pusher:error`.
 */
export interface DecodeFailure {
  ok: false;
  reason: DecodeErrorReason;
  message: string;
  subscribeChannel: string | undefined;
}

export type DecodeResult = { ok: true; value: Decoded } | DecodeFailure;

const fail = (reason: DecodeErrorReason, message: string, subscribeChannel?: string): DecodeFailure => ({
  ok: false,
  reason,
  message,
  subscribeChannel,
});

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** pusher-js sends `data` as an object; some clients send it JSON-encoded. Both are accepted. */
function dataObject(data: unknown): Record<string, unknown> | undefined {
  if (isRecord(data)) return data;
  if (typeof data === 'string') {
    try {
      const parsed: unknown = JSON.parse(data);
      return isRecord(parsed) ? parsed : undefined;
    } catch {
      return undefined;
    }
  }
  return undefined;
}

const TRACEPARENT = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;

/** Decodes one text frame. */
export function decodeClientFrame(text: string): DecodeResult {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return fail('invalid_json', 'Invalid JSON');
  }
  if (!isRecord(raw)) return fail('invalid_message', 'A frame must be a JSON object');
  const event = raw.event;
  if (typeof event !== 'string' || event.length === 0) return fail('invalid_message', 'Missing "event"');
  const traceparent =
    typeof raw.traceparent === 'string' && TRACEPARENT.test(raw.traceparent) ? raw.traceparent : undefined;
  const message = decodeEvent(event, raw);
  if (typeof message === 'string') {
    return fail(message === 'unknown' ? 'unknown_event' : 'invalid_message', describe(message, event));
  }
  if ('invalidSubscribe' in message) return fail('invalid_message', message.invalidSubscribe, message.channel);
  return { ok: true, value: { message, traceparent } };
}

/** A subscribe whose channel is readable but whose other fields are not usable: why, for the subscription_error. */
interface InvalidSubscribe {
  channel: string;
  invalidSubscribe: string;
}

type Failure = 'unknown' | 'invalid' | InvalidSubscribe;

function describe(failure: Failure, event: string): string {
  return failure === 'unknown' ? `Unknown event: ${event.slice(0, 64)}` : `Invalid ${event.slice(0, 64)} message`;
}

function decodeEvent(event: string, raw: Record<string, unknown>): ClientMessage | Failure {
  switch (event) {
    case Events.Ping:
      return { event: Events.Ping };
    case Events.Pong:
      return { event: Events.Pong };
    case Events.Subscribe: {
      const d = dataObject(raw.data);
      if (d === undefined || typeof d.channel !== 'string') return 'invalid';
      const channel = d.channel;
      if (d.auth !== undefined && typeof d.auth !== 'string') return { channel, invalidSubscribe: '"auth" must be a string' };
      // pusher-js 7 setups whose authorizer answers `channel_data: null` for a private channel send it as null: absent.
      const channelData = d.channel_data === null ? undefined : d.channel_data;
      if (channelData !== undefined && typeof channelData !== 'string') {
        return { channel, invalidSubscribe: '"channel_data" must be a JSON-encoded string' };
      }
      return { event: Events.Subscribe, channel, auth: d.auth, channelData };
    }
    case Events.Unsubscribe: {
      const d = dataObject(raw.data);
      if (d === undefined || typeof d.channel !== 'string') return 'invalid';
      return { event: Events.Unsubscribe, channel: d.channel };
    }
    case Events.Signin: {
      const d = dataObject(raw.data);
      if (d === undefined || typeof d.auth !== 'string' || typeof d.user_data !== 'string') return 'invalid';
      return { event: Events.Signin, auth: d.auth, userData: d.user_data };
    }
    default:
      if (event.startsWith(CLIENT_EVENT_PREFIX)) {
        if (typeof raw.channel !== 'string') return 'invalid';
        return { event: 'client_event', name: event, channel: raw.channel, data: raw.data };
      }
      return 'unknown';
  }
}
