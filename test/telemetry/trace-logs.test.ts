/**
 * Every log line written inside a traced operation carries that operation's trace id — also the lines written after an
 * `await` (a cluster-engine round trip), which the synchronous context manager Beacon runs with (otel/sync-context-manager.ts)
 * does not carry by itself. With the local and the Redis engine: a presence subscribe (and one refused because the channel
 * is full), a sign-in with a watchlist, a publish through the HTTP API, an API request over the rate limit, a webhook send.
 * The operations continue the client's own trace (a frame's `traceparent` field, the request's `traceparent` header), so
 * the expected trace id is known; a webhook request's is the `traceparent` it was sent with. The pino output is captured.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { context, propagation, trace } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { SyncContextManager } from '../../otel/sync-context-manager.js';
import { Events } from '../../src/protocol/events.js';
import { channelAuthString, sign, userAuthString } from '../../src/protocol/signatures.js';
import { RawClient } from '../helpers/raw-client.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';
import { APP, startServer, type TestServer } from '../helpers/server.js';
import { signedFetch } from '../helpers/signed-fetch.js';
import { until } from '../helpers/wait.js';
import { startWebhookReceiver, type WebhookReceiver } from '../helpers/webhook-receiver.js';

type Line = Record<string, unknown>;

/** A fresh sampled W3C trace: its id and the `traceparent` that starts it. */
function newTrace(): { traceId: string; traceparent: string } {
  const traceId = randomBytes(16).toString('hex');
  return { traceId, traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01` };
}

/** Runs `operation` and returns the log lines written while it ran. */
async function linesDuring(server: TestServer, operation: () => Promise<unknown>): Promise<Line[]> {
  const from = server.logs.length;
  await operation();
  return server.logs.slice(from);
}

/** Every line carries `traceId`, and the lines include each of `events`. */
function assertAllTraced(lines: Line[], traceId: string, events: string[], what: string): void {
  const written = lines.map((l) => l.event);
  for (const event of events) assert.ok(written.includes(event), `${what}: no ${event} line among ${JSON.stringify(written)}`);
  const untraced = lines.filter((l) => l.trace_id !== traceId || !/^[0-9a-f]{16}$/.test(String(l.span_id)));
  assert.deepEqual(untraced, [], `${what}: lines without the operation's trace and span ids`);
}

/** A signed presence subscribe frame continuing `traceparent`. */
function presenceSubscribe(socketId: string, channel: string, userId: string, traceparent: string): unknown {
  const channelData = JSON.stringify({ user_id: userId, user_info: { name: userId } });
  const auth = `${APP.key}:${sign(APP.secret, channelAuthString(socketId, channel, channelData))}`;
  return { event: 'pusher:subscribe', data: { channel, auth, channel_data: channelData }, traceparent };
}

const contextManager = new SyncContextManager();
before(() => {
  // What otel/sdk.ts installs in production: the synchronous context manager, a sampler following the caller's decision.
  context.setGlobalContextManager(contextManager);
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(new InMemorySpanExporter())] }));
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
});
after(() => {
  trace.disable();
  propagation.disable();
  context.disable();
});

for (const engine of ['local', 'redis'] as const) {
  describe(`log lines inside traced operations carry their trace id (${engine} engine)`, () => {
    let redis: RedisServer | undefined;
    let webhooks: WebhookReceiver;
    let server: TestServer;
    const clients: RawClient[] = [];

    before(async () => {
      webhooks = await startWebhookReceiver();
      redis = engine === 'redis' ? await startRedis() : undefined;
      server = await startServer({
        ADAPTER: engine,
        ...(redis === undefined ? {} : { REDIS_URL: redis.url }),
        MAX_PRESENCE_MEMBERS: '1',
        API_RATE_LIMIT_PER_SECOND: '1',
        // Only `webhook-*` channels reach the receiver, which refuses them: one attempt, then `webhook_failed`.
        APP_WEBHOOKS: JSON.stringify([
          { url: webhooks.url, eventTypes: ['channel_occupied'], filter: { channelNameStartsWith: 'webhook-' } },
        ]),
        WEBHOOK_BATCH_MS: '0',
        WEBHOOK_RETRY_DEADLINE_MS: '0',
      });
      // The engine's own `adapter_up` line belongs to no operation: written before the first one starts.
      if (engine === 'redis') await until(() => server.logs.some((l) => l.event === 'adapter_up'), 'the adapter_up line');
    });
    after(async () => {
      for (const c of clients) await c.close();
      await server.close();
      await webhooks.close();
      await redis?.stop();
    });

    const connect = async () => {
      const established = await RawClient.established(server.port);
      clients.push(established.client);
      return established;
    };

    it('a presence subscribe: the lines written after the cluster engine answered too', async () => {
      const { client, socketId } = await connect();
      const { traceId, traceparent } = newTrace();
      const lines = await linesDuring(server, async () => {
        client.send(presenceSubscribe(socketId, 'presence-room', 'alice', traceparent));
        await client.next((f) => f.event === Events.SubscriptionSucceeded && f.channel === 'presence-room');
      });
      assertAllTraced(lines, traceId, ['message_received', 'subscribed'], 'presence subscribe');
    });

    it('a presence subscribe refused because the channel is full', async () => {
      const { client, socketId } = await connect();
      const { traceId, traceparent } = newTrace();
      const lines = await linesDuring(server, async () => {
        client.send(presenceSubscribe(socketId, 'presence-room', 'bob', traceparent));
        await client.next((f) => f.event === Events.SubscriptionError && f.channel === 'presence-room');
      });
      assertAllTraced(lines, traceId, ['subscription_failed'], 'refused presence subscribe');
    });

    it('a sign-in with a watchlist (answered after the cluster engine said who is online)', async () => {
      const { client, socketId } = await connect();
      const { traceId, traceparent } = newTrace();
      const userData = JSON.stringify({ id: 'carol', watchlist: ['alice', 'dave'] });
      const auth = `${APP.key}:${sign(APP.secret, userAuthString(socketId, userData))}`;
      const lines = await linesDuring(server, async () => {
        client.send({ event: 'pusher:signin', data: { auth, user_data: userData }, traceparent });
        await client.next(Events.WatchlistEvents);
      });
      assertAllTraced(lines, traceId, ['signin'], 'sign-in');
    });

    it('a publish through the HTTP API, delivered to the subscriber', async () => {
      const subscriber = clients[0];
      assert.ok(subscriber);
      const { traceId, traceparent } = newTrace();
      const lines = await linesDuring(server, async () => {
        const body = JSON.stringify({ name: 'order-shipped', channels: ['presence-room'], data: '{"id":42}' });
        const answer = await signedFetch(server, 'POST', `/apps/${APP.id}/events`, {
          body,
          params: { info: 'subscription_count' },
          headers: { traceparent },
        });
        assert.ok(answer.status === 200 || answer.status === 429, `publish answered ${answer.status}`);
        if (answer.status === 200) await subscriber.next('order-shipped');
      });
      assertAllTraced(lines, traceId, ['api_request'], 'API publish');
    });

    it('an operation whose trace is not sampled: no line carries its ids (Tempo has no such trace)', async () => {
      // The client's trace, flagged not sampled: Beacon follows the decision and records no span of it. Its frame lines
      // and its API request's lines alike carry no ids, which would lead to a trace nobody stored.
      const { client } = await connect();
      const traceparent = `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-00`;
      const lines = await linesDuring(server, async () => {
        client.send({ event: 'pusher:subscribe', data: { channel: 'orders-not-sampled' }, traceparent });
        await client.next((f) => f.event === Events.SubscriptionSucceeded && f.channel === 'orders-not-sampled');
        await signedFetch(server, 'GET', `/apps/${APP.id}/channels`, { headers: { traceparent } });
      });
      const written = lines.map((l) => l.event);
      for (const event of ['message_received', 'subscribed', 'api_request']) {
        assert.ok(written.includes(event), `no ${event} line among ${JSON.stringify(written)}`);
      }
      const withIds = lines.filter((l) => l.trace_id !== undefined || l.span_id !== undefined);
      assert.deepEqual(withIds, [], 'lines of a trace that is not sampled carry its ids');
    });

    it('API requests over the rate limit', async () => {
      // API_RATE_LIMIT_PER_SECOND=1: within a few requests one is refused, whatever second the first fell in.
      let refused = false;
      for (let i = 0; i < 10 && !refused; i++) {
        const { traceId, traceparent } = newTrace();
        const lines = await linesDuring(server, async () => {
          const answer = await signedFetch(server, 'GET', `/apps/${APP.id}/channels`, { headers: { traceparent } });
          refused = answer.status === 429;
        });
        assertAllTraced(lines, traceId, refused ? ['rate_limited', 'api_request'] : ['api_request'], `API request ${i + 1}`);
      }
      assert.ok(refused, 'one of 10 requests at 1 per second was refused');
    });

    it('a webhook send that fails: its webhook_failed line is in the trace the receiver was sent', async () => {
      webhooks.respondWith(500);
      const { client } = await connect();
      client.send({ event: 'pusher:subscribe', data: { channel: 'webhook-orders' } });
      const request = await webhooks.request(1);
      const traceparent = String(request.headers.traceparent ?? '');
      assert.match(traceparent, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
      await until(() => server.logs.some((l) => l.event === 'webhook_failed'), 'the webhook_failed line');
      const failed = server.logs.filter((l) => l.event === 'webhook_failed');
      assertAllTraced(failed, traceparent.split('-')[1]!, ['webhook_failed'], 'webhook send');
    });
  });
}
