/**
 * The configuration, declared once: one zod schema from the environment (and an optional apps JSON file) to `Config`, which
 * is the schema's output type. Each setting is one line — its environment variable, its validation, its default — and
 * nothing else repeats it: consumers read the value from `Config`, and the README configuration table is checked against
 * `CONFIG_VARIABLES` (test/readme-config.test.ts). Every value is validated at start-up; an invalid one stops the process
 * with a message naming the variable. Units are in the names (…Ms, …Bytes, …Seconds).
 */
import { readFileSync } from 'node:fs';
import { distance } from 'fastest-levenshtein';
import { isIP } from 'node:net';
import { z } from 'zod';
import { isListenHost } from './listen-address.js';
import { NAME_CHAR_BYTES, SERVER_TO_USER_PREFIX } from './protocol/channel-name.js';
import { DEFAULT_DEPLOYMENT_ENV, defaultNodeId, resourceAttributesFromEnv } from './telemetry/node-identity.js';
import {
  allEventsWebhook,
  MAX_WEBHOOKS_PER_APP,
  toWebhookConfig,
  headerValue,
  httpUrl,
  webhookListSchema,
  webhookUrl,
  type WebhookConfig,
} from './webhooks/webhook-config.js';

export { allEventsWebhook, type WebhookConfig };

/** What a setting's schema carries besides its validation: its variable, and its default as written when it is computed. */
interface Setting {
  env: string;
  shownDefault?: string;
}
const settings = z.registry<Setting>();

/** Declares the environment variable a setting is read from (`shownDefault`: how a computed default is documented). */
function fromEnv<T extends z.ZodType>(env: string, schema: T, shownDefault?: string): T {
  settings.add(schema, shownDefault === undefined ? { env } : { env, shownDefault });
  return schema;
}

const bool = () =>
  z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((v) => v === 'true' || v === '1' || v === 'yes');
/**
 * An integer setting, written in decimal digits (spaces around them allowed). `Number()` read a blank value (" ") as 0,
 * which turned a limit off (`FRAME_RATE_LIMIT_PER_SECOND`) or took any free port (`PORT`), and read `0x4BC9` and `1e4`
 * as numbers: each is now refused, naming the variable.
 */
const int = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  z
    .string()
    .regex(/^\s*\d+\s*$/, 'not a number')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));
/**
 * App ids the configuration refuses: `u` names the Redis engine's tag of an app's signed-in users (`{u:appId}`,
 * adapters/redis-keys.ts), which app `u`'s channel named like another app would share (`{u:channel}`).
 */
export const RESERVED_APP_IDS = new Set(['u']);
const appIdSchema = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, _ . - only')
  .refine((id) => !RESERVED_APP_IDS.has(id), 'reserved (u tags the Redis engine\'s watchlist keys)');
const appKeySchema = z.string().min(1).max(128).regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, _ . - only');
/**
 * A name or secret that may hold anything but be blank: `APP_SECRET=" "` (a template that filled in nothing but a space)
 * started an app with a blank secret, `NODE_ID=" "` a node named by a space in every line, label and Redis key.
 */
const nonBlank = () => z.string().refine((value) => value.trim() !== '', 'blank');
const appSecretSchema = nonBlank();
/** The default app's secret when APP_SECRET is unset (or empty): public, said at start-up (`configWarnings`). */
export const DEFAULT_APP_SECRET = 'app-secret';

/** An app's webhooks, the `webhookUrl` shorthand first; more than MAX_WEBHOOKS_PER_APP is an issue at `path`. */
function appWebhooks(
  webhookUrl: string | undefined,
  listed: z.output<typeof webhookListSchema>,
  ctx: z.RefinementCtx,
  path: string,
): WebhookConfig[] {
  const webhooks = listed.map(toWebhookConfig);
  if (webhookUrl !== undefined) webhooks.unshift(allEventsWebhook(webhookUrl));
  if (webhooks.length > MAX_WEBHOOKS_PER_APP) {
    ctx.addIssue({
      code: 'custom',
      path: [path],
      message: `at most ${MAX_WEBHOOKS_PER_APP} webhooks per app (the webhookUrl / APP_WEBHOOK_URL shorthand counts as one)`,
    });
  }
  return webhooks;
}

/** One app of an APPS_FILE; the `APP_*` variables give the same fields to the default app. */
const appSchema = z
  .object({
    id: appIdSchema,
    key: appKeySchema,
    secret: appSecretSchema,
    enabled: z.boolean().default(true),
    enableClientEvents: z.boolean().default(false),
    /** `pusher_internal:subscription_count` on joins and leaves (opt-in per app, as in Pusher). */
    enableSubscriptionCount: z.boolean().default(false),
    /** 0 means no per-app limit. */
    maxConnections: z.number().int().min(0).default(0),
    clientEventsPerSecond: z.number().int().min(1).default(10),
    userAuthenticationRequired: z.boolean().default(false),
    webhookUrl: webhookUrl.optional(),
    webhooks: webhookListSchema.default([]),
  })
  // A misspelt setting (`maxConection`) is refused, not ignored: it would leave the app without the quota it names.
  .strict()
  .transform((app, ctx) => ({
    ...app,
    webhookUrl: app.webhookUrl,
    /** Every webhook of the app, the `webhookUrl` shorthand first; empty: the app sends none. */
    webhooks: appWebhooks(app.webhookUrl, app.webhooks, ctx, 'webhooks'),
  }));

/** One Pusher application: credentials and its per-app policy. */
export type AppConfig = z.output<typeof appSchema>;

/** A JSON text (an environment variable's value, or a file's content) parsed, or an issue saying why not. */
function parseJson(text: string, ctx: z.RefinementCtx, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: `${what}: ${(err as Error).message}` });
    return z.NEVER;
  }
}

/** APPS_FILE: a path to `{"apps": […]}` (or a bare list), read and validated at start-up. */
const appsFileSchema = z
  .string()
  .min(1)
  .transform((path, ctx) => {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: `cannot read ${path}: ${(err as Error).message}` });
      return z.NEVER;
    }
    // A byte order mark (some editors write one) is not JSON, but not the operator's mistake either.
    const raw = parseJson(text.replace(/^\ufeff/, ''), ctx, `cannot read ${path}: not JSON`);
    return Array.isArray(raw) ? { apps: raw } : raw;
  })
  .pipe(z.object({ apps: z.array(appSchema).min(1) }).strict())
  .transform((file) => file.apps);

/** A `host:port,host:port…` list (Redis Cluster seeds, Sentinels); unset is an empty list. */
const HOST_PORT = String.raw`(?:[^\s,:\[\]]+|\[[0-9A-Fa-f:.]+\]):\d{1,5}`;
const hostPorts = () =>
  z
    .string()
    .regex(new RegExp(`^\\s*${HOST_PORT}\\s*(,\\s*${HOST_PORT}\\s*)*$`), 'host:port[,host:port…] (IPv6 as [::1]:7000)')
    .optional()
    .transform(addressList)
    .refine((nodes) => nodes.every((n) => n.port >= 1 && n.port <= 65535), 'ports from 1 to 65535');

/** `host:port,host:port…` → the addresses. */
function addressList(list: string | undefined): { host: string; port: number }[] {
  return (list ?? '')
    .split(',')
    .map((n) => n.trim())
    .filter((n) => n !== '')
    .map((n) => ({ host: n.slice(0, n.lastIndexOf(':')).replace(/^\[(.*)\]$/, '$1'), port: Number(n.slice(n.lastIndexOf(':') + 1)) }));
}

/** proxy-addr's names for address ranges, accepted in a `TRUST_PROXY` list. */
const PROXY_RANGES = new Set(['loopback', 'linklocal', 'uniquelocal']);

/** One `TRUST_PROXY` list entry: an address, an address/prefix, or a named range. */
function isProxyAddress(entry: string): boolean {
  if (PROXY_RANGES.has(entry)) return true;
  const slash = entry.indexOf('/');
  const version = isIP(slash < 0 ? entry : entry.slice(0, slash));
  if (version === 0) return false;
  if (slash < 0) return true;
  const bits = entry.slice(slash + 1);
  return /^\d{1,3}$/.test(bits) && Number(bits) <= (version === 4 ? 32 : 128);
}

/**
 * A `/0` entry (`0.0.0.0/0`, `::/0`: every address of its family) as the two halves of that family: @fastify/proxy-addr,
 * which fastify compiles the list with, refuses a prefix of 0, and the process stopped at start with its stack trace.
 */
function wholeFamilyAsHalves(entry: string): string[] {
  const slash = entry.indexOf('/');
  if (slash < 0 || Number(entry.slice(slash + 1)) !== 0) return [entry];
  return isIP(entry.slice(0, slash)) === 4 ? ['0.0.0.0/1', '128.0.0.0/1'] : ['::/1', '8000::/1'];
}

/**
 * `TRUST_PROXY`, as fastify's `trustProxy` takes it: `false` (the peer is the client), `true` (every hop of
 * X-Forwarded-For is trusted: only behind a proxy that overwrites the header), or the proxies' addresses (the client is the
 * nearest untrusted hop). No hop count: fastify trusts nothing with one, since a direct client could send enough hops.
 * A number is refused, not read as `true`: `1` was, and in Express and fastify it means one hop, so an operator who meant
 * "the load balancer in front" let every client name its own logged address.
 */
const trustProxy = z
  .string()
  .trim()
  .transform((value, ctx): boolean | string => {
    if (/^(false|no|0|)$/i.test(value)) return false;
    if (/^(true|yes)$/i.test(value)) return true;
    if (/^\d+$/.test(value)) {
      ctx.addIssue({
        code: 'custom',
        message: `a hop count is not supported (a client sending enough hops could name any address): list the proxies' addresses or CIDRs, or true to trust every hop`,
      });
      return z.NEVER;
    }
    const entries = value.split(',').map((e) => e.trim());
    const bad = entries.filter((e) => !isProxyAddress(e));
    if (bad.length === 0) return entries.flatMap(wholeFamilyAsHalves).join(',');
    ctx.addIssue({
      code: 'custom',
      message: `not an address, address/prefix, loopback, linklocal or uniquelocal: ${bad.join(', ')} (or true, false)`,
    });
    return z.NEVER;
  });

/** The settings, keyed by their `Config` name; the README's configuration table describes each variable. */
const fields = z.object({
  host: fromEnv(
    'HOST',
    z
      .string()
      .trim()
      .refine(isListenHost, { message: 'not an IP address or host name (an IPv6 address without brackets: ::1)' })
      .default('0.0.0.0'),
  ),
  port: fromEnv('PORT', int(0, 65535).default(6001)),
  /** Which peers may say who the client is (X-Forwarded-For): the address logged as `remote_address`. */
  trustProxy: fromEnv('TRUST_PROXY', trustProxy.default(false), 'false'),
  // Trimmed, as the telemetry resource reads them (node-identity.ts): untrimmed, the lines' `node_id` and `env` were not
  // the metrics' and traces'.
  nodeId: fromEnv('NODE_ID', nonBlank().transform((v) => v.trim()).default(defaultNodeId), 'hostname-pid'),
  env: fromEnv('DEPLOYMENT_ENV', nonBlank().transform((v) => v.trim()).default(DEFAULT_DEPLOYMENT_ENV)),
  serviceName: fromEnv('OTEL_SERVICE_NAME', z.string().min(1).default('beacon')),
  logLevel: fromEnv('LOG_LEVEL', z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info')),
  // The default app (replaced by APPS_FILE's apps); folded into `apps` below.
  appId: fromEnv('APP_ID', appIdSchema.default('app-id')),
  appKey: fromEnv('APP_KEY', appKeySchema.default('app-key')),
  appSecret: fromEnv('APP_SECRET', appSecretSchema.default(DEFAULT_APP_SECRET)),
  appEnableClientEvents: fromEnv('APP_ENABLE_CLIENT_EVENTS', bool().default(false)),
  appEnableSubscriptionCount: fromEnv('APP_ENABLE_SUBSCRIPTION_COUNT', bool().default(false)),
  appMaxConnections: fromEnv('APP_MAX_CONNECTIONS', int(0).default(0)),
  appClientEventsPerSecond: fromEnv('APP_CLIENT_EVENTS_PER_SECOND', int(1).default(10)),
  appUserAuthenticationRequired: fromEnv('APP_USER_AUTHENTICATION_REQUIRED', bool().default(false)),
  appWebhookUrl: fromEnv('APP_WEBHOOK_URL', webhookUrl.optional()),
  appWebhooks: fromEnv(
    'APP_WEBHOOKS',
    z
      .string()
      .min(1)
      .transform((text, ctx) => parseJson(text, ctx, 'not JSON'))
      .pipe(webhookListSchema)
      .optional(),
  ),
  appsFile: fromEnv('APPS_FILE', appsFileSchema.optional()),
  activityTimeoutSeconds: fromEnv('ACTIVITY_TIMEOUT', int(1, 3600).default(120)),
  pongTimeoutMs: fromEnv('PONG_TIMEOUT_MS', int(100, 600_000).default(30_000)),
  /** Apps requiring user authentication close connections not signed in within this time (4009). */
  userAuthTimeoutMs: fromEnv('USER_AUTH_TIMEOUT_MS', int(100, 3_600_000).default(30_000)),
  maxPayloadBytes: fromEnv('MAX_PAYLOAD_BYTES', int(1024, 10 * 1024 * 1024).default(100_000)),
  /** 0 means no process-wide limit. */
  maxConnections: fromEnv('MAX_CONNECTIONS', int(0).default(0)),
  maxChannelNameLength: fromEnv('MAX_CHANNEL_NAME_LENGTH', int(1, 1000).default(200)),
  maxEventNameLength: fromEnv('MAX_EVENT_NAME_LENGTH', int(1, 1000).default(200)),
  maxChannelsPerPublish: fromEnv('MAX_CHANNELS_PER_PUBLISH', int(1, 1000).default(100)),
  maxBatchSize: fromEnv('MAX_BATCH_SIZE', int(1, 1000).default(10)),
  maxPresenceMembers: fromEnv('MAX_PRESENCE_MEMBERS', int(1, 100_000).default(100)),
  maxPresenceMemberBytes: fromEnv('MAX_PRESENCE_MEMBER_BYTES', int(16, 1024 * 1024).default(2048)),
  maxPresenceUserIdLength: fromEnv('MAX_PRESENCE_USER_ID_LENGTH', int(1, 1024).default(128)),
  maxWatchlistSize: fromEnv('MAX_WATCHLIST_SIZE', int(0, 10_000).default(100)),
  sendBufferMaxBytes: fromEnv('SEND_BUFFER_MAX_BYTES', int(1024).default(4 * 1024 * 1024)),
  // At most a day: 600000 (milliseconds meant) accepted week-old signatures, replay protection off, unsaid. Over an hour
  // is said at start (`configWarnings`).
  apiTimestampToleranceSeconds: fromEnv('API_TIMESTAMP_TOLERANCE_SECONDS', int(1, 86_400).default(600)),
  /** HTTP API requests per app per second; 0 means unlimited. Excess gets 429. */
  apiRequestsPerSecond: fromEnv('API_RATE_LIMIT_PER_SECOND', int(0).default(0)),
  /** New WebSocket connections per app per second; 0 means unlimited. Excess is closed with 4111. */
  newConnectionsPerSecond: fromEnv('CONNECTION_RATE_LIMIT_PER_SECOND', int(0).default(0)),
  /**
   * How long one HTTP request (an upgrade's or an API call's headers and body) may take to arrive; past it Node answers
   * 408 (http/client-errors.ts). Without it a request declaring a body it never sends held its socket forever.
   */
  httpRequestTimeoutMs: fromEnv('HTTP_REQUEST_TIMEOUT_MS', int(100, 600_000).default(30_000)),
  shutdownGraceMs: fromEnv('SHUTDOWN_GRACE_MS', int(0, 600_000).default(1000)),
  shutdownTimeoutMs: fromEnv('SHUTDOWN_TIMEOUT_MS', int(100, 600_000).default(10_000)),
  // Pushed with fetch, which refuses a URL with credentials (every push failed, retried until shutdown): they go in
  // LOKI_USERNAME / LOKI_PASSWORD, sent as basic auth, whose user may not hold a colon.
  lokiUrl: fromEnv(
    'LOKI_URL',
    httpUrl
      .refine(noCredentials, 'no credentials in the URL: set LOKI_USERNAME and LOKI_PASSWORD')
      // The push path is Beacon's to add: given as Alloy and Promtail take it, every push went to …/push/loki/api/v1/push.
      .refine((u) => !/\/loki\/api\/v1\/push\/?$/.test(pathOf(u)), "Loki's base URL (http://loki:3100), without /loki/api/v1/push")
      .optional(),
  ),
  lokiUsername: fromEnv('LOKI_USERNAME', z.string().min(1).regex(/^[^:]*$/, 'no colon (basic auth)').optional()),
  lokiPassword: fromEnv('LOKI_PASSWORD', z.string().min(1).optional()),
  lokiTenantId: fromEnv('LOKI_TENANT_ID', headerValue.min(1).optional()),
  /** Bytes of log lines held for Loki while pushes fail (retried with back-off); past it the oldest are dropped. */
  lokiSpoolMaxBytes: fromEnv('LOKI_SPOOL_MAX_BYTES', int(64 * 1024, 1024 * 1024 * 1024).default(32 * 1024 * 1024)),
  /** Refused WebSocket upgrades waiting (at most 2 s) for the client's close frame; past it one is cut at once. */
  maxRefusedSockets: fromEnv('MAX_REFUSED_SOCKETS', int(0, 1_000_000).default(1000)),
  webhookBatchMs: fromEnv('WEBHOOK_BATCH_MS', int(0, 60_000).default(50)),
  webhookBatchMaxEvents: fromEnv('WEBHOOK_BATCH_MAX_EVENTS', int(1, 1000).default(50)),
  webhookMaxPendingEvents: fromEnv('WEBHOOK_MAX_PENDING_EVENTS', int(1, 1_000_000).default(10_000)),
  /** The size of the events one webhook holds (a client event's data is most of it): 10 000 of 100 kB each were 1 GB. */
  webhookMaxPendingBytes: fromEnv('WEBHOOK_MAX_PENDING_BYTES', int(64 * 1024, 4 * 1024 * 1024 * 1024).default(64 * 1024 * 1024)),
  webhookVacateDelayMs: fromEnv('WEBHOOK_VACATE_DELAY_MS', int(0, 60_000).default(3000)),
  webhookRetryBaseMs: fromEnv('WEBHOOK_RETRY_BASE_MS', int(1, 600_000).default(1000)),
  webhookRetryMaxMs: fromEnv('WEBHOOK_RETRY_MAX_MS', int(1, 3_600_000).default(60_000)),
  webhookRetryDeadlineMs: fromEnv('WEBHOOK_RETRY_DEADLINE_MS', int(0, 86_400_000).default(300_000)),
  webhookRequestTimeoutMs: fromEnv('WEBHOOK_REQUEST_TIMEOUT_MS', int(100, 600_000).default(10_000)),
  /** The cluster engine: `local` (one process, in memory) or `redis` (many processes sharing `redisUrl`). */
  adapter: fromEnv('ADAPTER', z.enum(['local', 'redis']).default('local')),
  redisUrl: fromEnv(
    'REDIS_URL',
    z
      .url()
      .refine((u) => /^rediss?:\/\//.test(u), 'a redis:// or rediss:// URL')
      // The path selects a database by number: `/beacon` passed, and the engine's `SELECT NaN` killed the process
      // after `server_started`.
      .refine((u) => redisDatabase(u) !== undefined, 'a path, if any, is a database number (redis://host:6379/0), as is ?db=')
      .default('redis://127.0.0.1:6379'),
  ),
  /**
   * The first part of every key and pub/sub channel name of the engine: deployments that share one Redis (staging and
   * production) each need their own, since pub/sub is one namespace for all of a server's databases.
   */
  redisKeyPrefix: fromEnv(
    'REDIS_KEY_PREFIX',
    z
      .string()
      .regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'letters, digits, _ . : - only, at most 64 (no braces: they tag Redis Cluster slots)')
      .default('beacon'),
  ),
  /** Frames one connection may send per second, every kind; 0 means unlimited. Excess gets `pusher:error` 4301. */
  frameRateLimitPerSecond: fromEnv('FRAME_RATE_LIMIT_PER_SECOND', int(0).default(200)),
  /** Deepest JSON nesting of a client frame; deeper frames are refused before they are parsed. */
  maxJsonDepth: fromEnv('MAX_JSON_DEPTH', int(2, 1000).default(32)),
  /** Channels one connection may be subscribed to at once; more gets `pusher:subscription_error`. */
  maxSubscriptionsPerConnection: fromEnv('MAX_SUBSCRIPTIONS_PER_CONNECTION', int(1, 1_000_000).default(100)),
  /** Bytes of cache-channel events this node keeps (least recently used evicted first). */
  cacheMaxBytes: fromEnv('CACHE_MAX_BYTES', int(1024).default(64 * 1024 * 1024)),
  /**
   * How long a subscription the cluster engine could not record (Redis unreachable, a shard down or not answering) is
   * tried again before it is refused with 503: pusher-js never subscribes again after a refusal, so a refusal during a
   * failover of a few seconds left the client off the channel for good. 0 refuses at once.
   */
  subscribeRetryMs: fromEnv('SUBSCRIBE_RETRY_MS', int(0, 600_000).default(20_000)),
  /**
   * The Redis engine's credentials — an ACL user and its password, or the password alone (`requirepass`) — sent to every
   * Redis it connects to (every Cluster node). With `REDIS_URL` they may be in the URL instead, not in both.
   */
  redisUsername: fromEnv('REDIS_USERNAME', nonBlank().optional()),
  redisPassword: fromEnv('REDIS_PASSWORD', z.string().min(1).optional()),
  /** TLS to every Redis the engine connects to (every Cluster node); a `rediss://` URL asks for it too. */
  redisTls: fromEnv('REDIS_TLS', bool().default(false)),
  /** Redis Cluster seed nodes (`host:port`); when set, `redisUrl` is not used and pub/sub is sharded. */
  redisClusterNodes: fromEnv('REDIS_CLUSTER_NODES', hostPorts()),
  /** Redis Sentinels (`host:port`); when set, the engine asks them for the master named `redisSentinelMaster`. */
  redisSentinels: fromEnv('REDIS_SENTINELS', hostPorts()),
  /** Unset: `mymaster` (with Sentinels; set without them it is refused: it would be ignored). */
  redisSentinelMaster: fromEnv('REDIS_SENTINEL_MASTER', nonBlank().optional(), 'mymaster'),
  /** The Sentinels' own ACL user (a `user` of sentinel.conf), with `redisSentinelPassword`. */
  redisSentinelUsername: fromEnv('REDIS_SENTINEL_USERNAME', z.string().min(1).optional()),
  /** The Sentinels' own password (`requirepass` in sentinel.conf, or their ACL user's), when they ask for one. */
  redisSentinelPassword: fromEnv('REDIS_SENTINEL_PASSWORD', z.string().min(1).optional()),
});

/** True unless `url` parses with a user or a password (one that does not parse is refused by its own check). */
function noCredentials(url: string): boolean {
  if (!URL.canParse(url)) return true;
  const parsed = new URL(url);
  return parsed.username === '' && parsed.password === '';
}

/**
 * What a request holds beyond its events' names and data: the JSON around them, `info`, and what no limit bounds in a
 * valid request (whitespace, unknown members), within reason.
 */
const API_BODY_ENVELOPE_BYTES = 64 * 1024;

/** One event's members around its name, data and channels (`{"channel":…,"name":…,"data":…}`) and a `socket_id`. */
const EVENT_MEMBERS_BYTES = 128;

/**
 * How many bytes of a request body one byte of an event's `data` may take: `data` is a string inside the JSON body, so
 * a `"` or `\` is written as two bytes and a control character as six (`\u001f`). `MAX_PAYLOAD_BYTES` bounds the data
 * as it is published, decoded, so a valid batch's body can be up to six times its data.
 */
const JSON_ESCAPE_FACTOR = 6;

/**
 * The largest HTTP API body a valid request can have, however its strings are escaped: a full batch of the largest
 * events with the longest names (`POST /batch_events`), or one such event to the most channels (`POST /events`), plus
 * the envelope. Channel names are ASCII but for a `#server-to-user-` one, whose user id may be any characters.
 * (The review of stop 54 worked out a batch of 1 000 such events 53 KB over the limit without the members' bytes.)
 */
function apiBodyLimitBytes(limits: {
  maxPayloadBytes: number;
  maxBatchSize: number;
  maxEventNameLength: number;
  maxChannelNameLength: number;
  maxChannelsPerPublish: number;
  maxPresenceUserIdLength: number;
}): number {
  const data = limits.maxPayloadBytes * JSON_ESCAPE_FACTOR;
  const eventName = limits.maxEventNameLength * NAME_CHAR_BYTES;
  // An ASCII character is six bytes escaped (`\u0061`): no encoder writes one so, but JSON allows it.
  const userChannel = SERVER_TO_USER_PREFIX.length * 6 + limits.maxPresenceUserIdLength * NAME_CHAR_BYTES;
  const channel = Math.max(limits.maxChannelNameLength * 6, userChannel) + 3;
  const batch = limits.maxBatchSize * (data + eventName + channel + EVENT_MEMBERS_BYTES);
  const publish = data + eventName + limits.maxChannelsPerPublish * channel + EVENT_MEMBERS_BYTES;
  return Math.max(batch, publish) + API_BODY_ENVELOPE_BYTES;
}

/** The whole configuration: the settings, the default app folded into `apps`, and the values derived from settings. */
const configSchema = fields.transform((settings, ctx) => {
  const {
    appId,
    appKey,
    appSecret,
    appEnableClientEvents,
    appEnableSubscriptionCount,
    appMaxConnections,
    appClientEventsPerSecond,
    appUserAuthenticationRequired,
    appWebhookUrl,
    appWebhooks: listed,
    appsFile,
    ...config
  } = settings;
  const apps: AppConfig[] = appsFile ?? [
    {
      id: appId,
      key: appKey,
      secret: appSecret,
      enabled: true,
      enableClientEvents: appEnableClientEvents,
      enableSubscriptionCount: appEnableSubscriptionCount,
      maxConnections: appMaxConnections,
      clientEventsPerSecond: appClientEventsPerSecond,
      userAuthenticationRequired: appUserAuthenticationRequired,
      webhookUrl: appWebhookUrl,
      webhooks: appWebhooks(appWebhookUrl, listed ?? [], ctx, 'appWebhooks'),
    },
  ];
  if ((config.lokiUsername === undefined) !== (config.lokiPassword === undefined)) {
    // Basic auth is both or neither: one alone sent none, and an authenticating Loki refused every push.
    const missing = config.lokiUsername === undefined ? 'lokiUsername' : 'lokiPassword';
    ctx.addIssue({ code: 'custom', path: [missing], message: 'LOKI_USERNAME and LOKI_PASSWORD go together (basic auth)' });
  }
  if (config.redisUsername !== undefined && config.redisPassword === undefined) {
    // Redis' AUTH takes a user with its password; a user alone would connect as `default`, or be refused, unsaid.
    ctx.addIssue({ code: 'custom', path: ['redisUsername'], message: 'needs REDIS_PASSWORD (AUTH takes the user and its password)' });
  }
  if (config.redisClusterNodes.length > 0 && config.redisSentinels.length > 0) {
    // A Cluster has no Sentinels (it fails over by itself): one of the two was left from another set-up.
    ctx.addIssue({ code: 'custom', path: ['redisSentinels'], message: 'REDIS_CLUSTER_NODES is set too: a Redis Cluster or Sentinels, not both' });
  }
  if (config.redisSentinelPassword !== undefined && config.redisSentinels.length === 0) {
    ctx.addIssue({ code: 'custom', path: ['redisSentinelPassword'], message: 'only with REDIS_SENTINELS (the Sentinels\' own password)' });
  }
  if (config.redisSentinelMaster !== undefined && config.redisSentinels.length === 0) {
    // A master name for no Sentinel: left from another set-up, or REDIS_SENTINELS forgotten (the engine would use REDIS_URL).
    ctx.addIssue({ code: 'custom', path: ['redisSentinelMaster'], message: 'only with REDIS_SENTINELS (the master they name)' });
  }
  if (config.redisSentinelUsername !== undefined && config.redisSentinels.length === 0) {
    ctx.addIssue({ code: 'custom', path: ['redisSentinelUsername'], message: 'only with REDIS_SENTINELS (the Sentinels\' own ACL user)' });
  } else if (config.redisSentinelUsername !== undefined && config.redisSentinelPassword === undefined) {
    ctx.addIssue({ code: 'custom', path: ['redisSentinelUsername'], message: 'needs REDIS_SENTINEL_PASSWORD (the user\'s password)' });
  }
  const urlUsed = config.redisClusterNodes.length === 0 && config.redisSentinels.length === 0;
  if (config.redisPassword !== undefined && urlUsed && !noCredentials(config.redisUrl)) {
    // Which would win is ioredis' choice, and an operator rotating one would not know the other still applied.
    ctx.addIssue({ code: 'custom', path: ['redisPassword'], message: 'REDIS_URL holds credentials already: set them in one place' });
  }
  if (config.webhookMaxPendingEvents < config.webhookBatchMaxEvents) {
    // A queue that holds fewer events than a batch fills before its batch is full or its window over: events dropped as
    // failed with the receiver healthy.
    ctx.addIssue({
      code: 'custom',
      path: ['webhookMaxPendingEvents'],
      message: `at least WEBHOOK_BATCH_MAX_EVENTS (${config.webhookBatchMaxEvents}): a webhook's queue must hold a whole batch`,
    });
  }
  if (config.webhookMaxPendingBytes < config.maxPayloadBytes + 1024) {
    // A client event as large as a frame may carry would never fit: every one dropped as failed, the receiver healthy.
    ctx.addIssue({
      code: 'custom',
      path: ['webhookMaxPendingBytes'],
      message: `at least MAX_PAYLOAD_BYTES + 1024 (${config.maxPayloadBytes + 1024}): a webhook must hold the largest client event`,
    });
  }
  for (const field of ['id', 'key'] as const) {
    const seen = new Map<string, number>();
    for (const [i, app] of apps.entries()) {
      const first = seen.get(app[field]);
      if (first !== undefined) {
        const where = appsFile === undefined ? '' : ` (apps.${first} and apps.${i})`;
        ctx.addIssue({ code: 'custom', path: ['appsFile'], message: `duplicate app ${field} "${app[field]}"${where}` });
      } else seen.set(app[field], i);
    }
  }
  return {
    ...config,
    apps,
    /** Whether `apps` came from APPS_FILE (the `APP_*` variables were not read): what a warning about them names. */
    appsFromFile: appsFile !== undefined,
    apiBodyLimitBytes: apiBodyLimitBytes(config),
    redisSentinelMaster: config.redisSentinelMaster ?? 'mymaster',
  };
});

/** The validated configuration: the output type of the one schema above. */
export type Config = z.output<typeof configSchema>;

/** Every setting's `Config` name and environment variable, in declaration order. */
const VARIABLES = Object.entries(fields.shape).map(([key, schema]) => {
  const setting = settings.get(schema);
  if (setting === undefined) throw new Error(`config.ts: setting ${key} declares no environment variable (fromEnv)`);
  return { key, schema, ...setting };
});

/** Every environment variable the schema reads, with its default as the README table writes it (undefined: none). */
export const CONFIG_VARIABLES: readonly { name: string; default: string | undefined }[] = VARIABLES.map((v) => ({
  name: v.env,
  default: v.shownDefault ?? (v.schema instanceof z.ZodDefault ? String(v.schema.def.defaultValue) : undefined),
}));

/** Thrown when the configuration is invalid; `message` names every offending variable. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

const variableOf = new Map(VARIABLES.map((v) => [v.key, v.env]));

/** `VARIABLE[.path]: what was expected`, the path inside the variable's value (APP_WEBHOOKS.0.url, APPS_FILE.apps.1.secret). */
function describeIssue(issue: z.core.$ZodIssue): string {
  const [key, ...inside] = issue.path;
  const variable = key === undefined ? '(root)' : (variableOf.get(String(key)) ?? String(key));
  return `${[variable, ...inside.map(String)].join('.')}: ${issue.message}`;
}

/**
 * The log lines' `service`, `env` and `node_id` as the telemetry resource names the node (otel/options.ts):
 * `OTEL_RESOURCE_ATTRIBUTES`' `service.name` (unless `OTEL_SERVICE_NAME` is set, which wins, as in the SDK),
 * `deployment.environment.name` and `service.instance.id` override the configured ones. Before, a `service.name` given
 * there renamed the spans and `target_info` but not the lines, and Loki's selectors and Tempo's filters parted ways.
 */
function withResourceIdentity(config: Config, env: NodeJS.ProcessEnv): Config {
  const named = resourceAttributesFromEnv(env.OTEL_RESOURCE_ATTRIBUTES);
  // Blank is unset, as otel/options.ts and the SDK read OTEL_SERVICE_NAME; an attribute given empty is left to the
  // configured name (the resource then says "", which no Loki label can).
  const nonEmpty = (value: string | undefined): string | undefined =>
    value === undefined || value.trim() === '' ? undefined : value.trim();
  return {
    ...config,
    // A blank OTEL_SERVICE_NAME ("  ") passed the schema as the name: the default, as on the resource (otel/sdk.ts).
    serviceName: nonEmpty(env.OTEL_SERVICE_NAME) ?? nonEmpty(named.get('service.name')) ?? (nonEmpty(config.serviceName) ?? 'beacon'),
    env: nonEmpty(named.get('deployment.environment.name')) ?? config.env,
    nodeId: nonEmpty(named.get('service.instance.id')) ?? config.nodeId,
  };
}

/** A setting that works but loses something a client expects: said at start-up (`config_warning`), not refused. */
export interface ConfigWarning {
  variables: string[];
  message: string;
}

/** What in `config` works against the clients people run, for the start-up log. */
export function configWarnings(config: Config): ConfigWarning[] {
  const warnings: ConfigWarning[] = [];
  const publicSecret = config.apps.filter((app) => app.secret === DEFAULT_APP_SECRET).map((app) => app.id);
  if (publicSecret.length > 0) {
    // The quick start's defaults: fine on a laptop, but anyone who can reach the server can then publish, query and
    // authorize private and presence channels. An empty APP_SECRET (a template that filled in nothing) is unset, so lands
    // here too.
    const where = config.appsFromFile ? 'its secret in APPS_FILE' : 'APP_SECRET unset or empty';
    warnings.push({
      variables: [config.appsFromFile ? 'APPS_FILE' : 'APP_SECRET'],
      message:
        `app ${publicSecret.join(', ')} signs with the public default secret "${DEFAULT_APP_SECRET}" (${where}): anyone who ` +
        'can reach the server can sign API calls and channel authorizations for it; give it a secret of its own',
    });
  }
  const padded = config.apps.filter((app) => app.secret !== app.secret.trim()).map((app) => app.id);
  if (padded.length > 0) {
    // `echo s3cret > file` and `kubectl create secret --from-file` end a secret with a newline: kept as given, so a
    // backend that signs with the trimmed secret has every signature refused (a review: 401 on every API call).
    warnings.push({
      variables: [config.appsFromFile ? 'APPS_FILE' : 'APP_SECRET'],
      message:
        `the secret of app ${padded.join(', ')} starts or ends with whitespace (a newline from a file?): it is used as ` +
        'given, so a backend that signs with it trimmed has every signature refused',
    });
  }
  if (config.adapter !== 'redis') {
    // Not REDIS_URL: the compose file sets it beside ADAPTER=local, for a switch of one variable.
    const ignored = [
      config.redisClusterNodes.length > 0 ? 'REDIS_CLUSTER_NODES' : undefined,
      config.redisSentinels.length > 0 ? 'REDIS_SENTINELS' : undefined,
      config.redisUsername === undefined ? undefined : 'REDIS_USERNAME',
      config.redisPassword === undefined ? undefined : 'REDIS_PASSWORD',
      config.redisTls ? 'REDIS_TLS' : undefined,
    ].filter((name) => name !== undefined);
    if (ignored.length > 0) {
      // Each node then runs on its own, in memory: a publish reaches the clients of the node that took it only.
      warnings.push({
        variables: ['ADAPTER', ...ignored],
        message:
          `${ignored.join(', ')} ${ignored.length === 1 ? 'is' : 'are'} set, but ADAPTER is ${config.adapter}: ignored — this node ` +
          'shares nothing with other nodes (a publish reaches only its own clients); set ADAPTER=redis to use Redis',
      });
    }
  }
  const budget = config.frameRateLimitPerSecond;
  if (budget > 0 && config.maxSubscriptionsPerConnection >= budget) {
    // pusher-js sends every subscribe at once when it reconnects, after its `pusher:signin` when it signs in: past the
    // frame budget they get 4301, not an answer on their channels, and it keeps those channels pending until the next
    // reconnect. Equal, a full set of subscribes and a sign-in is one frame too many.
    warnings.push({
      variables: ['MAX_SUBSCRIPTIONS_PER_CONNECTION', 'FRAME_RATE_LIMIT_PER_SECOND'],
      message:
        `MAX_SUBSCRIPTIONS_PER_CONNECTION (${config.maxSubscriptionsPerConnection}) is not below FRAME_RATE_LIMIT_PER_SECOND ` +
        `(${budget}): a client resubscribing all its channels at once after a reconnect (pusher-js does) has the subscribes ` +
        'past the limit refused with 4301, and its library keeps those channels pending',
    });
  }
  // The URL is used neither with a Cluster (one database) nor through Sentinels.
  const urlUsed = config.adapter === 'redis' && config.redisClusterNodes.length === 0 && config.redisSentinels.length === 0;
  const database = urlUsed ? (redisDatabase(config.redisUrl) ?? 0) : 0;
  if (database !== 0 && config.redisKeyPrefix === 'beacon') {
    // Keys are per database, pub/sub is not: two deployments on databases 1 and 2 of one Redis, both with the default
    // prefix, had each other's publishes delivered to their clients (apps of the same id).
    warnings.push({
      variables: ['REDIS_URL', 'REDIS_KEY_PREFIX'],
      message:
        `REDIS_URL selects database ${database}, but Redis pub/sub is shared by all of a server's databases: another ` +
        'deployment on the same Redis with the default REDIS_KEY_PREFIX would exchange publishes with this one; give each ' +
        'deployment its own REDIS_KEY_PREFIX',
    });
  }
  if (config.apiTimestampToleranceSeconds > 3600) {
    warnings.push({
      variables: ['API_TIMESTAMP_TOLERANCE_SECONDS'],
      message:
        `API_TIMESTAMP_TOLERANCE_SECONDS is ${config.apiTimestampToleranceSeconds}: a signed API request can be replayed for ` +
        'that long (Pusher allows 600 s); keep the servers\' clocks in sync instead',
    });
  }
  if (config.shutdownGraceMs >= config.shutdownTimeoutMs) {
    // The drain closes the connections only after the grace; a grace past the deadline leaves them open when it passes,
    // so every shutdown with a client connected exits 1 (timed out) although nothing was lost.
    warnings.push({
      variables: ['SHUTDOWN_GRACE_MS', 'SHUTDOWN_TIMEOUT_MS'],
      message:
        `SHUTDOWN_GRACE_MS (${config.shutdownGraceMs}) is not below SHUTDOWN_TIMEOUT_MS (${config.shutdownTimeoutMs}): ` +
        'the connections are still open when the deadline passes, and a shutdown with clients connected exits 1 (timed out)',
    });
  }
  return warnings;
}

/**
 * The database a `redis://host:port/N` URL selects (ioredis also reads `?db=N`; 0 with neither), undefined when either is
 * not a number. A URL that does not parse is 0: `z.url()` refuses it with its own message.
 */
function redisDatabase(url: string): number | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 0;
  }
  const path = parsed.pathname.replace(/^\//, '');
  const db = parsed.searchParams.get('db');
  if (!/^\d*$/.test(path) || (db !== null && !/^\d+$/.test(db))) return undefined;
  return Number(db ?? (path === '' ? 0 : path));
}

/**
 * Whether `a` and `b` differ in one `_`-separated word of at most 4 characters: another variable that happens to be
 * near (`NODE_IP`, the Kubernetes downward API's, next to `NODE_ID`; `API_KEY` next to `APP_KEY`; `APP_KEYS`), not a
 * misspelling of it.
 */
function shortWordSwapped(a: string, b: string): boolean {
  const wa = a.split('_');
  const wb = b.split('_');
  if (wa.length !== wb.length) return false;
  const differing = wa.flatMap((word, i) => (word === wb[i] ? [] : [[word, wb[i]!]]));
  return differing.length === 1 && differing[0]!.every((word) => word.length <= 4);
}

/** A URL's path; '' for what does not parse (the URL check refuses it with its own message). */
function pathOf(url: string): string {
  try {
    return new URL(url).pathname;
  } catch {
    return '';
  }
}

/** Variables Beacon reads besides the configuration's own (otel/options.ts); other `OTEL_*` ones are the SDK's. */
const OTHER_VARIABLES = ['METRICS_HOST', 'METRICS_PORT'];
/** The default app's variables, which `APPS_FILE` replaces. */
const DEFAULT_APP_VARIABLES = VARIABLES.filter((v) => v.env.startsWith('APP_')).map((v) => v.env);

/**
 * What in the environment the configuration ignores, for the start-up log (`config_warning`): a variable named like one
 * of Beacon's but not quite (`LOGLEVEL`, `MAX_CONECTIONS`: one character off, two for longer names; `OTEL_*` left to
 * the SDK), and the default app's variables when `APPS_FILE` gives the apps. Each was ignored without a word, while a
 * misspelt key in `APPS_FILE` is refused.
 */
export function envWarnings(env: NodeJS.ProcessEnv): ConfigWarning[] {
  const warnings: ConfigWarning[] = [];
  const known = new Set([...VARIABLES.map((v) => v.env), ...OTHER_VARIABLES]);
  for (const name of Object.keys(env)) {
    if (known.has(name) || name.length < 6 || name.startsWith('OTEL_') || !/^[A-Z][A-Z0-9_]*$/.test(name)) continue;
    const near = [...known].find((k) => distance(name, k) <= (k.length < 10 ? 1 : 2) && !shortWordSwapped(name, k));
    if (near !== undefined) {
      warnings.push({ variables: [name], message: `${name} is not a Beacon variable and is ignored: did you mean ${near}?` });
    }
  }
  const set = (name: string): boolean => (env[name] ?? '') !== '';
  if (set('APPS_FILE')) {
    const ignored = DEFAULT_APP_VARIABLES.filter(set);
    if (ignored.length > 0) {
      warnings.push({
        variables: ignored,
        message: `${ignored.join(', ')} ${ignored.length === 1 ? 'configures' : 'configure'} the default app, which APPS_FILE replaces: ignored`,
      });
    }
  }
  return warnings;
}

/** Validates the environment and returns the configuration; throws ConfigError naming each bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv): Config {
  const parsed = parseEnv(env);
  if (!parsed.success) throw new ConfigError(parsed.error.issues.map(describeIssue).join('; '));
  return withResourceIdentity(parsed.data, env);
}

/**
 * What is wrong with the environment's settings, one `VARIABLE: what was expected` each (none when it is valid): for the
 * OpenTelemetry bootstrap, which refuses to start on its own settings before the app reads these (otel/register.ts).
 */
export function configProblems(env: NodeJS.ProcessEnv): string[] {
  const parsed = parseEnv(env);
  return parsed.success ? [] : parsed.error.issues.map(describeIssue);
}

function parseEnv(env: NodeJS.ProcessEnv) {
  const input: Record<string, string> = {};
  for (const v of VARIABLES) {
    const value = env[v.env];
    // Empty strings mean "unset", as in most twelve-factor tooling.
    if (value !== undefined && value !== '') input[v.key] = value;
  }
  return configSchema.safeParse(input);
}
