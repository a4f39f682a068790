/** Client frame → typed message, or the reason it is rejected. Pure: no I/O, no state. */
import { clipped } from './clip.js';
import { CLIENT_EVENT_PREFIX, Events } from './events.js';
import { Errors, type FrameError, type SubscriptionError } from './errors.js';
import type { ClientMessage, Decoded } from './messages.js';

export type DecodeErrorReason = 'invalid_json' | 'invalid_message' | 'unknown_event';

/**
 * A refused frame. `subscribeChannel` is the channel of a malformed `pusher:subscribe` whose channel name could be read:
 * the client waits on that channel, so it is answered with `pusher:subscription_error` there rather than `pusher:error`.
 */
export type DecodeFailure = { ok: false; reason: DecodeErrorReason; message: string } & (
  | { error: FrameError; subscribeChannel: undefined }
  | { error: SubscriptionError; subscribeChannel: string }
);

export type DecodeResult = { ok: true; value: Decoded } | DecodeFailure;

/** A frame refused with a `pusher:error` (the registry error, its message filled in). */
const fail = (reason: DecodeErrorReason, error: FrameError, message: string = error.message): DecodeFailure => ({
  ok: false,
  reason,
  error,
  message,
  subscribeChannel: undefined,
});

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * pusher-js sends `data` as an object; some clients send it JSON-encoded. Both are accepted. The string's nesting was held
 * to MAX_JSON_DEPTH by the frame scan (frame-scan.ts, `PARSED_DATA_EVENTS`) before this parse, as an object's is.
 */
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
    return fail('invalid_json', Errors.FRAME_INVALID_JSON);
  }
  if (!isRecord(raw)) return fail('invalid_message', Errors.FRAME_NOT_OBJECT);
  const event = raw.event;
  if (typeof event !== 'string' || event.length === 0) return fail('invalid_message', Errors.FRAME_MISSING_EVENT);
  const traceparent =
    typeof raw.traceparent === 'string' && TRACEPARENT.test(raw.traceparent) ? raw.traceparent : undefined;
  const message = decodeEvent(event, raw);
  if (typeof message === 'string') {
    const error = message === 'unknown' ? Errors.FRAME_UNKNOWN_EVENT : Errors.FRAME_INVALID_MESSAGE;
    return fail(message === 'unknown' ? 'unknown_event' : 'invalid_message', error, error.format(clipped(event, 64)));
  }
  if ('invalidSubscribe' in message) {
    const error = message.invalidSubscribe;
    return { ok: false, reason: 'invalid_message', error, message: error.message, subscribeChannel: message.channel };
  }
  return { ok: true, value: { message, traceparent } };
}

/** A subscribe whose channel is readable but whose other fields are not usable: why, for the subscription_error. */
interface InvalidSubscribe {
  channel: string;
  invalidSubscribe: SubscriptionError;
}

type Failure = 'unknown' | 'invalid' | InvalidSubscribe;

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
      // A client library serialising an unset field writes null (`"auth": null` on a public channel): absent, as pusher-js
      // leaves it out; a private channel then answers its missing signature.
      const auth = d.auth === null ? undefined : d.auth;
      if (auth !== undefined && typeof auth !== 'string') return { channel, invalidSubscribe: Errors.SUBSCRIBE_AUTH_NOT_STRING };
      // pusher-js 7 setups whose authorizer answers `channel_data: null` for a private channel send it as null: absent.
      const channelData = d.channel_data === null ? undefined : d.channel_data;
      if (channelData !== undefined && typeof channelData !== 'string') {
        return { channel, invalidSubscribe: Errors.SUBSCRIBE_CHANNEL_DATA_NOT_STRING };
      }
      return { event: Events.Subscribe, channel, auth, channelData };
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
