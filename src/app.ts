/**
 * buildApp(config, deps) → a Fastify instance with every part wired, plus the drain used by graceful shutdown.
 * Wiring only: each part is built by its own module and given what it needs.
 */
import websocket from '@fastify/websocket';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Adapter } from './adapters/adapter.js';
import { createLocalAdapter } from './adapters/local-adapter.js';
import { createRedisAdapter } from './adapters/redis-adapter.js';
import type { AppStore } from './apps/app-store.js';
import { createStaticAppStore } from './apps/static-app-store.js';
import type { Config, ConfigWarning } from './config.js';
import type { Server } from 'node:net';
import { apiPlugin } from './http/api.js';
import { clientErrorHandler, refusedRequests } from './http/client-errors.js';
import { httpServerFactory } from './http/http-server.js';
import { frameworkErrors, maxParamLength } from './http/params.js';
import { clientAddress } from './http/client-address.js';
import { registerHealthRoutes } from './http/health.js';
import { notFoundPlugin } from './http/not-found.js';
import type { Deadline } from './lifecycle/deadline.js';
import { drain as runDrain, type DrainResult } from './lifecycle/drain.js';
import { Errors } from './protocol/errors.js';
import type { RealtimeDeps } from './realtime/deps.js';
import { createFanout } from './realtime/fanout.js';
import { gateMemberEvents } from './realtime/member-delivery.js';
import { createMemberResync } from './realtime/member-resync.js';
import { Hub } from './realtime/hub.js';
import { createPublisher } from './realtime/publisher.js';
import { capConnections, descriptorBudget } from './http/descriptor-limit.js';
import { createRouter } from './realtime/router.js';
import { notifyWatchers } from './realtime/watchlist.js';
import { afterLeave } from './realtime/subscribe.js';
import { createLogger, logShippingCounts, stdoutDropCounts, type Logger } from './telemetry/logger.js';
import { skipListeningLines } from './telemetry/fastify-listen-log.js';
import { lazyRequestLogger } from './telemetry/request-logger.js';
import { createMetrics, type Metrics } from './telemetry/metrics.js';
import { countOpenFds, readMaxFds } from './telemetry/process-metrics.js';
import { startHeartbeat } from './transport/heartbeat.js';
import { registerWsRoutes, routeStrayUpgrades, wsErrorHandler } from './transport/ws-route.js';
import { wsServerOptions } from './transport/ws-options.js';
import { VERSION } from './version.js';
import { createWebhookSender, webhookLimits } from './webhooks/webhook-sender.js';

/** Cache channels keep their last event this long (Pusher: 30 minutes). */
const CACHE_TTL_MS = 30 * 60 * 1000;
/** How long an idle keep-alive HTTP connection is kept (fastify's default). */
const KEEP_ALIVE_TIMEOUT_MS = 72_000;

export interface AppDeps {
  logger: Logger;
  metrics: Metrics;
  apps: AppStore;
  /** The cluster engine; the local adapter by default. */
  adapter: (hub: Hub, metrics: Metrics) => Adapter;
}

export interface BeaconApp {
  fastify: FastifyInstance;
  hub: Hub;
  adapter: Adapter;
  logger: Logger;
  /**
   * What the settings lose on this machine, found while building (the file descriptor limit against MAX_CONNECTIONS): said
   * at start with config.ts's `configWarnings`, after `server_started`.
   */
  startWarnings: ConfigWarning[];
  /** True from the start of the drain on. */
  isDraining(): boolean;
  /**
   * Graceful drain (README, "Health and shutdown"; the sequence is lifecycle/drain.ts): readiness 503 and upgrades refused at
   * once; after the grace the API answers 503, what it accepted is written to its subscribers, every client is closed with
   * 4200; then the HTTP server and the adapter close. Every stage is bounded by `deadline`.
   */
  drain(deadline: Deadline): Promise<DrainResult>;
}

export async function buildApp(config: Config, overrides: Partial<AppDeps> = {}): Promise<BeaconApp> {
  const logger =
    overrides.logger ??
    createLogger({
      serviceName: config.serviceName,
      env: config.env,
      nodeId: config.nodeId,
      level: config.logLevel,
      loki:
        config.lokiUrl === undefined
          ? undefined
          : {
              url: config.lokiUrl,
              username: config.lokiUsername,
              password: config.lokiPassword,
              tenantId: config.lokiTenantId,
              spoolMaxBytes: config.lokiSpoolMaxBytes,
            },
    });
  const apps = overrides.apps ?? createStaticAppStore(config.apps);
  // A signed-in user's first / last connection here is reported to the cluster engine, which tells every node's
  // watchers when it is the user's first / last in the cluster (the adapter exists by the time anyone signs in).
  const hub = new Hub(apps.all(), (state, userId, online) => adapter.userPresence(state.app.id, userId, online));
  // The gauges read the adapter's status and the webhook sender's queues at scrape time, after both exist; the adapter
  // records its own traffic.
  const metrics =
    overrides.metrics ??
    createMetrics(
      {
        ...hub.gaugeSources(() => adapter.status()),
        logShipping: () => logShippingCounts(logger),
        stdoutDropped: () => stdoutDropCounts(logger),
        webhookBacklog: () => webhooks.backlog(),
        webhookHeld: () => webhooks.held(),
      },
      {
        version: VERSION,
        appIds: apps.all().flatMap((app) => (app.enabled ? [app.id] : [])),
        disabledAppIds: apps.all().flatMap((app) => (app.enabled ? [] : [app.id])),
      },
    );
  // subscription_count is opt-in per app, as in Pusher: the engines publish none for the others.
  const countsSubscriptions = (id: string): boolean => apps.byId(id)?.enableSubscriptionCount === true;
  const defaultAdapter: AppDeps['adapter'] = (_hub, m) =>
    config.adapter === 'redis'
      ? createRedisAdapter({
          metrics: m,
          logger,
          url: config.redisUrl,
          prefix: config.redisKeyPrefix,
          clusterNodes: config.redisClusterNodes,
          sentinels: config.redisSentinels,
          sentinelMaster: config.redisSentinelMaster,
          sentinelUsername: config.redisSentinelUsername,
          sentinelPassword: config.redisSentinelPassword,
          access: { username: config.redisUsername, password: config.redisPassword, tls: config.redisTls },
          appIds: apps.all().map((a) => a.id),
          nodeId: config.nodeId,
          cacheTtlMs: CACHE_TTL_MS,
          countsSubscriptions,
        })
      : createLocalAdapter({
          metrics: m,
          cacheTtlMs: CACHE_TTL_MS,
          cacheMaxBytes: config.cacheMaxBytes,
          onCacheEvicted: (appId) => m.cacheEvicted(appId),
          countsSubscriptions,
        });
  const adapter = (overrides.adapter ?? defaultAdapter)(hub, metrics);
  const publisher = createPublisher({ adapter, metrics });
  // How long a vacate sent stays marked (`stillGone`): a node whose own vacate was held when it went out cancels that one
  // within its delay of it; twice that, and some room for a slow engine.
  const goneMarkMs = 2 * config.webhookVacateDelayMs + 5000;
  const webhooks = createWebhookSender({
    apps,
    metrics,
    logger,
    ...webhookLimits(config),
    closeTimeoutMs: Math.min(2000, config.shutdownTimeoutMs / 4),
    // A vacate or removal held for the delay is sent only if the cluster still says so: the channel may have been occupied
    // again, or the user come back, on another node (docs/webhooks.md). A cluster engine marks the ones sent, for a node
    // whose own vacate is cancelled by its own occupy meanwhile (`vacateSentElsewhere`).
    stillTrue: async (appId, event) => {
      if (event.name !== 'channel_vacated' && event.name !== 'member_removed') return true;
      const userId = event.name === 'member_removed' ? String(event.user_id) : undefined;
      if (adapter.stillGone !== undefined) return adapter.stillGone(appId, event.channel, userId, goneMarkMs);
      if (userId === undefined) return (await adapter.channel(appId, event.channel)).subscriptionCount === 0;
      return !(await adapter.hasMember(appId, event.channel, userId));
    },
    vacateSentElsewhere:
      adapter.vacateSent === undefined
        ? undefined
        : (appId, event) => adapter.vacateSent!(appId, event.channel, event.name === 'member_added' ? String(event.user_id) : undefined),
    occupySent:
      adapter.occupySent === undefined
        ? undefined
        : (appId, event) => adapter.occupySent!(appId, event.channel, event.name === 'member_added' ? String(event.user_id) : undefined),
  });
  const realtime: RealtimeDeps = { hub, adapter, publisher, metrics, limits: config, webhooks };
  adapter.onEnvelope(gateMemberEvents(hub, metrics, createFanout({ hub, metrics })));
  // A dead node's members and channels, removed by this node: their webhooks go out from here, once.
  adapter.onReaped((channels) => {
    for (const c of channels) {
      const app = apps.byId(c.appId);
      if (app === undefined) continue;
      for (const userId of c.removedUsers) webhooks.emit(app, { name: 'member_removed', channel: c.channel, user_id: userId });
      if (c.vacated) webhooks.emit(app, { name: 'channel_vacated', channel: c.channel });
      if (c.count !== undefined) webhooks.emit(app, { name: 'subscription_count', channel: c.channel, subscription_count: c.count });
    }
  });
  // Member events this node may have missed (its Redis subscriber was away): its presence subscribers' lists read again.
  if (adapter.membersChangedSince !== undefined) adapter.onEventsMissed?.(createMemberResync({ hub, adapter, logger }));
  // A big channel's trailing count, published by this node once the throttle's interval ended: its webhook goes out from
  // here, once (the counts of joins, leaves and reaps come with their outcomes).
  adapter.onCountPublished((appId, channel, count) => {
    const app = apps.byId(appId);
    if (app !== undefined) webhooks.emit(app, { name: 'subscription_count', channel, subscription_count: count });
  });
  adapter.onUserPresence((appId, userId, online) => {
    const state = hub.state(appId);
    if (state !== undefined) notifyWatchers(state, userId, online);
  });
  adapter.onTerminateUser((appId, userId) => {
    for (const connection of [...hub.userConnections(appId, userId)]) {
      connection.close(Errors.CLOSE_TERMINATED.code, Errors.CLOSE_TERMINATED.message, 'terminated');
    }
  });
  const router = createRouter(realtime);
  const heartbeat = startHeartbeat({
    hub,
    activityTimeoutMs: config.activityTimeoutSeconds * 1000,
    pongTimeoutMs: config.pongTimeoutMs,
    userAuthTimeoutMs: config.userAuthTimeoutMs,
  });

  let draining = false;
  // Open until the drain's third step: from then on the API answers 503 and accepts no publish (lifecycle/drain.ts).
  let apiAccepting = true;
  const startedAt = performance.now();
  const refused = refusedRequests({ metrics, logger });
  /** The client's address of a raw request: the peer, or under TRUST_PROXY the client a trusted proxy names. */
  const addressOf = clientAddress(config.trustProxy);
  const fastify = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    // Per-request lines are replaced by one `api_request` line per API call (http/api.ts).
    logController: new LogController({ disableRequestLogging: true }),
    // A request's pino child is made only if the request writes a line (telemetry/request-logger.ts).
    childLoggerFactory: lazyRequestLogger,
    bodyLimit: config.apiBodyLimitBytes,
    forceCloseConnections: true,
    // Node's server with a guard for what Node answers on its own (http/http-server.ts). Every request must arrive within
    // HTTP_REQUEST_TIMEOUT_MS, headers and body (fastify's default is none). Node checks its timeouts every
    // `connectionsCheckingInterval` (30 s by default): a quarter of the timeout bounds the overshoot.
    serverFactory: httpServerFactory(
      {
        requestTimeoutMs: config.httpRequestTimeoutMs,
        keepAliveTimeoutMs: KEEP_ALIVE_TIMEOUT_MS,
        checkIntervalMs: Math.min(30_000, Math.ceil(config.httpRequestTimeoutMs / 4)),
      },
      { refused, metrics, addressOf },
    ),
    return503OnClosing: true,
    // `request.ip` (the `remote_address` of connection lines) is the X-Forwarded-For client of a trusted proxy.
    trustProxy: config.trustProxy,
    // Channel names and user ids are path parameters: the default (100) would turn valid long ones into 404 / 414.
    routerOptions: { maxParamLength: maxParamLength(config) },
    // A request the router or the HTTP parser refuses: the registry's answer, counted and logged (http/client-errors.ts).
    frameworkErrors: frameworkErrors(refused, addressOf),
    clientErrorHandler: clientErrorHandler(refused),
  });
  // fastify's own `Server listening at …` lines carry no catalog event; `server_started` says it (telemetry/fastify-listen-log.ts).
  skipListeningLines(fastify.log);
  const capacity = limitToDescriptors(fastify.server, config, { metrics, logger });
  const strayUpgrades = routeStrayUpgrades(fastify);
  await fastify.register(websocket, {
    options: wsServerOptions(config.maxPayloadBytes),
    errorHandler: wsErrorHandler(logger),
  });
  registerHealthRoutes(fastify, { startedAt, isDraining: () => draining, adapterStatus: () => adapter.status() });
  registerWsRoutes(fastify, {
    apps,
    hub,
    router,
    metrics,
    logger,
    activityTimeoutSeconds: config.activityTimeoutSeconds,
    maxConnections: capacity.maxConnections,
    sendBufferMaxBytes: config.sendBufferMaxBytes,
    framesPerSecond: config.frameRateLimitPerSecond,
    newConnectionsPerSecond: config.newConnectionsPerSecond,
    maxRefusedSockets: capacity.maxRefusedSockets,
    isDraining: () => draining,
    quota: {
      reserve: (app, id) => adapter.reserveConnection(app.id, app.maxConnections, id),
      release: (app, id) => adapter.releaseConnection(app.id, id),
    },
    onConnectionClosed: (connection, left) => {
      for (const l of left) afterLeave(realtime, connection.app.id, l);
    },
    strayUpgrades,
  });
  await fastify.register(notFoundPlugin, { metrics, logger, maxParamLength: maxParamLength(config), refused });
  await fastify.register(apiPlugin, {
    prefix: '/apps/:appId',
    apps,
    adapter,
    publisher,
    metrics,
    logger,
    config,
    isAccepting: () => apiAccepting,
  });

  const drain = (deadline: Deadline): Promise<DrainResult> =>
    runDrain(
      {
        hub,
        adapter,
        logger,
        metrics,
        graceMs: config.shutdownGraceMs,
        startDraining: () => {
          draining = true;
        },
        stopAcceptingApi: () => {
          apiAccepting = false;
        },
        heartbeat,
        webhooks,
        server: fastify,
      },
      deadline,
    );

  return { fastify, hub, adapter, logger, startWarnings: capacity.startWarnings, isDraining: () => draining, drain };
}

/** What the server holds, MAX_CONNECTIONS and MAX_REFUSED_SOCKETS within what the file descriptor limit leaves. */
interface Capacity {
  /** WebSocket connections (0: none); past it an upgrade is refused with 4100. */
  maxConnections: number;
  maxRefusedSockets: number;
  startWarnings: ConfigWarning[];
}

/**
 * The server's connections kept within the file descriptor limit (http/descriptor-limit.ts): all of them by the server,
 * WebSockets below that (4100 past it), and refused upgrades within the rest; and a warning when `MAX_CONNECTIONS` is more
 * than the limit leaves WebSockets (it stands for that instead).
 */
function limitToDescriptors(server: Server, config: Config, deps: { metrics: Metrics; logger: Logger }): Capacity {
  const configured = { maxConnections: config.maxConnections, maxRefusedSockets: config.maxRefusedSockets, startWarnings: [] };
  const maxFds = readMaxFds();
  const budget = descriptorBudget(maxFds, countOpenFds());
  if (maxFds === undefined || budget === undefined) return configured;
  capConnections(server, budget.sockets, { ...deps, maxFds });
  const maxRefusedSockets = Math.min(config.maxRefusedSockets, budget.refusedSockets);
  if (config.maxConnections > 0 && config.maxConnections <= budget.webSockets) {
    return { maxConnections: config.maxConnections, maxRefusedSockets, startWarnings: [] };
  }
  const startWarnings: ConfigWarning[] =
    config.maxConnections === 0
      ? []
      : [
          {
            variables: ['MAX_CONNECTIONS'],
            message: `MAX_CONNECTIONS (${config.maxConnections}) is more than the ${budget.webSockets} WebSocket connections the file descriptor limit (${maxFds}) leaves with a share for the HTTP API and health probes: past ${budget.webSockets} upgrades are refused with 4100; raise the limit (ulimit -n, LimitNOFILE) or lower MAX_CONNECTIONS`,
          },
        ];
  return { maxConnections: budget.webSockets, maxRefusedSockets, startWarnings };
}
