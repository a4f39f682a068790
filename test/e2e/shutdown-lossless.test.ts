/**
 * A shutdown loses nothing that was accepted (README, "Health and shutdown"): a real Beacon process with subscribers, a
 * steady publisher and one client that never answers the close frame (it keeps the close stage open for its 2 s bound);
 * SIGTERM → every publish that got HTTP 200 reached every subscriber before its 4200 close, and the API answered 503 with
 * `Retry-After` to what came after it stopped accepting.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';
import Pusher from 'pusher';
import { spawnBeacon } from '../helpers/beacon-process.js';
import { freePort } from '../helpers/prometheus.js';
import { RawClient } from '../helpers/raw-client.js';
import { APP } from '../helpers/server.js';
import { silentSocket } from '../helpers/silent-socket.js';
import { until, within } from '../helpers/wait.js';

const SUBSCRIBERS = 8;
const PUBLISHERS = 4;

test('SIGTERM under a steady publish load: every publish that got 200 reached every subscriber', { timeout: 60_000 }, async () => {
  const beacon = await spawnBeacon({ SHUTDOWN_GRACE_MS: '300', SHUTDOWN_TIMEOUT_MS: '8000' });
  const subscribers: RawClient[] = [];
  try {
    for (let i = 0; i < SUBSCRIBERS; i++) {
      const { client } = await RawClient.established(beacon.port);
      client.send({ event: 'pusher:subscribe', data: { channel: 'feed' } });
      await client.next('pusher_internal:subscription_succeeded');
      subscribers.push(client);
    }
    const silent = await silentSocket(beacon.port, `/app/${APP.key}?protocol=7`);

    const sdk = new Pusher({ appId: APP.id, key: APP.key, secret: APP.secret, host: '127.0.0.1', port: String(beacon.port), useTLS: false });
    const accepted: number[] = [];
    const refusals = new Map<number | string, number>();
    let next = 0;
    let signalledAt = 0;
    let acceptedAfterSignal = 0;
    let exited = false;
    const publisher = async (): Promise<void> => {
      while (!exited) {
        const n = next++;
        try {
          await sdk.trigger('feed', 'tick', { n });
          accepted.push(n);
          if (signalledAt > 0) acceptedAfterSignal++;
        } catch (err) {
          const status = (err as { status?: number }).status ?? 'network';
          refusals.set(status, (refusals.get(status) ?? 0) + 1);
          // Refused (503) or the server is gone: a real backend would retry elsewhere; here, pace the loop.
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
      }
    };
    const publishers = Array.from({ length: PUBLISHERS }, () => publisher());
    // SIGTERM under load: once the publishers are being answered, not after a guessed time.
    await until(() => accepted.length >= 30, 'publishes accepted before SIGTERM', 10_000);
    signalledAt = Date.now();
    const code = await within(beacon.stop('SIGTERM'), 'the process to exit', 15_000);
    exited = true;
    await Promise.all(publishers);
    silent.destroy();

    assert.equal(code, 0, beacon.output().slice(-2000));
    assert.ok(acceptedAfterSignal > 0, 'publishes were accepted after SIGTERM (during the grace)');
    for (const [i, client] of subscribers.entries()) {
      const closed = await client.waitClosed();
      assert.equal(closed.code, 4200);
      const received = new Set(client.all('tick').map((f) => (f.data as { n: number }).n));
      const lost = accepted.filter((n) => !received.has(n));
      assert.deepEqual(lost, [], `subscriber ${i}: ${lost.length} of ${accepted.length} accepted publishes never arrived`);
    }
    assert.ok((refusals.get(503) ?? 0) > 0, `publishes after the API stopped got 503: ${JSON.stringify([...refusals])}`);
  } finally {
    for (const c of subscribers) c.ws.terminate();
    await beacon.stop('SIGKILL');
  }
});

test('the API answers 503 with Retry-After once the drain stopped it', { timeout: 30_000 }, async () => {
  // A client that never answers the close frame holds the drain in its close stage, after the API stopped accepting.
  const beacon = await spawnBeacon({ SHUTDOWN_GRACE_MS: '0', SHUTDOWN_TIMEOUT_MS: '8000' });
  const silent = await silentSocket(beacon.port, `/app/${APP.key}?protocol=7`);
  try {
    const stopped = beacon.stop('SIGTERM');
    let answer: Response | undefined;
    const deadline = Date.now() + 3000;
    while (answer?.status !== 503 && Date.now() < deadline) {
      answer = await fetch(`${beacon.url}/apps/${APP.id}/channels`).catch(() => undefined);
    }
    assert.equal(answer?.status, 503);
    assert.equal(answer?.headers.get('retry-after'), '1');
    assert.deepEqual(await answer?.json(), { error: 'Server is shutting down; retry' });
    // On a kept-alive connection too the answer ends it: the client's retry opens a new one (through the balancer, to a
    // node that serves) instead of coming back here for as long as the drain lasts.
    const agent = new http.Agent({ keepAlive: true });
    try {
      const kept = await new Promise<{ connection: string | undefined; ended: Promise<void> }>((resolve, reject) => {
        http
          .get(`${beacon.url}/apps/${APP.id}/channels`, { agent }, (res) => {
            res.resume();
            const ended = new Promise<void>((done) => res.socket.once('close', () => done()));
            resolve({ connection: res.headers.connection, ended });
          })
          .on('error', reject);
      });
      assert.equal(kept.connection, 'close');
      await within(kept.ended, 'the server to close the kept-alive socket', 2000);
    } finally {
      agent.destroy();
    }
    assert.equal(await stopped, 0);
  } finally {
    silent.destroy();
    await beacon.stop('SIGKILL');
  }
});

test('a second SIGTERM and a SIGINT during the drain change nothing: clients get 4200, the drain completes, exit 0', { timeout: 30_000 }, async () => {
  const beacon = await spawnBeacon({ SHUTDOWN_GRACE_MS: '500', SHUTDOWN_TIMEOUT_MS: '8000' });
  const { client } = await RawClient.established(beacon.port);
  try {
    client.send({ event: 'pusher:subscribe', data: { channel: 'feed' } });
    await client.next('pusher_internal:subscription_succeeded');
    process.kill(beacon.pid, 'SIGTERM');
    await until(() => beacon.logs.some((l) => l.includes('"event":"shutdown_started"')), 'the drain to start');
    // Before: the handlers were registered with `once`, so Node's default action took the second signal and killed
    // the process mid-drain (the client cut with 1006, no shutdown_completed, no leave recorded).
    process.kill(beacon.pid, 'SIGTERM');
    process.kill(beacon.pid, 'SIGINT');
    assert.equal((await within(client.closed, 'the 4200 close')).code, 4200);
    assert.equal(await beacon.stop('SIGTERM'), 0);
    assert.equal(beacon.logs.filter((l) => l.includes('"event":"shutdown_completed"')).length, 1);
  } finally {
    await client.close();
    await beacon.stop('SIGKILL');
  }
});

test('the drain is seen on /metrics: the shutdown gauge rises while it runs, and no scrape is answered empty after', { timeout: 30_000 }, async () => {
  // Before, the gauge was set only after the drain, and the SDK stopped right after it: never scraped. Scrapes between the
  // SDK's stop and the exit were answered 200 with only "# failed to export metrics: … MetricReader is shutdown".
  // A Loki nobody listens on: the last push is retried to the deadline after the SDK stopped, the window those scrapes fell in.
  const beacon = await spawnBeacon({ SHUTDOWN_GRACE_MS: '1500', SHUTDOWN_TIMEOUT_MS: '5000', LOKI_URL: `http://127.0.0.1:${await freePort()}` });
  try {
    const stopped = beacon.stop('SIGTERM');
    let exited = false;
    void stopped.then(() => (exited = true));
    const gauges: number[] = [];
    const emptyAnswers: string[] = [];
    const deadline = Date.now() + 10_000;
    while (!exited && Date.now() < deadline) {
      const res = await fetch(`http://127.0.0.1:${beacon.metricsPort}/metrics`).catch(() => undefined);
      if (res === undefined) continue;
      const text = await res.text().catch(() => '');
      if (res.status === 200 && !text.includes('websocket_build_info')) emptyAnswers.push(text.slice(0, 120));
      const value = /^websocket_shutdown_duration_seconds (\S+)$/m.exec(text)?.[1];
      if (value !== undefined) gauges.push(Number(value));
    }
    assert.equal(await stopped, 0);
    assert.deepEqual(emptyAnswers, []);
    assert.ok(gauges.length >= 2, `the gauge scraped during the drain: ${JSON.stringify(gauges)}`);
    assert.ok(gauges[0]! >= 0 && gauges.at(-1)! > gauges[0]!, `rising: ${JSON.stringify(gauges)}`);
  } finally {
    await beacon.stop('SIGKILL');
  }
});
