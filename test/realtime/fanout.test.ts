/** Fan-out on one node: one frame for everyone, the excluded socket skipped, frames a closing socket refuses counted. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Envelope } from '../../src/adapters/envelope.js';
import type { AppConfig } from '../../src/config.js';
import { createFanout } from '../../src/realtime/fanout.js';
import { Hub } from '../../src/realtime/hub.js';
import type { Metrics } from '../../src/telemetry/metrics.js';
import type { Connection } from '../../src/transport/connection.js';
import type { TextFrame } from '../../src/transport/preframed.js';

const APP = { id: 'a1', key: 'k', secret: 's' } as AppConfig;

function standIn(socketId: string, accepts: boolean, frames: Buffer[]): Connection {
  return {
    app: APP,
    socketId,
    subscriptions: new Map(),
    userId: undefined,
    watchlist: [],
    sendTextFrame: (frame: TextFrame) => (accepts ? frames.push(frame.payload) > 0 : false),
  } as unknown as Connection;
}

test('every subscriber but the excluded one gets the same Buffer; refused frames are counted as dropped', () => {
  const hub = new Hub([APP]);
  const frames: Buffer[] = [];
  const open1 = standIn('1.1', true, frames);
  const open2 = standIn('1.2', true, frames);
  const sender = standIn('1.3', true, frames);
  const closing = standIn('1.4', false, frames);
  for (const c of [open1, open2, sender, closing]) {
    hub.addConnection(c);
    hub.join(c, 'news', null);
  }
  const recorded: string[] = [];
  const metrics = {
    messagesSent: (_app: string, kind: string, _bytes: number, count: number) => recorded.push(`sent ${kind} ${count}`),
    broadcast: (type: string, recipients: number) => recorded.push(`broadcast ${type} ${recipients}`),
    backpressure: (_app: string, action: string, count = 1) => recorded.push(`${action} ${count}`),
  } as unknown as Metrics;
  const envelope: Envelope = {
    appId: APP.id,
    channel: 'news',
    event: 'tick',
    data: '{"n":1}',
    userId: undefined,
    excludeSocketId: '1.3',
    kind: 'channel_event',
    traceparent: undefined,
    publishedAt: Date.now(),
  };
  createFanout({ hub, metrics })(envelope);
  assert.equal(frames.length, 2);
  assert.equal(frames[0], frames[1], 'one Buffer, encoded once');
  assert.deepEqual(JSON.parse(frames[0]!.toString()), { event: 'tick', channel: 'news', data: '{"n":1}' });
  assert.deepEqual(recorded, ['sent channel_event 2', 'dropped 1', 'broadcast public 2']);
});
