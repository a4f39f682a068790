/** Channel names: their type (from the prefix) and validity. Pure. */
import type { ChannelType } from './channel-type.js';

export type { ChannelType };

/** Everything the server needs to know about a channel from its name alone. */
export interface ChannelKind {
  /** The bounded `channel_type` label: public | private | presence | encrypted | cache. */
  type: ChannelType;
  /** Subscribing needs an auth signature. */
  requiresAuth: boolean;
  presence: boolean;
  encrypted: boolean;
  /** The last event is kept and replayed to new subscribers. */
  cache: boolean;
  /** Clients may send `client-*` events here (private and presence, never encrypted). */
  allowsClientEvents: boolean;
}

const NAME_PATTERN = /^[A-Za-z0-9_\-=@,.;]+$/;
/** The server-to-user channel a signed-in connection joins: `#server-to-user-{id}`. */
export const SERVER_TO_USER_PREFIX = '#server-to-user-';

/**
 * Whether `name` is a user's own `#server-to-user-{id}` channel: a sign-in detail, not a channel the app made — left out
 * of `GET /channels`, of the webhooks and of subscription counts.
 */
export function isUserChannel(name: string): boolean {
  return name.startsWith(SERVER_TO_USER_PREFIX);
}

/** What a channel name is checked against (both from configuration). */
export interface ChannelNameLimits {
  /** `MAX_CHANNEL_NAME_LENGTH`: every channel but a user's. */
  maxChannelNameLength: number;
  /** `MAX_PRESENCE_USER_ID_LENGTH`: the longest user id sign-in accepts, so the longest id of a `#server-to-user-` name. */
  maxPresenceUserIdLength: number;
}

/**
 * The user ids `pusher:signin` accepts (held as strings: a signed number is its string form): non-empty, at most
 * `maxLength` characters (code points, as the docs count them: an emoji is one), well-formed Unicode, any characters —
 * `auth0|5f7c…`, `google-oauth2|123`, `user:42` are common ids.
 */
export function isValidUserId(id: string, maxLength: number): boolean {
  return id.length > 0 && hasAtMostCharacters(id, maxLength) && isWellFormed(id);
}

/** Bytes one character of a name may take in JSON: 4 in UTF-8, 12 written as an escaped surrogate pair (`\ud83d\ude00`). */
export const NAME_CHAR_BYTES = 12;

/**
 * Whether `text` has at most `max` characters (code points). Counted only when its UTF-16 length leaves it open: a text
 * of at most `max` units has at most `max` characters, one of over twice `max` units more than `max`.
 */
export function hasAtMostCharacters(text: string, max: number): boolean {
  if (text.length <= max) return true;
  if (text.length > 2 * max) return false;
  let characters = 0;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    // A low surrogate after a high one ends the character it began; a lone one is a character of its own (a review: 399
    // of them passed a limit of 200 as an event name, which nothing else checks for well-formedness).
    if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) i++;
    }
    if (++characters > max) return false;
  }
  return true;
}

/**
 * The held form of a user id as the backend signed it: a string as is, a number as its string (`2` → `"2"`). Anything
 * else is no id, and so is a number that is not an integer a double holds exactly (within ±2^53): JSON parsers round a
 * larger one (`12345678901234567890` is read as …7000, `1e999` as Infinity), so it would be held, listed and echoed as
 * another id than the one signed.
 */
export function signedUserId(raw: unknown): string | undefined {
  if (typeof raw === 'string') return raw;
  return typeof raw === 'number' && Number.isSafeInteger(raw) ? String(raw) : undefined;
}

/**
 * A user id as `signedUserId` reads it (`id`), and as it is echoed where a member is (`echoed`: the signed value, a number
 * staying a number) — except an integer past ±2^53 (a snowflake id; PHP's `json_encode` of a 64-bit int), which JSON
 * parsers round: it is taken from the signed text itself (`text`, the `channel_data` or `user_data` `raw` was parsed
 * from), exactly as signed, and held and echoed as that digit string. Otherwise (`1e999`, a fraction, an id written with
 * an exponent or under an escaped key) no id.
 */
export function exactUserId(raw: unknown, field: string, text: string): { id: string; echoed: string | number } | undefined {
  const id = signedUserId(raw);
  if (id !== undefined) return { id, echoed: raw as string | number };
  if (typeof raw !== 'number' || !Number.isInteger(raw)) return undefined;
  const digits = topLevelDigits(field, text);
  return digits !== undefined && Number(digits) === raw ? { id: digits, echoed: digits } : undefined;
}

/** Places `"field": <digits>` may be written in one text before it is taken for no id (each costs a parse). */
const DIGITS_CANDIDATES_MAX = 4;

/**
 * The digits of the top-level `field` of the JSON object `text`, written as a plain integer. Each place the text writes
 * `"field": <digits>` is a candidate — also a nested field of that name, or inside a key — and is taken only if the text
 * with those digits quoted parses to an object whose top-level `field` is that string: the value JSON.parse read for it,
 * and no other (a nested `"user_id"` rounding to the same double, ids 2 048 apart near 2^63, was taken before).
 */
function topLevelDigits(field: string, text: string): string | undefined {
  let tried = 0;
  for (const match of text.matchAll(new RegExp(`"${field}"\\s*:\\s*(-?\\d+)(?=\\s*[,}])`, 'g'))) {
    if (++tried > DIGITS_CANDIDATES_MAX) return undefined;
    const digits = match[1]!;
    const end = match.index + match[0].length;
    const quoted = `${text.slice(0, end - digits.length)}"${digits}"${text.slice(end)}`;
    try {
      if ((JSON.parse(quoted) as Record<string, unknown>)[field] === digits) return digits;
    } catch {
      // The place was inside a string or a key: not the field.
    }
  }
  return undefined;
}

/**
 * True when `text` holds no lone surrogate (ES2024's `String.prototype.isWellFormed`, in Node 20): only then does it have
 * one UTF-8 form. Two ids with different lone surrogates encode to the same bytes (U+FFFD), so in Redis their channels
 * and presence entries would be one.
 */
export function isWellFormed(text: string): boolean {
  return (text as string & { isWellFormed(): boolean }).isWellFormed();
}

/**
 * Valid characters and length. A `#server-to-user-{id}` name is valid when its id is one sign-in accepts
 * (`isValidUserId`): any characters, up to the user id limit rather than the channel name limit, so every signed-in user
 * has a channel that can be subscribed and published to. Only through signin (checked by the subscriber).
 */
export function isValidChannelName(name: string, limits: ChannelNameLimits): boolean {
  if (name.startsWith(SERVER_TO_USER_PREFIX)) {
    return isValidUserId(name.slice(SERVER_TO_USER_PREFIX.length), limits.maxPresenceUserIdLength);
  }
  if (name.length === 0 || name.length > limits.maxChannelNameLength) return false;
  return NAME_PATTERN.test(name);
}

const kinds = {
  public: kind('public', false, false, false, false, false),
  cache: kind('cache', false, false, false, true, false),
  private: kind('private', true, false, false, false, true),
  privateCache: kind('cache', true, false, false, true, true),
  encrypted: kind('encrypted', true, false, true, false, false),
  encryptedCache: kind('cache', true, false, true, true, false),
  presence: kind('presence', true, true, false, false, true),
  presenceCache: kind('cache', true, true, false, true, true),
  serverToUser: kind('private', false, false, false, false, false),
};

function kind(
  type: ChannelType,
  requiresAuth: boolean,
  presence: boolean,
  encrypted: boolean,
  cache: boolean,
  allowsClientEvents: boolean,
): ChannelKind {
  return Object.freeze({ type, requiresAuth, presence, encrypted, cache, allowsClientEvents });
}

/** Classifies a channel by prefix. Cache channels report `type: 'cache'` whatever their other traits. */
export function channelKind(name: string): ChannelKind {
  if (name.startsWith('private-encrypted-cache-')) return kinds.encryptedCache;
  if (name.startsWith('private-encrypted-')) return kinds.encrypted;
  if (name.startsWith('private-cache-')) return kinds.privateCache;
  if (name.startsWith('private-')) return kinds.private;
  if (name.startsWith('presence-cache-')) return kinds.presenceCache;
  if (name.startsWith('presence-')) return kinds.presence;
  if (name.startsWith('cache-')) return kinds.cache;
  if (name.startsWith(SERVER_TO_USER_PREFIX)) return kinds.serverToUser;
  return kinds.public;
}
