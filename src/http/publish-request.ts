/**
 * The bodies of `POST /events` and `POST /batch_events`, declared as zod schemas and built once per configuration (the
 * limits are part of them), and the `info` attributes of the answer.
 *
 * Validation runs in the route handler, after the signing hook (api.ts) verified the signature over the query and the raw
 * body's `body_md5`, and after the body was parsed: an unsigned body is never parsed, let alone validated. Each check
 * answers with its registry error (protocol/errors.ts), the first failing one in field order — the same Pusher-style
 * `{ "error": reason }` and status the hand-written checks gave. Parsed in the handler rather than through a route `schema`
 * and a type provider: fastify-type-provider-zod 7 requires @fastify/swagger as a peer, a runtime dependency for nothing
 * here, and the handler keeps the order "signature, body_md5, JSON, schema" visible in one place.
 */
import { z } from 'zod';
import type { ChannelCounts } from '../adapters/adapter.js';
import { channelKind, hasAtMostCharacters, isValidChannelName } from '../protocol/channel-name.js';
import { SOCKET_ID } from '../protocol/encode.js';
import { Errors, type ErrorName, type HttpError } from '../protocol/errors.js';
import type { Config } from '../config.js';
import { ApiError } from './api-error.js';

/** One event to publish, as the routes use it. */
export interface EventRequest {
  name: string;
  data: string;
  channels: string[];
  socketId: string | undefined;
  info: string[];
}

/** The limits the schemas are built from. */
export type PublishLimits = Pick<
  Config,
  'maxPayloadBytes' | 'maxChannelsPerPublish' | 'maxBatchSize' | 'maxChannelNameLength' | 'maxPresenceUserIdLength' | 'maxEventNameLength'
>;

const INFO_ATTRIBUTES = ['user_count', 'subscription_count'] as const;

/**
 * zod options answering `error` (message filled with `args`, or computed from the refused value). A zod issue carries only
 * its message, so the message is the registry error's name, a space, then the answer's text: `parseBody` reads the error
 * back from it (its status, and the reason the refusal is counted under: api-refusals.ts). A name holds no space; the text
 * after it may hold anything of the client's.
 */
function answer(error: HttpError, args: (input: unknown) => ReadonlyArray<string | number> = () => []) {
  return { error: (issue: { input?: unknown }) => `${error.name} ${error.format(...args(issue.input))}` };
}

/** The registry's HTTP error named `name`, if there is one. */
function httpError(name: string): HttpError | undefined {
  if (!Object.hasOwn(Errors, name)) return undefined;
  const error = Errors[name as ErrorName];
  return error.kind === 'http' ? error : undefined;
}

/**
 * What a refusal shows of the value it refused: the first `length` characters of a string (or number, boolean), the JSON
 * type of anything else. Never `String(value)`: an object whose `toString` is not a function (`{"toString": 1}`) throws,
 * and an array nested thousands deep overflows the stack — a client's body answered 500 and logged as the server's error.
 */
const clip = (length: number) => (input: unknown): [string] => {
  switch (typeof input) {
    case 'string':
      return [input.slice(0, length)];
    case 'number':
    case 'boolean':
      return [String(input).slice(0, length)];
    default:
      return [input === null ? 'null' : Array.isArray(input) ? '(an array)' : '(an object)'];
  }
};

/** Event names the protocol keeps for itself (Pusher reserves them); the HTTP API refuses them. */
const RESERVED_EVENT_PREFIXES = ['pusher:', 'pusher_internal:'];

/** How much of a refused channel name its API_INVALID_CHANNEL_NAME message shows (here and on `/channels/{name}`). */
export const SHOWN_CHANNEL_NAME_LENGTH = 64;

/** The schemas of one event (`/events` or a batch item) and of a batch, for the given limits. */
export function publishSchemas(limits: PublishLimits) {
  const invalidName = answer(Errors.API_INVALID_CHANNEL_NAME, clip(SHOWN_CHANNEL_NAME_LENGTH));
  // `#server-to-user-{id}` is how the SDK's sendToUser addresses a user, with any id sign-in accepts (`auth0|…`);
  // isValidChannelName refuses any other `#` name.
  const channelName = z.string(invalidName).refine((c) => isValidChannelName(c, limits), invalidName);
  const fields = {
    name: z
      .string(answer(Errors.API_EVENT_NAME_INVALID))
      .min(1, answer(Errors.API_EVENT_NAME_INVALID))
      // In characters, as user ids are (an emoji is one): counted in UTF-16 units, an emoji name had half the limit.
      .refine((n) => hasAtMostCharacters(n, limits.maxEventNameLength), answer(Errors.API_EVENT_NAME_TOO_LONG, () => [limits.maxEventNameLength]))
      // pusher-js handles a `pusher_internal:` event on a channel as the server's own (a member_added adds a member) and
      // passes a `pusher:` one to the app's bindings as if it had come from the client library: neither may be forged.
      .refine((n) => !RESERVED_EVENT_PREFIXES.some((p) => n.startsWith(p)), answer(Errors.API_EVENT_NAME_RESERVED)),
    data: z
      .string(answer(Errors.API_DATA_NOT_STRING))
      .refine((d) => Buffer.byteLength(d) <= limits.maxPayloadBytes, answer(Errors.API_DATA_TOO_LARGE, () => [limits.maxPayloadBytes])),
    // `null` and "" exclude no one, as no `socket_id` does: the Node SDK checks a socket id only when it is truthy and
    // sends what it was given, so `socket_id: req.get('X-Socket-Id') ?? null` (a request with no sender to exclude) had
    // the whole publish refused.
    socket_id: z.preprocess(
      (v) => (v === null || v === '' ? undefined : v),
      z.string(answer(Errors.API_INVALID_SOCKET_ID)).regex(SOCKET_ID, answer(Errors.API_INVALID_SOCKET_ID)).optional(),
    ),
    // Anything but a non-empty string asks for no attributes, as before; each attribute once (`info=cache,cache,…`).
    info: z
      .unknown()
      .optional()
      .transform((v) => (typeof v === 'string' && v.length > 0 ? [...new Set(v.split(',').map((s) => s.trim()))] : []))
      .pipe(z.array(z.enum(INFO_ATTRIBUTES, answer(Errors.API_UNKNOWN_INFO, clip(32))))),
  };
  const toRequest = (e: { name: string; data: string; socket_id?: string | undefined; info: string[] }, channels: string[]) => ({
    name: e.name,
    data: e.data,
    channels,
    socketId: e.socket_id,
    info: e.info,
  });

  const item = z
    .object({ ...fields, channel: z.string(answer(Errors.API_CHANNEL_NOT_STRING)).pipe(channelName) }, answer(Errors.API_BODY_NOT_OBJECT))
    .transform((e): EventRequest => toRequest(e, [e.channel]));

  const event = z
    .object(
      {
        ...fields,
        channel: z.string(answer(Errors.API_CHANNEL_OR_CHANNELS)).pipe(channelName).optional(),
        channels: z
          .array(channelName, answer(Errors.API_CHANNEL_OR_CHANNELS))
          .min(1, answer(Errors.API_CHANNELS_EMPTY))
          .max(limits.maxChannelsPerPublish, answer(Errors.API_TOO_MANY_CHANNELS, () => [limits.maxChannelsPerPublish]))
          .optional(),
      },
      answer(Errors.API_BODY_NOT_OBJECT),
    )
    .refine((e) => (e.channel === undefined) !== (e.channels === undefined), answer(Errors.API_CHANNEL_OR_CHANNELS))
    // A channel named twice gets the event once: its subscribers are the same, and a duplicate delivery is what a publisher
    // never means (the spec says nothing; the first mention's order is kept, the answer's `channels` lists it once).
    .transform((e): EventRequest => toRequest(e, e.channel !== undefined ? [e.channel] : distinct(e.channels ?? [])))
    .refine((e) => e.channels.length === 1 || !e.channels.some((c) => channelKind(c).encrypted), answer(Errors.API_ENCRYPTED_NOT_ALONE));

  const batch = z
    .object(
      {
        // The size is checked before any item: an oversized batch costs no item validation.
        batch: z
          .array(z.unknown(), answer(Errors.API_BATCH_NOT_ARRAY))
          .max(
            limits.maxBatchSize,
            answer(Errors.API_BATCH_TOO_LARGE, (input) => [Array.isArray(input) ? input.length : 0, limits.maxBatchSize]),
          )
          .pipe(z.array(item)),
      },
      answer(Errors.API_BATCH_NOT_ARRAY),
    )
    .transform((b) => b.batch);

  return { event, batch };
}

/** `channels` without repeats, in the order of first mention; the array itself when it has one (the SDKs' usual list). */
function distinct(channels: string[]): string[] {
  return channels.length < 2 ? channels : [...new Set(channels)];
}

/** The schemas of one configuration. */
export type PublishSchemas = ReturnType<typeof publishSchemas>;

/**
 * Validates `body` with `schema`; throws the ApiError of the first failing check (in field order). An issue none of
 * `answer`'s messages raised (none is known) is answered API_INVALID_REQUEST, never with zod's text.
 */
export function parseBody<T>(schema: z.ZodType<T>, body: unknown): T {
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  const message = result.error.issues[0]?.message ?? '';
  const space = message.indexOf(' ');
  const error = space === -1 ? undefined : httpError(message.slice(0, space));
  throw error === undefined ? ApiError.of(Errors.API_INVALID_REQUEST) : ApiError.filled(error, message.slice(space + 1));
}

/** `info` attributes of one channel; `user_count` only for presence channels. */
export function channelInfo(name: string, counts: ChannelCounts, info: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  if (info.includes('user_count') && channelKind(name).presence) out.user_count = counts.userCount;
  if (info.includes('subscription_count')) out.subscription_count = counts.subscriptionCount;
  return out;
}
