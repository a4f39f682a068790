/**
 * The `info` a publish asks for (`POST /events`, `POST /batch_events`): asked of the engine for every channel at once, and
 * a channel the engine cannot answer on left without attributes while the others are answered. A probe on Redis: one
 * channel after another, a publish to 100 channels waited 100 round trips.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EngineUnavailableError, type Adapter } from '../../src/adapters/adapter.js';
import { createLocalAdapter } from '../../src/adapters/local-adapter.js';
import { APP, startServer } from '../helpers/server.js';
import { signedFetch } from '../helpers/signed-fetch.js';
import { until } from '../helpers/wait.js';

test("a publish's info is asked for all its channels at once; a channel the engine fails on gets none, the rest theirs", async () => {
  let inFlight = 0;
  let release: () => void = () => undefined;
  const released = new Promise<void>((resolve) => (release = resolve));
  const server = await startServer({}, {
    adapter: (_hub, metrics) => {
      const local = createLocalAdapter({ metrics, cacheTtlMs: 60_000, cacheMaxBytes: 1 << 20 });
      const wrapped: Adapter = Object.create(local) as Adapter;
      wrapped.channel = async (appId, channel) => {
        inFlight++;
        try {
          await released;
          if (channel === 'down') throw new EngineUnavailableError('cluster engine down');
          return await local.channel(appId, channel);
        } finally {
          inFlight--;
        }
      };
      return wrapped;
    },
  });
  try {
    const channels = Array.from({ length: 10 }, (_, i) => `c${i}`).concat('down');
    const answer = signedFetch(server, 'POST', `/apps/${APP.id}/events`, {
      body: JSON.stringify({ name: 'ev', channels, data: '{}', info: 'subscription_count' }),
    });
    // Every channel's ask is out before any is answered (one at a time, the second waited for the first).
    await until(() => inFlight === channels.length, `${channels.length} asks in flight`);
    release();
    const { status, body } = await answer;
    assert.equal(status, 200);
    const expected = Object.fromEntries(channels.map((c) => [c, c === 'down' ? {} : { subscription_count: 0 }]));
    assert.deepEqual(body, { channels: expected });
  } finally {
    release();
    await server.close();
  }
});
