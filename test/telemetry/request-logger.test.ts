/**
 * fastify gives every request a logger bound to its request id. Beacon's makes its pino child only when the request writes
 * a line: an upgrade or an API call that logs nothing through fastify makes none, and a line that is written carries the
 * request id as fastify's own child would.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Fastify, { LogController, type FastifyBaseLogger } from 'fastify';
import Pusher from 'pusher';
import WebSocket from 'ws';
import { buildApp, type BeaconApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { Deadline } from '../../src/lifecycle/deadline.js';
import type { Logger } from '../../src/telemetry/logger.js';
import { lazyRequestLogger } from '../../src/telemetry/request-logger.js';
import { APP } from '../helpers/server.js';
import { capturedLogger } from '../helpers/unit.js';

/** A captured logger whose `child` records the bindings of every child made from it. */
function spiedLogger(level: string): { logger: Logger; lines: Record<string, unknown>[]; children: Record<string, unknown>[] } {
  const { logger, lines } = capturedLogger(level);
  const children: Record<string, unknown>[] = [];
  const child = logger.child.bind(logger);
  logger.child = ((bindings: Record<string, unknown>, options?: Parameters<typeof child>[1]) => {
    children.push(bindings);
    return child(bindings, options);
  }) as typeof logger.child;
  return { logger, lines, children };
}

describe('lazy request logger', () => {
  it('makes no child until a line is written, then one child whose lines carry the bindings', () => {
    const { logger, lines, children } = spiedLogger('info');
    const log = lazyRequestLogger(logger as unknown as FastifyBaseLogger, { reqId: 'req-1' }, {});
    assert.equal(log.level, 'info');
    log.debug('dropped by the level');
    assert.equal(children.length, 0);
    assert.equal(lines.length, 0);

    log.warn({ detail: 'x' }, 'first');
    log.info('second');
    assert.deepEqual(children, [{ reqId: 'req-1' }]);
    assert.deepEqual(
      lines.map((l) => [l.reqId, l.msg, l.level]),
      [
        ['req-1', 'first', 'warn'],
        ['req-1', 'second', 'info'],
      ],
    );
    assert.equal(lines[0]!.detail, 'x');
  });

  it('honours a level of its own (a route log level) before any line is written', () => {
    const { logger, lines } = spiedLogger('info');
    const log = lazyRequestLogger(logger as unknown as FastifyBaseLogger, { reqId: 'req-2' }, { level: 'debug' });
    assert.equal(log.level, 'debug');
    log.debug('kept by the route level');
    assert.deepEqual(
      lines.map((l) => [l.reqId, l.msg]),
      [['req-2', 'kept by the route level']],
    );
  });

  it('is a logger fastify accepts: a handler line carries the request id', async () => {
    const { logger, lines, children } = spiedLogger('info');
    const fastify = Fastify({
      loggerInstance: logger as FastifyBaseLogger,
      logController: new LogController({ disableRequestLogging: true }),
      childLoggerFactory: lazyRequestLogger,
    });
    const requestChildren = () => children.filter((b) => 'reqId' in b).length;
    fastify.get('/quiet', async () => 'ok');
    fastify.get('/loud', async (request) => {
      request.log.info('handled');
      return 'ok';
    });
    try {
      assert.equal((await fastify.inject({ url: '/quiet' })).statusCode, 200);
      assert.equal(requestChildren(), 0);
      assert.equal((await fastify.inject({ url: '/loud' })).statusCode, 200);
      const handled = lines.filter((l) => l.msg === 'handled');
      assert.equal(handled.length, 1);
      assert.match(String(handled[0]!.reqId), /^req-/);
      assert.equal(requestChildren(), 1);
    } finally {
      await fastify.close();
    }
  });
});

describe('Beacon requests', () => {
  let app: BeaconApp;
  let spied: ReturnType<typeof spiedLogger>;
  let port: number;

  before(async () => {
    const config = loadConfig({ HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'debug', SHUTDOWN_GRACE_MS: '0', SHUTDOWN_TIMEOUT_MS: '400' });
    spied = spiedLogger('debug');
    app = await buildApp(config, { logger: spied.logger });
    await app.fastify.listen({ host: '127.0.0.1', port: 0 });
    port = (app.fastify.server.address() as { port: number }).port;
  });

  after(async () => {
    await app.drain(new Deadline(400));
  });

  it('make no request child logger for an upgrade, a signed API publish or a health check, even at LOG_LEVEL=debug', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/app/${APP.key}?protocol=7`);
    const first = await new Promise<string>((resolve, reject) => {
      ws.once('message', (data: Buffer) => resolve(data.toString('utf8')));
      ws.once('error', reject);
    });
    assert.match(first, /pusher:connection_established/);
    assert.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200);
    const sdk = new Pusher({ appId: APP.id, key: APP.key, secret: APP.secret, host: '127.0.0.1', port: String(port), useTLS: false });
    assert.equal((await sdk.trigger('news', 'update', { n: 1 })).status, 200);
    // The API call did run through Beacon's API hooks: its `api_request` line was written.
    assert.ok(spied.lines.some((l) => l.event === 'api_request' && l.status_code === 200));
    ws.close();
    await new Promise((resolve) => ws.once('close', resolve));
    // The connection's lines went through this logger (they carry its session); no child was bound to the connection, nor
    // to any request.
    assert.ok(spied.lines.some((l) => l.event === 'connection_opened' && typeof l.session_id === 'string'));
    assert.deepEqual(
      spied.children.filter((b) => 'reqId' in b || 'session_id' in b),
      [],
    );
  });
});
