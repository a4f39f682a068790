/**
 * Log shipping from a real Beacon process (LOKI_URL and friends): one connection's lines reach the Loki receiver with
 * exactly the three stream labels, all carrying the connection's `session_id`, and the last batch is pushed at shutdown.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { LOG_EVENTS } from '../../src/telemetry/log-events.js';
import { spawnBeacon, type BeaconProcess } from '../helpers/beacon-process.js';
import { startLokiReceiver, type LokiReceiver } from '../helpers/loki-receiver.js';

describe('Loki shipping from the server', () => {
  let loki: LokiReceiver;
  let beacon: BeaconProcess;
  let socketId = '';
  let exitCode: number | null;

  before(async () => {
    loki = await startLokiReceiver('ok');
    beacon = await spawnBeacon({
      LOKI_URL: loki.url,
      LOKI_USERNAME: 'beacon',
      LOKI_PASSWORD: 'pw',
      LOKI_TENANT_ID: 'acme',
      OTEL_SERVICE_NAME: 'beacon-loki-test',
    });
    const ws = new WebSocket(`ws://127.0.0.1:${beacon.port}/app/app-key?protocol=7`);
    const events: string[] = [];
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no subscription within 5 s: ${events.join(', ')}`)), 5000);
      ws.on('message', (raw: Buffer) => {
        const frame = JSON.parse(raw.toString('utf8')) as { event: string; data?: string };
        events.push(frame.event);
        if (frame.event === 'pusher:connection_established') {
          socketId = (JSON.parse(frame.data ?? '{}') as { socket_id: string }).socket_id;
          ws.send(JSON.stringify({ event: 'pusher:subscribe', data: { channel: 'news' } }));
        }
        if (frame.event === 'pusher_internal:subscription_succeeded') {
          ws.send('not json');
          ws.send(JSON.stringify({ event: 'pusher:unsubscribe', data: { channel: 'news' } }));
          ws.close();
        }
      });
      ws.on('close', () => {
        clearTimeout(timer);
        resolve();
      });
    });
    // Lines are shipped by the regular batches while running; the rest at shutdown (flushLogger).
    exitCode = await beacon.stop('SIGTERM');
  });

  after(async () => {
    await loki.close();
  });

  it('exits cleanly after flushing the last batch', () => {
    assert.equal(exitCode, 0);
    const shipped = loki.lines().map((l) => JSON.parse(l.line) as Record<string, unknown>);
    assert.ok(shipped.some((l) => l.event === 'shutdown_completed'), 'the shutdown line reached Loki');
    const stopped = beacon.logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.event === 'loki_shipping_stopped');
    assert.ok(stopped, `the shipping summary is on stdout: ${beacon.output().slice(-1500)}`);
    assert.equal(stopped.lines_dropped, 0);
  });

  it('every line on stdout names a catalog event: server_started, and no fastify "Server listening at …" line', () => {
    const lines = beacon.logs.map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(lines.filter((l) => l.event === 'server_started').length, 1);
    const catalog = new Set<unknown>(LOG_EVENTS);
    assert.deepEqual(lines.filter((l) => !catalog.has(l.event)), [], 'lines without a catalog event');
  });

  it('labels every stream with exactly service_name, env, node_id and level, with auth and tenant', () => {
    assert.ok(loki.pushes.length > 0);
    for (const push of loki.pushes) {
      assert.equal(push.headers.authorization, `Basic ${Buffer.from('beacon:pw').toString('base64')}`);
      assert.equal(push.headers['x-scope-orgid'], 'acme');
      for (const s of push.body.streams) {
        assert.deepEqual(Object.keys(s.stream).sort(), ['env', 'level', 'node_id', 'service_name']);
        assert.equal(s.stream.service_name, 'beacon-loki-test');
        assert.equal(s.stream.env, 'test');
        assert.equal(s.stream.node_id, beacon.logs.map((l) => JSON.parse(l) as { node_id: string })[0]!.node_id);
      }
    }
  });

  it('every line of the connection carries its session_id, socket_id and app_id', () => {
    const lines = loki.lines().map((l) => JSON.parse(l.line) as Record<string, unknown>);
    const mine = lines.filter((l) => l.socket_id === socketId);
    const events = mine.map((l) => l.event);
    for (const event of ['connection_opened', 'subscribed', 'message_rejected', 'unsubscribed', 'connection_closed']) {
      assert.ok(events.includes(event), `${event} shipped; got ${events.join(', ')}`);
    }
    const sessions = new Set(mine.map((l) => l.session_id));
    assert.equal(sessions.size, 1);
    const [session] = sessions;
    assert.match(String(session), /^[0-9a-f-]{36}$/);
    for (const line of mine) {
      assert.equal(line.app_id, 'app-id');
      assert.equal(line.service, 'beacon-loki-test');
      assert.equal(line.env, 'test');
      assert.equal(typeof line.node_id, 'string');
    }
  });
});
