/**
 * Ground truth (issue 3, "How it is shown" #1): a scripted workload against a real Beacon process — connects, a rejected
 * upgrade, subscriptions on every channel type (one refused), HTTP API publishes, client events, rejected frames, pings,
 * an unsubscribe, an abrupt disconnect and a clean one — whose counts the clients themselves observe: every frame a client
 * sends or receives is tallied (kind and bytes). Afterwards every counter and gauge on /metrics equals that tally; once
 * all clients left, `websocket_connections` is 0; a SIGTERM closes the remaining clients with 4200 and exits 0.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Pusher from 'pusher';
import WebSocket from 'ws';
import { spawnBeacon, type BeaconProcess } from '../helpers/beacon-process.js';
import { parseExposition, sumOf, type Family } from '../helpers/exposition.js';
import { pollUntil } from '../helpers/prometheus.js';

const APP_ID = 'app-id';
const APP_KEY = 'app-key';
const APP_SECRET = 'app-secret';
const ENCRYPTION_KEY = Buffer.alloc(32, 7).toString('base64');
const WAIT_MS = 5000;

type ChannelType = 'public' | 'private' | 'presence' | 'encrypted' | 'cache';
type SentKind = 'channel_event' | 'client_event' | 'presence' | 'protocol';
type ReceivedKind = 'subscribe' | 'unsubscribe' | 'ping' | 'pong' | 'client_event' | 'signin' | 'invalid';

const CHANNELS: Record<string, ChannelType> = {
  'news': 'public',
  'private-chat': 'private',
  'private-secret': 'private',
  'presence-room': 'presence',
  'private-encrypted-vault': 'encrypted',
  'cache-last': 'cache',
};

/** What the clients saw, summed over all of them: the truth /metrics must equal. */
class Tally {
  readonly received = new Map<ReceivedKind, { count: number; bytes: number }>();
  readonly sent = new Map<SentKind, { count: number; bytes: number }>();
  /** Frames delivered by fan-out, per channel type (websocket_broadcast_recipients sum). */
  readonly fanoutFrames = new Map<ChannelType, number>();
  /** Fan-outs per channel type (websocket_broadcast_recipients count), from the protocol's rules (see `broadcast`). */
  readonly fanouts = new Map<ChannelType, number>();
  readonly errors = new Map<string, number>();
  readonly subscriptions = new Map<string, number>();
  opened = 0;
  rejectedUnknownApp = 0;
  readonly closed = new Map<string, number>();
  apiPublished = 0;
  clientPublished = 0;
  /** Internal events published by joins to a channel nobody else was on: they cross the adapter, reach no fan-out. */
  unheard = 0;

  add<K>(map: Map<K, number>, key: K, n = 1): void {
    map.set(key, (map.get(key) ?? 0) + n);
  }
  addBytes<K>(map: Map<K, { count: number; bytes: number }>, key: K, bytes: number): void {
    const v = map.get(key) ?? { count: 0, bytes: 0 };
    v.count++;
    v.bytes += bytes;
    map.set(key, v);
  }
  broadcast(channel: string): void {
    this.add(this.fanouts, CHANNELS[channel] as ChannelType);
  }
}

const FANOUT_EXCLUDED = new Set([
  'pusher_internal:subscription_succeeded',
  'pusher:subscription_error',
  'pusher:cache_miss',
  'pusher:error',
]);

/** The server's `SentKind` of a frame, as docs/telemetry.md defines the kinds. */
function sentKind(event: string, channel: string | undefined): SentKind {
  if (event === 'pusher_internal:member_added' || event === 'pusher_internal:member_removed') return 'presence';
  if (event === 'pusher_internal:subscription_succeeded' && channel?.startsWith('presence-')) return 'presence';
  if (event.startsWith('pusher:') || event.startsWith('pusher_internal:')) return 'protocol';
  if (event.startsWith('client-')) return 'client_event';
  return 'channel_event';
}

/** A frame-level client that tallies everything it sends and receives. */
class Client {
  readonly frames: Array<{ event: string; channel?: string; data?: unknown }> = [];
  readonly closed: Promise<number>;
  socketId = '';
  private readonly waiters = new Set<() => void>();
  /** Channels this client is subscribed to now. */
  readonly channels = new Set<string>();

  private constructor(
    readonly ws: WebSocket,
    private readonly tally: Tally,
  ) {
    this.closed = new Promise((resolve) => ws.on('close', (code: number) => resolve(code)));
    ws.on('message', (data: Buffer) => {
      const text = data.toString('utf8');
      const frame = JSON.parse(text) as { event: string; channel?: string; data?: unknown };
      this.frames.push(frame);
      tally.addBytes(tally.sent, sentKind(frame.event, frame.channel), Buffer.byteLength(text));
      if (frame.channel !== undefined && !FANOUT_EXCLUDED.has(frame.event)) {
        tally.add(tally.fanoutFrames, CHANNELS[frame.channel] as ChannelType);
      }
      for (const wake of this.waiters) wake();
    });
    ws.on('error', () => {});
  }

  static async connect(port: number, tally: Tally): Promise<Client> {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/app/${APP_KEY}?protocol=7&client=js&version=8.6.0`);
    const client = new Client(ws, tally);
    const established = await client.next((f) => f.event === 'pusher:connection_established');
    client.socketId = (JSON.parse(String(established.data)) as { socket_id: string }).socket_id;
    tally.opened++;
    return client;
  }

  next(match: (f: { event: string; channel?: string; data?: unknown }) => boolean, from = 0): Promise<{ event: string; channel?: string; data?: unknown }> {
    const find = () => this.frames.slice(from).find(match);
    const found = find();
    if (found !== undefined) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(wake);
        reject(new Error(`frame not received within ${WAIT_MS} ms; got ${this.frames.map((f) => f.event).join(', ')}`));
      }, WAIT_MS);
      const wake = () => {
        const f = find();
        if (f === undefined) return;
        clearTimeout(timer);
        this.waiters.delete(wake);
        resolve(f);
      };
      this.waiters.add(wake);
    });
  }

  send(kind: ReceivedKind, frame: unknown): void {
    const text = typeof frame === 'string' ? frame : JSON.stringify(frame);
    this.tally.addBytes(this.tally.received, kind, Buffer.byteLength(text));
    this.ws.send(text);
  }

  /** Ping and wait for its pong: every frame the server sent this client before is now received (one ordered socket). */
  async barrier(): Promise<void> {
    const from = this.frames.length;
    this.send('ping', { event: 'pusher:ping', data: {} });
    await this.next((f) => f.event === 'pusher:pong', from);
  }

  async subscribe(channel: string, auth?: { auth: string; channel_data?: string }): Promise<boolean> {
    const from = this.frames.length;
    this.send('subscribe', { event: 'pusher:subscribe', data: { channel, ...auth } });
    const answer = await this.next(
      (f) =>
        f.channel === channel &&
        (f.event === 'pusher_internal:subscription_succeeded' || f.event === 'pusher:subscription_error'),
      from,
    );
    const ok = answer.event === 'pusher_internal:subscription_succeeded';
    this.tally.add(this.tally.subscriptions, `${CHANNELS[channel]}|${ok ? 'ok' : 'auth_failed'}`);
    if (ok) this.channels.add(channel);
    return ok;
  }

  unsubscribe(channel: string): void {
    this.send('unsubscribe', { event: 'pusher:unsubscribe', data: { channel } });
    this.channels.delete(channel);
  }
}

describe('ground truth: /metrics equals what the clients observed', () => {
  let beacon: BeaconProcess;
  let sdk: Pusher;
  const tally = new Tally();
  let families: Map<string, Family>;
  /** Subscribers per channel now, to know which fan-outs the protocol makes (subscription_count, member events). */
  const members = new Map<string, Set<Client>>();

  const scrape = async (): Promise<Map<string, Family>> => {
    const res = await fetch(`http://127.0.0.1:${beacon.metricsPort}/metrics`);
    assert.equal(res.status, 200);
    return parseExposition(await res.text());
  };

  /** Subscribes and records the fan-outs the join causes (subscription_count, or member_added to the others). */
  const join = async (client: Client, channel: string, userId?: string): Promise<void> => {
    const type = CHANNELS[channel] as ChannelType;
    let auth: { auth: string; channel_data?: string } | undefined;
    if (type === 'presence') {
      auth = sdk.authorizeChannel(client.socketId, channel, { user_id: userId ?? client.socketId, user_info: {} });
    } else if (type !== 'public' && type !== 'cache') {
      auth = sdk.authorizeChannel(client.socketId, channel);
    }
    assert.equal(await client.subscribe(channel, auth), true, `${channel} subscription`);
    const set = members.get(channel) ?? new Set<Client>();
    const others = set.size;
    set.add(client);
    members.set(channel, set);
    // Non-presence joins broadcast subscription_count (to the others; the joiner is sent it right after its
    // subscription_succeeded, not by the fan-out); presence joins broadcast member_added. The joiner is not subscribed
    // yet when that fan-out runs, so a join to a channel nobody else is on makes none.
    if (others > 0) tally.broadcast(channel);
    else tally.unheard++;
    if (type !== 'presence') tally.add(tally.fanoutFrames, type, -1);
  };

  /** Records the fan-outs a leave causes (subscription_count or member_removed to the remaining subscribers, if any). */
  const left = (client: Client, channel: string): void => {
    const set = members.get(channel);
    set?.delete(client);
    if (set !== undefined && set.size > 0) tally.broadcast(channel);
  };

  before(async () => {
    beacon = await spawnBeacon({
      APP_ENABLE_CLIENT_EVENTS: 'true',
      APP_CLIENT_EVENTS_PER_SECOND: '100',
      ACTIVITY_TIMEOUT: '120',
      // The tally below counts the subscription_count fan-outs of joins and leaves.
      APP_ENABLE_SUBSCRIPTION_COUNT: 'true',
    });
    sdk = new Pusher({
      appId: APP_ID,
      key: APP_KEY,
      secret: APP_SECRET,
      host: '127.0.0.1',
      port: String(beacon.port),
      useTLS: false,
      encryptionMasterKeyBase64: ENCRYPTION_KEY,
    });

    const a = await Client.connect(beacon.port, tally);
    const b = await Client.connect(beacon.port, tally);
    const c = await Client.connect(beacon.port, tally);
    const d = await Client.connect(beacon.port, tally);

    // A rejected upgrade: unknown app key.
    const bad = new WebSocket(`ws://127.0.0.1:${beacon.port}/app/no-such-key?protocol=7`);
    bad.on('error', () => {});
    const badCode = await new Promise<number>((resolve) => bad.on('close', (code: number) => resolve(code)));
    assert.equal(badCode, 4001);
    tally.rejectedUnknownApp++;

    // Subscriptions on every channel type.
    for (const ch of ['news', 'private-chat', 'presence-room', 'private-encrypted-vault', 'cache-last']) {
      await join(a, ch, 'user-a');
    }
    await join(b, 'news');
    await join(b, 'private-chat');
    await join(b, 'presence-room', 'user-b');
    await join(c, 'news');
    await join(c, 'presence-room', 'user-c');
    await join(d, 'news');
    // A refused subscription: signed with the wrong secret.
    const wrong = new Pusher({ appId: APP_ID, key: APP_KEY, secret: 'not-the-secret', host: '127.0.0.1', port: '1' });
    assert.equal(await b.subscribe('private-secret', wrong.authorizeChannel(b.socketId, 'private-secret')), false);

    // HTTP API publishes (each to a channel with subscribers: one fan-out each).
    const publishes: Array<[string, number]> = [['news', 3], ['private-chat', 2], ['presence-room', 1], ['private-encrypted-vault', 1], ['cache-last', 1]];
    for (const [channel, n] of publishes) {
      for (let i = 0; i < n; i++) {
        await sdk.trigger(channel, 'update', { i, channel });
        tally.apiPublished++;
        tally.broadcast(channel);
      }
    }
    // Client events: never echoed to the sender.
    for (let i = 0; i < 2; i++) {
      a.send('client_event', { event: 'client-typing', channel: 'private-chat', data: { i } });
      tally.clientPublished++;
      tally.broadcast('private-chat');
    }
    b.send('client_event', { event: 'client-wave', channel: 'presence-room', data: {} });
    tally.clientPublished++;
    tally.broadcast('presence-room');

    // Rejected frames, each answered with pusher:error.
    d.send('invalid', 'this is not json');
    d.send('invalid', '{"broken":');
    tally.add(tally.errors, 'invalid_json', 2);
    d.send('invalid', { event: 'pusher:bogus', data: {} });
    tally.add(tally.errors, 'unknown_event');
    d.send('client_event', { event: 'client-x', channel: 'news', data: {} });
    tally.add(tally.errors, 'unauthorized');
    d.send('client_event', { event: 'client-x', channel: 'private-chat', data: {} });
    tally.add(tally.errors, 'not_subscribed');

    // Every client has now received everything addressed to it so far.
    for (const client of [a, b, c, d]) await client.barrier();

    // C unsubscribes from news, then vanishes without a close frame; D closes cleanly.
    c.unsubscribe('news');
    left(c, 'news');
    await c.barrier();
    c.ws.terminate();
    tally.add(tally.closed, 'error');
    for (const ch of [...c.channels]) left(c, ch);
    d.ws.close(1000);
    assert.equal(await d.closed, 1000);
    tally.add(tally.closed, 'client_close');
    for (const ch of [...d.channels]) left(d, ch);
    // The server has processed both closes once the gauge says so (bounded poll), then A and B catch up.
    await pollUntil(
      async () => sumOf(await scrape(), 'websocket_connections', { app_id: APP_ID }) === 2,
      WAIT_MS,
      25,
      () => 'websocket_connections to drop to 2',
    );
    await a.barrier();
    await b.barrier();
    families = await scrape();

    // Kept for the later phases.
    clients.a = a;
    clients.b = b;
  });
  const clients: { a?: Client; b?: Client } = {};

  after(async () => {
    await beacon?.stop('SIGKILL');
  });

  it('counts connections opened, closed by reason and rejected by reason', () => {
    assert.equal(sumOf(families, 'websocket_connections_opened_total', { app_id: APP_ID }), tally.opened);
    for (const reason of ['client_close', 'error']) {
      assert.equal(
        sumOf(families, 'websocket_connections_closed_total', { app_id: APP_ID, reason }),
        tally.closed.get(reason) ?? 0,
        `closed ${reason}`,
      );
      assert.equal(
        sumOf(families, 'websocket_connection_duration_seconds_count', { app_id: APP_ID, reason }),
        tally.closed.get(reason) ?? 0,
      );
    }
    assert.equal(sumOf(families, 'websocket_connections_closed_total'), 2);
    assert.equal(sumOf(families, 'websocket_connections_rejected_total', { reason: 'unknown_app' }), tally.rejectedUnknownApp);
    assert.equal(sumOf(families, 'websocket_connections_rejected_total'), tally.rejectedUnknownApp);
  });

  it('gauges equal the open sockets, channels, subscriptions and presence members now', () => {
    assert.equal(sumOf(families, 'websocket_connections', { app_id: APP_ID }), 2);
    for (const type of ['public', 'private', 'presence', 'encrypted', 'cache'] as const) {
      const channels = [...members.entries()].filter(([ch, set]) => CHANNELS[ch] === type && set.size > 0);
      const subscriptions = channels.reduce((n, [, set]) => n + set.size, 0);
      assert.equal(sumOf(families, 'websocket_channels', { app_id: APP_ID, channel_type: type }), channels.length, `${type} channels`);
      assert.equal(sumOf(families, 'websocket_subscriptions', { app_id: APP_ID, channel_type: type }), subscriptions, `${type} subscriptions`);
    }
    assert.equal(sumOf(families, 'websocket_presence_members', { app_id: APP_ID }), members.get('presence-room')?.size);
    assert.equal(sumOf(families, 'websocket_adapter_up', { adapter: 'local' }), 1);
  });

  it('counts every frame received, by kind and bytes', () => {
    let bytes = 0;
    for (const kind of ['subscribe', 'unsubscribe', 'ping', 'pong', 'client_event', 'signin', 'invalid'] as const) {
      const truth = tally.received.get(kind) ?? { count: 0, bytes: 0 };
      bytes += truth.bytes;
      assert.equal(sumOf(families, 'websocket_messages_received_total', { app_id: APP_ID, kind }), truth.count, `received ${kind}`);
      if (kind !== 'invalid') {
        assert.equal(sumOf(families, 'websocket_message_processing_duration_seconds_count', { kind }), truth.count, `processed ${kind}`);
      }
    }
    assert.equal(sumOf(families, 'websocket_received_bytes_total', { app_id: APP_ID }), bytes);
    assert.equal(sumOf(families, 'websocket_message_size_bytes_count', { direction: 'in' }), [...tally.received.values()].reduce((n, v) => n + v.count, 0));
  });

  it('counts every frame sent, by kind and bytes', () => {
    let bytes = 0;
    for (const kind of ['channel_event', 'client_event', 'presence', 'protocol'] as const) {
      const truth = tally.sent.get(kind) ?? { count: 0, bytes: 0 };
      bytes += truth.bytes;
      assert.equal(sumOf(families, 'websocket_messages_sent_total', { app_id: APP_ID, kind }), truth.count, `sent ${kind}`);
    }
    assert.equal(sumOf(families, 'websocket_sent_bytes_total', { app_id: APP_ID }), bytes);
    // Frame sizes: one sample per frame written, a fan-out's frame once per recipient.
    const frames = [...tally.sent.values()].reduce((n, v) => n + v.count, 0);
    assert.equal(sumOf(families, 'websocket_message_size_bytes_count', { direction: 'out' }), frames);
    assert.equal(sumOf(families, 'websocket_message_size_bytes_sum', { direction: 'out' }), bytes);
  });

  it('counts rejected frames by reason and subscriptions by result', () => {
    for (const [reason, n] of tally.errors) {
      assert.equal(sumOf(families, 'websocket_message_errors_total', { app_id: APP_ID, reason }), n, `error ${reason}`);
    }
    assert.equal(sumOf(families, 'websocket_message_errors_total'), [...tally.errors.values()].reduce((a, b) => a + b, 0));
    for (const [key, n] of tally.subscriptions) {
      const [channel_type, result] = key.split('|') as [string, string];
      assert.equal(sumOf(families, 'websocket_subscriptions_total', { app_id: APP_ID, channel_type, result }), n, key);
    }
    assert.equal(sumOf(families, 'websocket_subscriptions_total'), [...tally.subscriptions.values()].reduce((a, b) => a + b, 0));
  });

  it('counts publishes by source and fan-outs by channel type', () => {
    assert.equal(sumOf(families, 'websocket_events_published_total', { app_id: APP_ID, source: 'http_api' }), tally.apiPublished);
    assert.equal(sumOf(families, 'websocket_events_published_total', { app_id: APP_ID, source: 'client_event' }), tally.clientPublished);
    for (const type of ['public', 'private', 'presence', 'encrypted', 'cache'] as const) {
      assert.equal(sumOf(families, 'websocket_broadcast_recipients_sum', { channel_type: type }), tally.fanoutFrames.get(type) ?? 0, `${type} recipients`);
      assert.equal(sumOf(families, 'websocket_broadcast_recipients_count', { channel_type: type }), tally.fanouts.get(type) ?? 0, `${type} fan-outs`);
      assert.equal(sumOf(families, 'websocket_broadcast_duration_seconds_count', { channel_type: type }), tally.fanouts.get(type) ?? 0);
    }
    // Every publish (API, client, internal) crosses the adapter once; no channel was vacated by a presence leave here,
    // so each one reached a fan-out, except the events of joins nobody else heard.
    const fanouts = [...tally.fanouts.values()].reduce((a, b) => a + b, 0) + tally.unheard;
    assert.equal(sumOf(families, 'websocket_adapter_messages_total', { direction: 'published' }), fanouts);
    assert.equal(sumOf(families, 'websocket_adapter_messages_total', { direction: 'received' }), fanouts);
  });

  it('counts nothing that did not happen', () => {
    for (const name of [
      'websocket_rate_limit_triggered_total',
      'websocket_backpressure_events_total',
      'websocket_api_auth_failures_total',
      'websocket_api_refusals_total',
      'websocket_webhooks_total',
    ]) {
      assert.equal(sumOf(families, name), 0, name);
    }
  });

  it('returns websocket_connections and every channel gauge to 0 once everyone left', async () => {
    const { a, b } = clients;
    assert.ok(a && b);
    a.ws.close(1000);
    b.ws.close(1000);
    await Promise.all([a.closed, b.closed]);
    await pollUntil(
      async () => sumOf(await scrape(), 'websocket_connections_closed_total') === 4,
      WAIT_MS,
      25,
      () => 'both closes to be counted',
    );
    const now = await scrape();
    assert.equal(sumOf(now, 'websocket_connections', { app_id: APP_ID }), 0);
    assert.equal(sumOf(now, 'websocket_channels'), 0);
    assert.equal(sumOf(now, 'websocket_subscriptions'), 0);
    assert.equal(sumOf(now, 'websocket_presence_members'), 0);
    assert.equal(sumOf(now, 'websocket_connections_closed_total', { reason: 'client_close' }), 3);
    assert.equal(sumOf(now, 'websocket_connections_opened_total'), sumOf(now, 'websocket_connections_closed_total'));
  });

  it('a shutdown closes the remaining clients with 4200, logs each close and exits 0', async () => {
    const shutdownTally = new Tally();
    const e = await Client.connect(beacon.port, shutdownTally);
    const f = await Client.connect(beacon.port, shutdownTally);
    await e.subscribe('news');
    const code = await beacon.stop('SIGTERM');
    assert.equal(await e.closed, 4200);
    assert.equal(await f.closed, 4200);
    assert.equal(code, 0);
    const lines = beacon.logs.map((l) => JSON.parse(l) as Record<string, unknown>);
    const shutdownCloses = lines.filter((l) => l.event === 'connection_closed' && l.reason === 'server_shutdown');
    assert.equal(shutdownCloses.length, 2);
    assert.deepEqual(new Set(shutdownCloses.map((l) => l.socket_id)), new Set([e.socketId, f.socketId]));
    const completed = lines.find((l) => l.event === 'shutdown_completed');
    assert.ok(completed);
    assert.equal(typeof completed.duration_ms, 'number');
  });
});
