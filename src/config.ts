/**
 * The one table from environment (and an optional apps JSON file) to typed configuration.
 * Every value is validated at start-up; an invalid one stops the process with a message naming the variable.
 * Units are in the names (…Ms, …Bytes, …Seconds).
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { z } from 'zod';
import {
  allEventsWebhook,
  MAX_WEBHOOKS_PER_APP,
  toWebhookConfig,
  webhookListSchema,
  type WebhookConfig,
} from './webhooks/webhook-config.js';

export { allEventsWebhook, type WebhookConfig };

/** One Pusher application: credentials and its per-app policy. */
export interface AppConfig {
  id: string;
  key: string;
  secret: string;
  enabled: boolean;
  enableClientEvents: boolean;
  /** 0 means no per-app limit. */
  maxConnections: number;
  clientEventsPerSecond: number;
  userAuthenticationRequired: boolean;
  webhookUrl: string | undefined;
  /** Every webhook of the app, the `webhookUrl` shorthand first; empty: the app sends none. */
  webhooks: WebhookConfig[];
}

export interface Config {
  host: string;
  port: number;
  nodeId: string;
  env: string;
  serviceName: string;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  apps: AppConfig[];
  activityTimeoutSeconds: number;
  /** Apps requiring user authentication close connections not signed in within this time (4009). */
  userAuthTimeoutMs: number;
  pongTimeoutMs: number;
  maxPayloadBytes: number;
  /** 0 means no process-wide limit. */
  maxConnections: number;
  maxChannelNameLength: number;
  maxEventNameLength: number;
  maxChannelsPerPublish: number;
  maxBatchSize: number;
  maxPresenceMembers: number;
  maxPresenceMemberBytes: number;
  maxPresenceUserIdLength: number;
  maxWatchlistSize: number;
  sendBufferMaxBytes: number;
  apiTimestampToleranceSeconds: number;
  /** HTTP API requests per app per second; 0 means unlimited. Excess gets 429. */
  apiRequestsPerSecond: number;
  /** New WebSocket connections per app per second; 0 means unlimited. Excess is closed with 4100. */
  newConnectionsPerSecond: number;
  shutdownGraceMs: number;
  shutdownTimeoutMs: number;
  lokiUrl: string | undefined;
  lokiUsername: string | undefined;
  lokiPassword: string | undefined;
  lokiTenantId: string | undefined;
  /** Bytes of log lines held for Loki while pushes fail (retried with back-off); past it the oldest are dropped. */
  lokiSpoolMaxBytes: number;
  /** Refused WebSocket upgrades waiting (at most 2 s) for the client's close frame; past it one is cut at once. */
  maxRefusedSockets: number;
  webhookBatchMs: number;
  webhookBatchMaxEvents: number;
  webhookMaxPendingEvents: number;
  webhookVacateDelayMs: number;
  webhookRetryBaseMs: number;
  webhookRetryMaxMs: number;
  webhookRetryDeadlineMs: number;
  webhookRequestTimeoutMs: number;
  /** The cluster engine: `local` (one process, in memory) or `redis` (many processes sharing `redisUrl`). */
  adapter: 'local' | 'redis';
  redisUrl: string;
  /** Frames one connection may send per second, every kind; 0 means unlimited. Excess gets `pusher:error` 4301. */
  frameRateLimitPerSecond: number;
  /** Deepest JSON nesting of a client frame; deeper frames are refused before they are parsed. */
  maxJsonDepth: number;
  /** Channels one connection may be subscribed to at once; more gets `pusher:subscription_error`. */
  maxSubscriptionsPerConnection: number;
  /** Bytes of cache-channel events this node keeps (least recently used evicted first). */
  cacheMaxBytes: number;
  /** Redis Cluster seed nodes (`host:port`); when set, `redisUrl` is not used and pub/sub is sharded. */
  redisClusterNodes: { host: string; port: number }[];
}

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');
const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max);

const appSchema = z.object({
  id: z.string().min(1).max(64).regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, _ . - only'),
  key: z.string().min(1).max(128).regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, _ . - only'),
  secret: z.string().min(1),
  enabled: z.boolean().default(true),
  enableClientEvents: z.boolean().default(false),
  maxConnections: z.number().int().min(0).default(0),
  clientEventsPerSecond: z.number().int().min(1).default(10),
  userAuthenticationRequired: z.boolean().default(false),
  webhookUrl: z.url().optional(),
  webhooks: webhookListSchema.default([]),
});

function toAppConfig(app: z.infer<typeof appSchema>): AppConfig {
  const listed = app.webhooks.map(toWebhookConfig);
  const webhooks = app.webhookUrl === undefined ? listed : [allEventsWebhook(app.webhookUrl), ...listed];
  if (webhooks.length > MAX_WEBHOOKS_PER_APP) {
    throw new ConfigError(`app ${app.id}: at most ${MAX_WEBHOOKS_PER_APP} webhooks (the webhookUrl shorthand counts as one)`);
  }
  return { ...app, webhookUrl: app.webhookUrl, webhooks };
}

const envSchema = z.object({
  HOST: z.string().min(1).default('0.0.0.0'),
  PORT: int(0, 65535).default(6001),
  NODE_ID: z.string().min(1).optional(),
  DEPLOYMENT_ENV: z.string().min(1).default('development'),
  OTEL_SERVICE_NAME: z.string().min(1).default('beacon'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  APP_ID: z.string().default('app-id'),
  APP_KEY: z.string().default('app-key'),
  APP_SECRET: z.string().default('app-secret'),
  APP_ENABLE_CLIENT_EVENTS: bool.default(false),
  APP_MAX_CONNECTIONS: int(0).default(0),
  APP_CLIENT_EVENTS_PER_SECOND: int(1).default(10),
  APP_USER_AUTHENTICATION_REQUIRED: bool.default(false),
  APP_WEBHOOK_URL: z.url().optional(),
  APP_WEBHOOKS: z.string().min(1).optional(),
  APPS_FILE: z.string().min(1).optional(),
  ACTIVITY_TIMEOUT: int(1, 3600).default(120),
  PONG_TIMEOUT_MS: int(100, 600_000).default(30_000),
  USER_AUTH_TIMEOUT_MS: int(100, 3_600_000).default(30_000),
  MAX_PAYLOAD_BYTES: int(1024, 10 * 1024 * 1024).default(100_000),
  MAX_CONNECTIONS: int(0).default(0),
  MAX_CHANNEL_NAME_LENGTH: int(1, 1000).default(200),
  MAX_EVENT_NAME_LENGTH: int(1, 1000).default(200),
  MAX_CHANNELS_PER_PUBLISH: int(1, 1000).default(100),
  MAX_BATCH_SIZE: int(1, 1000).default(10),
  MAX_PRESENCE_MEMBERS: int(1, 100_000).default(100),
  MAX_PRESENCE_MEMBER_BYTES: int(16, 1024 * 1024).default(2048),
  MAX_PRESENCE_USER_ID_LENGTH: int(1, 1024).default(128),
  MAX_WATCHLIST_SIZE: int(0, 10_000).default(100),
  SEND_BUFFER_MAX_BYTES: int(1024).default(4 * 1024 * 1024),
  API_TIMESTAMP_TOLERANCE_SECONDS: int(1).default(600),
  API_RATE_LIMIT_PER_SECOND: int(0).default(0),
  CONNECTION_RATE_LIMIT_PER_SECOND: int(0).default(0),
  SHUTDOWN_GRACE_MS: int(0, 600_000).default(1000),
  SHUTDOWN_TIMEOUT_MS: int(100, 600_000).default(10_000),
  LOKI_URL: z.url().optional(),
  LOKI_USERNAME: z.string().min(1).optional(),
  LOKI_PASSWORD: z.string().min(1).optional(),
  LOKI_TENANT_ID: z.string().min(1).optional(),
  LOKI_SPOOL_MAX_BYTES: int(64 * 1024, 1024 * 1024 * 1024).default(32 * 1024 * 1024),
  MAX_REFUSED_SOCKETS: int(0, 1_000_000).default(1000),
  WEBHOOK_BATCH_MS: int(0, 60_000).default(50),
  WEBHOOK_BATCH_MAX_EVENTS: int(1, 1000).default(50),
  WEBHOOK_MAX_PENDING_EVENTS: int(1, 1_000_000).default(10_000),
  WEBHOOK_VACATE_DELAY_MS: int(0, 60_000).default(3000),
  WEBHOOK_RETRY_BASE_MS: int(1, 600_000).default(1000),
  WEBHOOK_RETRY_MAX_MS: int(1, 3_600_000).default(60_000),
  WEBHOOK_RETRY_DEADLINE_MS: int(0, 86_400_000).default(300_000),
  WEBHOOK_REQUEST_TIMEOUT_MS: int(100, 600_000).default(10_000),
  ADAPTER: z.enum(['local', 'redis']).default('local'),
  REDIS_URL: z
    .url()
    .refine((u) => /^rediss?:\/\//.test(u), 'a redis:// or rediss:// URL')
    .default('redis://127.0.0.1:6379'),
  FRAME_RATE_LIMIT_PER_SECOND: int(0).default(200),
  MAX_JSON_DEPTH: int(2, 1000).default(32),
  MAX_SUBSCRIPTIONS_PER_CONNECTION: int(1, 1_000_000).default(100),
  CACHE_MAX_BYTES: int(1024).default(64 * 1024 * 1024),
  REDIS_CLUSTER_NODES: z
    .string()
    .regex(/^\s*[^\s,:]+:\d{1,5}\s*(,\s*[^\s,:]+:\d{1,5}\s*)*$/, 'host:port[,host:port…]')
    .optional(),
});

/** Thrown when the configuration is invalid; `message` names every offending variable. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

function formatIssues(prefix: string, error: z.ZodError): string {
  return error.issues
    .map((issue) => `${prefix}${issue.path.join('.') || '(root)'}: ${issue.message}`)
    .join('; ');
}

function loadAppsFile(path: string): AppConfig[] {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ConfigError(`APPS_FILE: cannot read ${path}: ${(err as Error).message}`);
  }
  const list = Array.isArray(raw) ? raw : (raw as { apps?: unknown } | null)?.apps;
  const parsed = z.array(appSchema).min(1).safeParse(list);
  if (!parsed.success) throw new ConfigError(formatIssues(`APPS_FILE (${path}) apps.`, parsed.error));
  return parsed.data.map(toAppConfig);
}

/** Validates the environment and returns the configuration; throws ConfigError naming each bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv): Config {
  // Empty strings mean "unset", as in most twelve-factor tooling.
  const defined = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = envSchema.safeParse(defined);
  if (!parsed.success) throw new ConfigError(formatIssues('', parsed.error));
  const e = parsed.data;

  let webhooks: unknown = [];
  if (e.APP_WEBHOOKS !== undefined) {
    try {
      webhooks = JSON.parse(e.APP_WEBHOOKS);
    } catch (err) {
      throw new ConfigError(`APP_WEBHOOKS: not JSON: ${(err as Error).message}`);
    }
    const list = webhookListSchema.safeParse(webhooks);
    if (!list.success) throw new ConfigError(formatIssues('APP_WEBHOOKS.', list.error));
  }
  const defaultApp = appSchema.safeParse({
    webhooks,
    id: e.APP_ID,
    key: e.APP_KEY,
    secret: e.APP_SECRET,
    enableClientEvents: e.APP_ENABLE_CLIENT_EVENTS,
    maxConnections: e.APP_MAX_CONNECTIONS,
    clientEventsPerSecond: e.APP_CLIENT_EVENTS_PER_SECOND,
    userAuthenticationRequired: e.APP_USER_AUTHENTICATION_REQUIRED,
    webhookUrl: e.APP_WEBHOOK_URL,
  });
  if (!defaultApp.success) {
    const names: Record<string, string> = { id: 'APP_ID', key: 'APP_KEY', secret: 'APP_SECRET' };
    throw new ConfigError(
      defaultApp.error.issues.map((i) => `${names[String(i.path[0])] ?? String(i.path[0])}: ${i.message}`).join('; '),
    );
  }
  const apps: AppConfig[] = e.APPS_FILE ? loadAppsFile(e.APPS_FILE) : [toAppConfig(defaultApp.data)];
  assertUnique(apps, 'id');
  assertUnique(apps, 'key');

  return {
    host: e.HOST,
    port: e.PORT,
    nodeId: e.NODE_ID ?? `${hostname()}-${process.pid}`,
    env: e.DEPLOYMENT_ENV,
    serviceName: e.OTEL_SERVICE_NAME,
    logLevel: e.LOG_LEVEL,
    apps,
    activityTimeoutSeconds: e.ACTIVITY_TIMEOUT,
    pongTimeoutMs: e.PONG_TIMEOUT_MS,
    userAuthTimeoutMs: e.USER_AUTH_TIMEOUT_MS,
    maxPayloadBytes: e.MAX_PAYLOAD_BYTES,
    maxConnections: e.MAX_CONNECTIONS,
    maxChannelNameLength: e.MAX_CHANNEL_NAME_LENGTH,
    maxEventNameLength: e.MAX_EVENT_NAME_LENGTH,
    maxChannelsPerPublish: e.MAX_CHANNELS_PER_PUBLISH,
    maxBatchSize: e.MAX_BATCH_SIZE,
    maxPresenceMembers: e.MAX_PRESENCE_MEMBERS,
    maxPresenceMemberBytes: e.MAX_PRESENCE_MEMBER_BYTES,
    maxPresenceUserIdLength: e.MAX_PRESENCE_USER_ID_LENGTH,
    maxWatchlistSize: e.MAX_WATCHLIST_SIZE,
    sendBufferMaxBytes: e.SEND_BUFFER_MAX_BYTES,
    apiTimestampToleranceSeconds: e.API_TIMESTAMP_TOLERANCE_SECONDS,
    apiRequestsPerSecond: e.API_RATE_LIMIT_PER_SECOND,
    newConnectionsPerSecond: e.CONNECTION_RATE_LIMIT_PER_SECOND,
    shutdownGraceMs: e.SHUTDOWN_GRACE_MS,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    lokiUrl: e.LOKI_URL,
    lokiUsername: e.LOKI_USERNAME,
    lokiPassword: e.LOKI_PASSWORD,
    lokiTenantId: e.LOKI_TENANT_ID,
    lokiSpoolMaxBytes: e.LOKI_SPOOL_MAX_BYTES,
    maxRefusedSockets: e.MAX_REFUSED_SOCKETS,
    webhookBatchMs: e.WEBHOOK_BATCH_MS,
    webhookBatchMaxEvents: e.WEBHOOK_BATCH_MAX_EVENTS,
    webhookMaxPendingEvents: e.WEBHOOK_MAX_PENDING_EVENTS,
    webhookVacateDelayMs: e.WEBHOOK_VACATE_DELAY_MS,
    webhookRetryBaseMs: e.WEBHOOK_RETRY_BASE_MS,
    webhookRetryMaxMs: e.WEBHOOK_RETRY_MAX_MS,
    webhookRetryDeadlineMs: e.WEBHOOK_RETRY_DEADLINE_MS,
    webhookRequestTimeoutMs: e.WEBHOOK_REQUEST_TIMEOUT_MS,
    adapter: e.ADAPTER,
    redisUrl: e.REDIS_URL,
    frameRateLimitPerSecond: e.FRAME_RATE_LIMIT_PER_SECOND,
    maxJsonDepth: e.MAX_JSON_DEPTH,
    maxSubscriptionsPerConnection: e.MAX_SUBSCRIPTIONS_PER_CONNECTION,
    cacheMaxBytes: e.CACHE_MAX_BYTES,
    redisClusterNodes: (e.REDIS_CLUSTER_NODES ?? '')
      .split(',')
      .map((n) => n.trim())
      .filter((n) => n !== '')
      .map((n) => ({ host: n.slice(0, n.lastIndexOf(':')), port: Number(n.slice(n.lastIndexOf(':') + 1)) })),
  };
}

function assertUnique(apps: AppConfig[], field: 'id' | 'key'): void {
  const seen = new Set<string>();
  for (const app of apps) {
    if (seen.has(app[field])) throw new ConfigError(`APPS_FILE: duplicate app ${field} "${app[field]}"`);
    seen.add(app[field]);
  }
}
