/**
 * Parts for unit tests of the realtime layer: real `Connection`s over an in-memory socket (no network, no fastify), a real
 * hub, the real local adapter and publisher, metrics that record their calls, and a logger whose lines are captured
 * synchronously. Nothing here fakes a Connection's fields: tests drive connections through their own methods.
 */
import { EventEmitter } from 'node:events';
import { Writable } from 'node:stream';
import type { WebSocket } from 'ws';
import type { Adapter } from '../../src/adapters/adapter.js';
import { createLocalAdapter } from '../../src/adapters/local-adapter.js';
import type { AppConfig } from '../../src/config.js';
import type { RealtimeDeps, Limits } from '../../src/realtime/deps.js';
import { createFanout } from '../../src/realtime/fanout.js';
import { Hub } from '../../src/realtime/hub.js';
import { gateMemberEvents } from '../../src/realtime/member-delivery.js';
import { createPublisher } from '../../src/realtime/publisher.js';
import { channelAuthString, sign } from '../../src/protocol/signatures.js';
import { createLogger, type Logger } from '../../src/telemetry/logger.js';
import type { Metrics } from '../../src/telemetry/metrics.js';
import { Connection, type ConnectionOptions } from '../../src/transport/connection.js';
import type { WebhookEvent } from '../../src/webhooks/webhook-event.js';

/** An app as configuration builds it, with `overrides`. */
export function unitApp(overrides: Partial<AppConfig> = {}): AppConfig {
  return {
    id: 'app-id',
    key: 'app-key',
    secret: 'app-secret',
    enabled: true,
    enableClientEvents: false,
    enableSubscriptionCount: false,
    maxConnections: 0,
    clientEventsPerSecond: 10,
    userAuthenticationRequired: false,
    webhookUrl: undefined,
    webhooks: [],
    ...overrides,
  };
}

/** The configuration defaults of the limits the realtime handlers enforce. */
export const UNIT_LIMITS: Limits = {
  maxChannelNameLength: 200,
  maxEventNameLength: 200,
  maxPayloadBytes: 100_000,
  maxPresenceMembers: 100,
  maxPresenceMemberBytes: 2048,
  maxPresenceUserIdLength: 128,
  maxWatchlistSize: 100,
  maxJsonDepth: 32,
  maxSubscriptionsPerConnection: 100,
  subscribeRetryMs: 20_000,
};

/**
 * The part of a `ws` WebSocket a Connection uses, in memory: `send` records the text frames; `close` starts the closing
 * handshake (CLOSING, as ws) and `peerClosed` ends it with the `close` event; `terminate` ends it at once (1006).
 * No `_sender`/`_socket`, so writes take the `ws.send` path.
 */
export class MemorySocket extends EventEmitter {
  readonly OPEN = 1;
  readyState = 1;
  bufferedAmount = 0;
  paused = false;
  readonly sent: string[] = [];
  readonly pongs: Buffer[] = [];
  closedWith: { code: number; reason: string } | undefined = undefined;

  send(data: Buffer | string): void {
    this.sent.push(typeof data === 'string' ? data : data.toString('utf8'));
  }

  pong(data: Buffer): void {
    this.pongs.push(data);
  }

  close(code: number, reason: string): void {
    if (this.readyState !== 1) return;
    this.readyState = 2;
    this.closedWith = { code, reason };
  }

  /** The peer answered the close (or closed first with `code`): the socket is gone. */
  peerClosed(code = this.closedWith?.code ?? 1005): void {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.emit('close', code);
  }

  terminate(): void {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.emit('close', 1006);
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
  }

  /** The frames sent so far, parsed. */
  frames(): { event: string; channel?: string; data?: unknown }[] {
    return this.sent.map((s) => JSON.parse(s) as { event: string; channel?: string; data?: unknown });
  }

  /** The parsed `data` of the frames named `event` (`data` decoded once more when it is a JSON string). */
  data(event: string): unknown[] {
    return this.frames()
      .filter((f) => f.event === event)
      .map((f) => (typeof f.data === 'string' ? (JSON.parse(f.data) as unknown) : f.data));
  }
}

/** Metrics that record every call as `name(arg, arg, …)`; a duration (the last argument of the timed ones) is left out. */
export function recordingMetrics(): { metrics: Metrics; calls: string[]; count: (prefix: string) => number } {
  const calls: string[] = [];
  const timed = new Set(['messageProcessed', 'pingRtt', 'broadcast', 'connectionClosed', 'adapterRequest']);
  const metrics = new Proxy({} as Metrics, {
    get: (_target, name: string) =>
      (...args: unknown[]) => {
        const shown = timed.has(name) ? args.slice(0, -1) : args;
        calls.push(`${name}(${shown.join(', ')})`);
      },
  });
  return { metrics, calls, count: (prefix) => calls.filter((c) => c.startsWith(prefix)).length };
}

/** A real pino logger (the app's, with its redaction and fields) whose lines land in `lines`, written synchronously. */
export function capturedLogger(level = 'debug'): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim() !== '') lines.push(JSON.parse(line));
      done();
    },
  });
  // pino writes to a plain stream synchronously (`write` is called inside the log call).
  const logger = createLogger({ serviceName: 'beacon', env: 'test', nodeId: 'unit', level, destination });
  return { logger, lines };
}

/**
 * A Connection over `ws` (a MemorySocket or a real ws), as the WebSocket route makes one: the unit app, session `session-1`,
 * socket `1.1`, a warn-level captured logger and recording metrics unless `options` says otherwise.
 */
export function unitConnection(ws: WebSocket, options: Partial<ConnectionOptions> = {}): Connection {
  return new Connection({
    ws,
    app: unitApp(),
    socketId: '1.1',
    sessionId: 'session-1',
    logger: capturedLogger('warn').logger,
    logBindings: { session_id: 'session-1', socket_id: '1.1', app_id: 'app-id' },
    metrics: recordingMetrics().metrics,
    sendBufferMaxBytes: 1_000_000,
    framesPerSecond: 0,
    upgradeSpan: undefined,
    onClosed: () => {},
    ...options,
  });
}

/** What a unit test of the realtime layer works with. */
export interface UnitWorld {
  app: AppConfig;
  deps: RealtimeDeps;
  calls: string[];
  count: (prefix: string) => number;
  lines: Record<string, unknown>[];
  webhooks: WebhookEvent[];
  /** A new open connection in the hub, over its own MemorySocket. */
  connect(options?: { framesPerSecond?: number; sendBufferMaxBytes?: number }): { connection: Connection; socket: MemorySocket };
  /** The log lines of one event. */
  logged(event: string): Record<string, unknown>[];
}

let sockets = 0;

/** A hub, the local adapter, a publisher and its fan-out, wired as app.ts wires them, for `app`. */
export function unitWorld(app: AppConfig = unitApp(), limits: Partial<Limits> = {}): UnitWorld {
  const { metrics, calls, count } = recordingMetrics();
  const { logger, lines } = capturedLogger();
  const webhooks: WebhookEvent[] = [];
  const adapter = createLocalAdapter({
    metrics,
    cacheTtlMs: 60_000,
    cacheMaxBytes: 64 * 1024 * 1024,
    countsSubscriptions: (id) => id === app.id && app.enableSubscriptionCount,
  });
  const hub = new Hub([app], (state, userId, online) => adapter.userPresence(state.app.id, userId, online));
  adapter.onEnvelope(gateMemberEvents(hub, metrics, createFanout({ hub, metrics })));
  const deps: RealtimeDeps = {
    hub,
    adapter,
    publisher: createPublisher({ adapter, metrics }),
    metrics,
    limits: { ...UNIT_LIMITS, ...limits },
    webhooks: { emit: (_app, event) => webhooks.push(event) },
  };
  return {
    app,
    deps,
    calls,
    count,
    lines,
    webhooks,
    connect(options = {}) {
      const socket = new MemorySocket();
      const id = `${++sockets}.1`;
      const connection: Connection = new Connection({
        ws: socket as unknown as WebSocket,
        app,
        socketId: id,
        sessionId: `session-${id}`,
        logger,
        logBindings: { session_id: `session-${id}`, socket_id: id, app_id: app.id },
        metrics,
        sendBufferMaxBytes: options.sendBufferMaxBytes ?? 4_194_304,
        framesPerSecond: options.framesPerSecond ?? 0,
        upgradeSpan: undefined,
        onClosed: (c) => hub.removeConnection(c),
      });
      socket.on('close', (code: number) => connection.finish(code));
      hub.addConnection(connection);
      return { connection, socket };
    },
    logged: (event) => lines.filter((l) => l.event === event),
  };
}

/** A `pusher:subscribe` as the app's backend would sign it for `connection` (`channelData` for presence). */
export function signedSubscribe(world: UnitWorld, connection: Connection, channel: string, channelData?: string) {
  const auth = `${world.app.key}:${sign(world.app.secret, channelAuthString(connection.socketId, channel, channelData))}`;
  return { event: 'pusher:subscribe' as const, channel, auth, channelData };
}

/** A `pusher:subscribe` of a channel that needs no signature. */
export function plainSubscribe(channel: string) {
  return { event: 'pusher:subscribe' as const, channel, auth: undefined, channelData: undefined };
}

/**
 * Holds every cluster join until `release()`, as a Redis engine answers a round trip later, and counts the engine's joins
 * and leaves.
 */
export function slowJoins(world: UnitWorld): { release(): void; joins: () => number; leaves: () => number } {
  const adapter: Adapter = world.deps.adapter;
  const { join, leave } = adapter;
  let open: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => (open = resolve));
  let joins = 0;
  let leaves = 0;
  adapter.join = (...args) => {
    joins++;
    return gate.then(() => join.apply(adapter, args));
  };
  adapter.leave = (...args) => {
    leaves++;
    return leave.apply(adapter, args);
  };
  return { release: () => open(), joins: () => joins, leaves: () => leaves };
}
