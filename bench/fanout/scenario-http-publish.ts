/**
 * Server-side publish: every message is one HTTP request. Beacon gets `POST /apps/app-id/events`, signed by the official
 * `pusher` SDK (keep-alive agent), so it pays for body hashing, signature checking and validation as in production; the
 * baselines get an unauthenticated `POST /publish` from `fetch` (keep-alive). A public channel `bench`. The cluster fan-out
 * (cluster/fanout-load.ts) publishes the same way, to its nodes round robin.
 */
import { Agent } from 'node:http';
import type { Payload } from './clients.js';
import type { Publisher, Scenario } from './scenario.js';
import { beaconSdk, protocolOf, type TargetId } from './targets.js';

const CHANNEL = 'bench';
const EVENT = 'bench';
/** The channel (room) of the request-path warm-up: nobody subscribes to it. */
const WARMUP_CHANNEL = 'bench-warmup';

/** Beacon's publisher: a `pusher` SDK per node of `ports` on one keep-alive agent, messages round robin (as a load balancer would). */
export function beaconPublisher(ports: readonly number[], channel: string = CHANNEL): Publisher {
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const sdks = ports.map((port) => beaconSdk(port, agent));
  let next = 0;
  return {
    publish: (payload: Payload) => sdks[next++ % sdks.length]!.trigger(channel, EVENT, payload),
    close: () => agent.destroy(),
  };
}

function baselinePublisher(port: number, room: string = CHANNEL): Publisher {
  const url = `http://127.0.0.1:${port}/publish`;
  return {
    publish: async (payload: Payload) => {
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(room === CHANNEL ? { event: EVENT, data: payload } : { room, event: EVENT, data: payload }),
      });
      if (!res.ok) throw new Error(`publish: HTTP ${res.status}`);
      await res.arrayBuffer();
    },
    close: () => undefined,
  };
}

export const httpPublish: Scenario = {
  id: 'http-publish',
  title: 'HTTP publish',
  description:
    'http-publish: each message is one HTTP POST — Beacon `POST /apps/app-id/events` signed by the `pusher` SDK (public channel), the baselines an unsigned `POST /publish` — and the server fans it out to every subscriber.',
  subscription: { beaconChannel: CHANNEL, beaconEvent: EVENT, event: EVENT },
  connectPublisher: async (target: TargetId, port: number) => (protocolOf(target) === 'beacon' ? beaconPublisher([port]) : baselinePublisher(port)),
  connectWarmupPublisher: async (target: TargetId, port: number) =>
    protocolOf(target) === 'beacon' ? beaconPublisher([port], WARMUP_CHANNEL) : baselinePublisher(port, WARMUP_CHANNEL),
};
