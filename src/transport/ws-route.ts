/**
 * The WebSocket entry: `/app/{key}` (and 4005 for any other path). Admits or rejects the connection, sends
 * `pusher:connection_established`, and wires the socket's events to the router and the hub.
 */
import { randomInt, randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { SpanContext } from '@opentelemetry/api';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import type { AppStore } from '../apps/app-store.js';
import type { AppConfig } from '../config.js';
import { Errors, type CloseError } from '../protocol/errors.js';
import { encodeConnectionEstablished, encodeError } from '../protocol/encode.js';
import { TextFrame } from './preframed.js';
import type { Hub } from '../realtime/hub.js';
import type { Router } from '../realtime/router.js';
import { logEvent } from '../telemetry/log-events.js';
import type { Logger } from '../telemetry/logger.js';
import type { Metrics } from '../telemetry/metrics.js';
import type { RejectReason } from './close-reasons.js';
import { contextFromHeaders, startConnectSpan } from '../telemetry/tracing.js';
import { FixedWindow } from '../limits/fixed-window.js';
import { answerOnSocket } from '../http/raw-answer.js';
import { clipped, loggedAddress } from '../http/client-address.js';
import { CLOSE_HANDSHAKE_MS, Connection } from './connection.js';
import { detachUpgradeResponse, ownSocketErrors, recordUpgradeReply, upgradeRequest } from './upgrade-leftovers.js';
import { quietEnds } from './quiet-end.js';

export interface WsRouteOptions {
  apps: AppStore;
  hub: Hub;
  router: Router;
  metrics: Metrics;
  logger: Logger;
  activityTimeoutSeconds: number;
  maxConnections: number;
  sendBufferMaxBytes: number;
  /** Frames per connection per second, every kind (FRAME_RATE_LIMIT_PER_SECOND); 0 means unlimited. */
  framesPerSecond: number;
  /** New connections per app per second; 0 means unlimited. */
  newConnectionsPerSecond: number;
  /** Refused sockets held in their close handshake at once; past it a refused socket is cut without waiting. */
  maxRefusedSockets: number;
  /** True while the server drains: new upgrades get HTTP 503. */
  isDraining: () => boolean;
  /**
   * The cluster-wide connection quota of an app with `maxConnections` (Adapter `reserveConnection`): false refuses with
   * 4004, a rejection (engine down) with 4100; every accepted reservation is released when its connection closes.
   */
  quota?: { reserve: (app: AppConfig, socketId: string) => Promise<boolean>; release: (app: AppConfig, socketId: string) => void };
  /** Called after a connection is gone from the hub (presence and count events). */
  onConnectionClosed: (connection: Connection, left: ReturnType<Hub['removeConnection']>) => void;
  /** Binds the refusal of upgrades to the server's other GET routes (`routeStrayUpgrades`). */
  strayUpgrades?: (refuse: WsHandler) => void;
}

/** ws's frame errors (`WS_ERR_…`) and the socket's errno codes (`ECONNRESET`, `EPIPE`, …): what a peer can cause. */
const PEER_ERROR = /^(WS_ERR_[A-Z0-9_]+|E[A-Z]+)$/;

/** Protocol versions accepted; pusher-js sends 7. */
const SUPPORTED_PROTOCOLS = new Set([5, 6, 7]);
/** How a protocol version is written in the query (`?protocol=7`); anything else closes with 4006. */
const DECIMAL_VERSION = /^[0-9]{1,6}$/;

/**
 * An upgrade refused with the registry's close error (message filled with `args`), counted under `reason`; `appId` once
 * the key named an app (its line says which tenant was refused: over its quota, disabled, rate-limited).
 */
type Refusal = { reason: RejectReason; code: number; message: string; appId?: string };
const refusal = (reason: RejectReason, error: CloseError, ...args: ReadonlyArray<string | number>): Refusal => ({
  reason,
  code: error.code,
  message: error.format(...args),
});

/**
 * How much of the client's own words `connection_opened` writes: its User-Agent (real ones are under 300 characters) and
 * each of `protocol`, `client` and `version` from its query. Uncut, a 15 KB header made a 15 KB line per connection.
 */
const USER_AGENT_LOGGED = 512;

/** The upgrade's query as fastify parses it: a parameter given more than once is a list of its values. */
type Query = Record<string, string | string[] | undefined>;
const QUERY_VALUE_LOGGED = 64;

/**
 * A query value as `connection_opened` writes it: a parameter the client repeated (`?client=…&client=…`, which the query
 * parser hands over as a list) is written as its values joined with commas, cut as one value is — a list of two 7 KB
 * values was written whole, a 14 KB line per connection.
 */
function queryValueLogged(value: string | string[] | undefined): string | undefined {
  return clipped(Array.isArray(value) ? value.join(',') : value, QUERY_VALUE_LOGGED);
}

/**
 * The fields of `connection_opened`, built only if the line is written. A function of its own, so that the closure holds
 * the request and not `accept`'s scope, which the socket's listeners keep for the connection's life.
 */
function openedFields(
  request: FastifyRequest<{ Querystring: Query }>,
  upgradeSpan: SpanContext | undefined,
): () => Record<string, unknown> {
  return () => ({
    remote_address: loggedAddress(request.ip),
    user_agent: clipped(request.headers['user-agent'], USER_AGENT_LOGGED),
    protocol: queryValueLogged(request.query.protocol),
    client: queryValueLogged(request.query.client),
    version: queryValueLogged(request.query.version),
    ...(upgradeSpan !== undefined ? { trace_id: upgradeSpan.traceId, span_id: upgradeSpan.spanId } : {}),
  });
}

/**
 * A new session id. Node 20's `randomUUID()` returns it as a tree of ~14 concatenated strings, ~490 B of heap for as long
 * as the connection holds it; reading a character makes V8 flatten it into one 36-character string (~60 B).
 */
function newSessionId(): string {
  const id = randomUUID();
  id.charCodeAt(0);
  return id;
}

function socketId(): string {
  return `${randomInt(1, 2 ** 31)}.${randomInt(1, 2 ** 31)}`;
}

/**
 * @fastify/websocket's `errorHandler`: its default logs every socket error at `error` level with a stack and terminates
 * the socket. A socket error is the peer's doing (the route's own listener counts and logs it, and ws closes the socket
 * with the right code); only an exception thrown by a handler is the server's, and is logged as such.
 */
export function wsErrorHandler(logger: Logger): (error: Error & { code?: string }, socket: WebSocket) => void {
  return (error, socket) => {
    if (error.code !== undefined && PEER_ERROR.test(error.code)) return;
    logEvent(logger, 'error', { event: 'handler_failed', err: error }, 'WebSocket handler failed');
    socket.terminate();
  };
}

/** A WebSocket route's handler, as @fastify/websocket calls it once the handshake is done. */
type WsHandler = (socket: WebSocket, request: FastifyRequest) => void;

/**
 * Gives every GET route that has no WebSocket handler (`/healthz`, `/readyz`, the API's GETs) the one of any other
 * WebSocket path, so that an upgrade sent to it is refused as on an unknown path — 4005, counted and logged within the
 * bound — instead of by @fastify/websocket's `noHandle`: a bare close after the 101, uncounted, and an info line per attempt
 * with the raw URL (an API request's signature included). Must be called before @fastify/websocket is registered: its own
 * onRoute hook reads `wsHandler` to decide. Returns the setter `registerWsRoutes` binds the refusal with.
 */
export function routeStrayUpgrades(fastify: FastifyInstance): (refuse: WsHandler) => void {
  let refuse: WsHandler = (socket) => socket.terminate();
  fastify.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    if (route.websocket === true || route.wsHandler !== undefined) return;
    // @fastify/websocket takes a handler on GET routes only (and leaves a HEAD route's alone).
    if (!methods.includes('GET') || methods.some((m) => m !== 'GET' && m !== 'HEAD')) return;
    route.wsHandler = (socket, request) => refuse(socket, request);
  });
  return (handler) => {
    refuse = handler;
  };
}

/**
 * What RFC 6455 §4.1 asks of an opening handshake and ws does not check: HTTP/1.1 (or a later 1.x, which Node's parser
 * takes none of; an `HTTP/2.0` or `HTTP/0.9` request line is no HTTP/2 or 0.9 upgrade, only bytes in HTTP/1 form), and a
 * `Host` header (a plain HTTP/1.1 request without one is refused by http-server.ts; an upgrade bypasses that guard).
 * Undefined when both hold.
 */
function handshakeFault(raw: IncomingMessage): string | undefined {
  if (raw.httpVersionMajor !== 1 || raw.httpVersionMinor < 1) return `HTTP/${raw.httpVersion} (the handshake needs HTTP/1.1)`;
  if (raw.headers.host === undefined) return 'no Host header';
  return undefined;
}

/** What a refusal of the WebSocket version says ws speaks (RFC 6455 §4.4). */
const WS_VERSIONS = 'Sec-WebSocket-Version: 13, 8';

export function registerWsRoutes(fastify: FastifyInstance, options: WsRouteOptions): void {
  const { apps, hub, router, metrics, logger } = options;
  const rejectionLogWindow = new FixedWindow(10);
  const connectionWindows = new Map(apps.all().map((a) => [a.id, new FixedWindow(options.newConnectionsPerSecond)]));
  // Refused sockets are in no hub and under no MAX_CONNECTIONS, so they get their own bounds: how many, and for how long.
  let refusedInHandshake = 0;

  /**
   * Counts and logs one refused upgrade. A connection flood must not become a log flood: every refusal is counted, at most
   * 10 a second are logged.
   */
  const connectionRejected = (
    reason: RejectReason,
    fields: () => Record<string, unknown>,
    message: string,
    appId?: string,
  ): void => {
    metrics.connectionRejected(reason, appId);
    if (rejectionLogWindow.allow(performance.now())) {
      logEvent(logger, 'info', { event: 'connection_rejected', reason, ...fields() }, message);
    }
  };

  const reject = (
    socket: WebSocket,
    request: FastifyRequest,
    reason: RejectReason,
    code: number,
    message: string,
    appId?: string,
  ): void => {
    connectionRejected(
      reason,
      () => ({ ...(appId === undefined ? {} : { app_id: appId }), code, remote_address: loggedAddress(request.ip), request_id: request.id }),
      message,
      appId,
    );
    if (socket.readyState !== socket.OPEN) {
      // The client left while its upgrade waited (the cluster counting its app's quota): nothing to send, and no close to
      // wait for — ws emitted it already. Counted among the sockets held, its place was never given back.
      released(request);
      return;
    }
    if (refusedInHandshake >= options.maxRefusedSockets) {
      // A refusal flood: no fd waits for the client's close frame beyond the cap. The refusal still goes out: the error
      // and the close frame join the held 101 in the socket's one write to the kernel, which sends them before the FIN
      // of the cut. Cut without them, a client saw 1006, which pusher-js answers by reconnecting at once instead of
      // backing off as a 4100 tells it to (a probe at a full node: 672 of 4 473 refusals).
      socket.send(encodeError(message, code));
      socket.close(code, message);
      released(request);
      socket.terminate();
      return;
    }
    refusedInHandshake++;
    socket.once('close', () => refusedInHandshake--);
    socket.send(encodeError(message, code));
    socket.close(code, message);
    // ws would wait 30 s for a close frame that a hostile or broken client never sends: bound it as Connection.close does.
    setTimeout(() => socket.terminate(), CLOSE_HANDSHAKE_MS).unref();
  };

  // A handshake ws refuses (an Upgrade header that is not `websocket`, no or a malformed Sec-WebSocket-Key, a
  // Sec-WebSocket-Version other than 13 or 8, a malformed Sec-WebSocket-Protocol; a method other than GET, which fastify's
  // routing keeps from ws in practice). With a listener for `wsClientError`, ws leaves the answer to it instead of writing
  // its own unseen: so these are counted and logged like every refused upgrade, and answered with the registry's 400,
  // naming the versions ws speaks when the version was the fault (ws checks it after the Upgrade header and the key, and
  // says so in its message).
  fastify.websocketServer.on('wsClientError', (err: Error, socket: Duplex, raw: IncomingMessage) => {
    // fastify's request, for the client's address behind a trusted proxy: recorded for upgrades to the WebSocket routes
    // (an upgrade sent to an API route has only its peer's address).
    const request = upgradeRequest(raw);
    const error = Errors.UPGRADE_BAD_HANDSHAKE;
    const message = error.format(err.message);
    connectionRejected(
      'bad_handshake',
      () => ({
        code: error.status,
        detail: err.message,
        remote_address: loggedAddress(request?.ip ?? raw.socket.remoteAddress),
        request_id: request?.id,
      }),
      message,
    );
    answerOnSocket(socket, error, message, err.message.includes('Sec-WebSocket-Version') ? [WS_VERSIONS] : []);
  });

  /**
   * Connections admitted here whose app quota the cluster is still counting (`route`): not in the hub yet, but held
   * against `MAX_CONNECTIONS` — checked only here, before the reservation, a burst of an app with a quota all passed it
   * (40 of 40 over a cap of 10).
   */
  let reserving = 0;

  const admit = (
    key: string,
    query: Query,
  ): { app: AppConfig } | Refusal => {
    const app = apps.byKey(key);
    if (app === undefined) return refusal('unknown_app', Errors.CLOSE_UNKNOWN_APP);
    const refused = (reason: RejectReason, error: CloseError, ...args: ReadonlyArray<string | number>): Refusal => ({
      ...refusal(reason, error, ...args),
      appId: app.id,
    });
    if (!app.enabled) return refused('app_disabled', Errors.CLOSE_APP_DISABLED);
    if (connectionWindows.get(app.id)?.allow(performance.now()) === false) {
      metrics.rateLimited(app.id, 'connections');
      return refused('rate_limited', Errors.CLOSE_CONNECTION_RATE_LIMITED);
    }
    const protocol = query.protocol;
    if (protocol !== undefined) {
      // A version is written as decimal digits: `Number()` alone would read "" as 0, " 7", "0x7" and "7.0" as 7. One given
      // twice is no version.
      const version = typeof protocol === 'string' && DECIMAL_VERSION.test(protocol) ? Number(protocol) : Number.NaN;
      if (!Number.isInteger(version)) {
        return refused('bad_protocol', Errors.CLOSE_INVALID_VERSION);
      }
      if (!SUPPORTED_PROTOCOLS.has(version)) {
        return refused('bad_protocol', Errors.CLOSE_UNSUPPORTED_PROTOCOL, version);
      }
    }
    if (options.maxConnections > 0 && hub.connectionCount() + reserving >= options.maxConnections) {
      return refused('over_capacity', Errors.CLOSE_OVER_CAPACITY);
    }
    const count = hub.state(app.id)?.connections.size ?? 0;
    if (app.maxConnections > 0 && count >= app.maxConnections) {
      return refused('over_quota', Errors.CLOSE_OVER_QUOTA);
    }
    return { app };
  };

  // The answer to a frame past its connection's budget is the same for every one: encoded once. A flood's frames after
  // the budget ran out (the rest of what was read before reading paused) then cost counters and a coalesced write each.
  const overBudgetMessage = Errors.FRAME_RATE_LIMITED.format(options.framesPerSecond);
  const overBudgetAnswer = new TextFrame(Buffer.from(encodeError(overBudgetMessage, Errors.FRAME_RATE_LIMITED.code)));
  /**
   * A frame of `bytes` bytes past the connection's inbound budget, which is checked before any work on a frame (not even
   * its UTF-8 decoding): refused with 4301 and the socket held, so a flood costs counters and one shared answer per frame.
   */
  const overBudget = (connection: Connection, bytes: number, now: number): void => {
    connection.holdInbound(now);
    connection.reject({
      reason: 'frame_rate_limited',
      message: overBudgetMessage,
      code: Errors.FRAME_RATE_LIMITED.code,
      frameBytes: bytes,
      rateLimit: 'frames',
      answer: overBudgetAnswer,
    });
  };

  /**
   * A WebSocket control frame (ping or pong) of `data` from `connection`: within its frame budget, counted under `kind`
   * (true); past it, refused with 4301 and the socket held (false). Either way no proof of life (connection-state.ts).
   */
  const controlFrame = (connection: Connection, data: Buffer, kind: 'ping' | 'pong'): boolean => {
    const now = performance.now();
    if (!connection.pingReceived(data.length, now)) {
      overBudget(connection, data.length, now);
      return false;
    }
    metrics.messageReceived(connection.app.id, kind, data.length);
    return true;
  };

  /** Writes out what the upgrade held (the preHandler hook corked it); every ws handler calls this once it has answered. */
  const released = (request: FastifyRequest): void => {
    const socket = request.raw.socket;
    if (socket.writableCorked > 0) socket.uncork();
    detachUpgradeResponse(request.raw);
  };

  fastify.register(async (scope) => {
    // While draining, upgrades are refused before they happen (load balancers see 503 on /readyz too).
    // A callback hook: an `async` one costs every upgrade a promise and a microtask.
    scope.addHook('onRequest', (request, reply, done) => {
      const fault = request.ws ? handshakeFault(request.raw) : undefined;
      if (fault !== undefined) {
        const error = Errors.UPGRADE_BAD_HANDSHAKE;
        const message = error.format(fault);
        connectionRejected(
          'bad_handshake',
          () => ({ code: error.status, detail: fault, remote_address: loggedAddress(request.ip), request_id: request.id }),
          message,
        );
        reply.code(error.status).header('connection', 'close').send({ error: message });
        return;
      }
      if (!options.isDraining()) {
        done();
        return;
      }
      // Counted and logged under the same reason (the contract's enum has no `draining`: the node is out of capacity), with
      // what was answered and to whom, as every refused upgrade (a proxy that does not retry a 503 elsewhere shows it to
      // the client).
      const status = Errors.UPGRADE_SHUTTING_DOWN.status;
      connectionRejected(
        'over_capacity',
        () => ({ code: status, detail: 'draining', remote_address: loggedAddress(request.ip), request_id: request.id }),
        'server is draining',
      );
      reply.code(status).send({ error: Errors.UPGRADE_SHUTTING_DOWN.message });
    });
    // An upgrade: hold the socket's writes from right before the handler, so the `101 Switching Protocols` ws writes and
    // `connection_established` (or a refusal's error frame) leave in one write. The handler uncorks (`released`); a
    // handshake ws aborts ends the socket, which writes out what is held. Not earlier (onRequest): an HTTP answer fastify
    // sent from a hook in between would be held, then discarded when @fastify/websocket destroys the socket.
    // GET only: only a GET reaches a wsHandler, whose `released` uncorks. A HEAD upgrade (Node passes it to the upgrade
    // path too) is answered by fastify's HEAD route, and nothing of it needs holding (its test passes with either
    // condition: this is the narrower one, not a fix of an observed leak).
    scope.addHook('preHandler', (request, reply, done) => {
      if (request.ws && request.method === 'GET') {
        request.raw.socket.cork();
        recordUpgradeReply(request.raw, reply);
      }
      done();
    });

    // A plain GET (no upgrade) gets the 404 of any unknown path: @fastify/websocket's own answer was an empty 404,
    // neither counted nor logged.
    scope.route<{ Params: { key: string }; Querystring: Query }>({
      method: 'GET',
      url: '/app/:key',
      handler: async (_request, reply) => reply.callNotFound(),
      wsHandler: (socket, request) => {
        quietEnds(socket);
        try {
          route(socket, request);
        } finally {
          released(request);
        }
      },
    });

    /** Admits (or refuses) an upgraded socket: the `/app/:key` handler, its writes corked until it returns. */
    const route = (
      socket: WebSocket,
      request: FastifyRequest<{ Params: { key: string }; Querystring: Query }>,
    ): void => {
      const admitted = admit(request.params.key, request.query);
      if ('reason' in admitted) {
        reject(socket, request, admitted.reason, admitted.code, admitted.message, admitted.appId);
        return;
      }
      const app = admitted.app;
      const quota = app.maxConnections > 0 ? options.quota : undefined;
      const id = socketId();
      if (quota === undefined) {
        accept(socket, request, app, id, false);
        return;
      }
      // Frames that arrive while the cluster counts the connection wait in the socket (nothing is read meanwhile).
      socket.pause();
      reserving++;
      quota.reserve(app, id).then(
        (ok) => {
          reserving--;
          socket.resume();
          if (!ok) {
            reject(socket, request, 'over_quota', Errors.CLOSE_OVER_QUOTA.code, Errors.CLOSE_OVER_QUOTA.message, app.id);
          } else if (socket.readyState !== socket.OPEN) {
            quota.release(app, id);
          } else if (options.isDraining()) {
            // The drain began while the cluster counted it: it may have taken its snapshot of the connections to close
            // already, so this one is refused as the drain closes them (4200), not opened past it.
            quota.release(app, id);
            reject(socket, request, 'over_capacity', Errors.CLOSE_SHUTTING_DOWN.code, Errors.CLOSE_SHUTTING_DOWN.message, app.id);
          } else {
            accept(socket, request, app, id, true);
          }
        },
        () => {
          reserving--;
          socket.resume();
          reject(socket, request, 'over_capacity', Errors.CLOSE_ENGINE_UNAVAILABLE.code, Errors.CLOSE_ENGINE_UNAVAILABLE.message, app.id);
        },
      );
    };

    /** Opens an admitted connection: hub, metrics, `connection_established`, and the socket's events. */
    const accept = (
      socket: WebSocket,
      request: FastifyRequest<{ Querystring: Query }>,
      app: AppConfig,
      id: string,
      reserved: boolean,
    ): void => {
      const sessionId = newSessionId();
      const span = startConnectSpan(app.id, sessionId, id, contextFromHeaders(request.headers));
      // Kept for the links of later `process` spans; a connect span that was not sampled is in no trace to link to. No
      // closure below may name `span` or `request`: the socket's listeners keep this scope alive for the connection's
      // life, and with it the ended span or the whole HTTP request (upgrade-leftovers.ts).
      const upgradeSpan = span.isRecording() ? span.spanContext() : undefined;
      const connection = new Connection({
        ws: socket,
        app,
        socketId: id,
        sessionId,
        logger,
        logBindings: { session_id: sessionId, socket_id: id, app_id: app.id },
        metrics,
        sendBufferMaxBytes: options.sendBufferMaxBytes,
        framesPerSecond: options.framesPerSecond,
        upgradeSpan,
        onClosed: (c) => {
          if (reserved) options.quota?.release(app, id);
          options.onConnectionClosed(c, hub.removeConnection(c));
        },
      });
      hub.addConnection(connection);
      connection.opened(openedFields(request, upgradeSpan));
      connection.send(encodeConnectionEstablished(id, options.activityTimeoutSeconds), 'protocol');
      span.end();

      socket.on('message', (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => {
        // Closing (terminated with 4009, drained with 4200, timed out with 4201…): ws goes on handing over frames until
        // the close handshake ends, up to its 2 s bound for a client that never answers — a terminated user went on
        // publishing client events for those 2 s. Nothing a closing connection sends is acted on.
        if (!connection.isOpen) return;
        // ws hands over a Buffer by default (binaryType 'nodebuffer'): use it as is, no copy per frame.
        const buffer = Buffer.isBuffer(data)
          ? data
          : Array.isArray(data)
            ? Buffer.concat(data)
            : Buffer.from(data);
        const now = performance.now();
        if (!connection.frameReceived(buffer.length, now)) {
          overBudget(connection, buffer.length, now);
          return;
        }
        if (isBinary) {
          connection.reject({
            reason: 'invalid_message',
            message: Errors.FRAME_BINARY.message,
            code: Errors.FRAME_BINARY.code,
            frameBytes: buffer.length,
          });
          return;
        }
        router.handle(connection, buffer.toString('utf8'), buffer.length);
      });
      // ws's own answer to pings (autoPong) cut the socket silently, as a network drop would look, once 60 pongs were
      // unwritten — 61 pings in one read. With it off (app.ts) a ping is a frame like any other: counted, answered within
      // the frame budget and the send buffer's bound, and past the budget refused with 4301 while the socket is held.
      socket.on('ping', (data: Buffer) => {
        if (controlFrame(connection, data, 'ping')) connection.answerPing(data);
      });
      // Beacon sends no WebSocket pings, so a pong frame is the client's own doing: a frame like any other, counted and
      // held to the budget as a ping is (no proof of life either). Unheard, a flood of them cost nothing to count but
      // was never refused nor seen.
      socket.on('pong', (data: Buffer) => controlFrame(connection, data, 'pong'));
      // Frame-level errors (invalid UTF-8, over the hard size limit) are the client's: counted and logged by the connection.
      ownSocketErrors(socket, (err) => connection.socketFailed(err));
      socket.on('close', (code: number) => connection.finish(code));
    };

    // Any other WebSocket path: 4005. Plain HTTP requests to it get 404 like any unknown route.
    const otherPath: WsHandler = (socket, request) => {
      reject(socket, request, 'unknown_path', Errors.CLOSE_PATH_NOT_FOUND.code, Errors.CLOSE_PATH_NOT_FOUND.message);
      released(request);
    };
    scope.route({ method: 'GET', url: '/*', handler: async (_request, reply) => reply.callNotFound(), wsHandler: otherPath });
    options.strayUpgrades?.(otherPath);
  });
}
