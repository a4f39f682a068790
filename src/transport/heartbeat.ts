/**
 * One sweep for every connection (not a timer per connection): a connection silent for `activityTimeoutMs` is pinged; one
 * whose ping stays unanswered for `pongTimeoutMs` is closed with 4201. Apps that require user authentication close
 * connections that have neither signed in nor subscribed to a private or presence channel within `userAuthTimeoutMs` with 4009.
 */
import { Errors } from '../protocol/errors.js';
import type { Hub } from '../realtime/hub.js';

export interface HeartbeatOptions {
  hub: Hub;
  activityTimeoutMs: number;
  pongTimeoutMs: number;
  userAuthTimeoutMs: number;
  now?: () => number;
}

export interface Heartbeat {
  /** Runs one sweep now (the timer calls it; tests may too). */
  sweep(): void;
  stop(): void;
}

export function startHeartbeat({ hub, activityTimeoutMs, pongTimeoutMs, userAuthTimeoutMs, now = () => performance.now() }: HeartbeatOptions): Heartbeat {
  const sweep = () => {
    const t = now();
    for (const connection of hub.connections()) {
      if (!connection.isOpen) continue;
      const pingSentAt = connection.unansweredPingSince();
      if (pingSentAt !== 0) {
        if (t - pingSentAt >= pongTimeoutMs) {
          connection.close(Errors.CLOSE_PONG_TIMEOUT.code, Errors.CLOSE_PONG_TIMEOUT.message, 'pong_timeout');
        }
        continue;
      }
      if (
        connection.app.userAuthenticationRequired &&
        connection.userId === undefined &&
        !connection.authorized &&
        t - connection.openedAt >= userAuthTimeoutMs
      ) {
        connection.close(Errors.CLOSE_USER_AUTH_REQUIRED.code, Errors.CLOSE_USER_AUTH_REQUIRED.message, 'protocol_error');
        continue;
      }
      if (t - connection.lastActivityAt >= activityTimeoutMs) {
        connection.ping(t);
      }
    }
  };
  const timer = setInterval(sweep, sweepInterval(activityTimeoutMs, pongTimeoutMs, userAuthTimeoutMs));
  timer.unref();
  return { sweep, stop: () => clearInterval(timer) };
}

/**
 * How often the sweep runs: a quarter of the shortest timeout, at most 1 s and never busier than 4 sweeps a second — so a
 * timeout acts at most that much after it is reached. The user-authentication timeout counts too: it was left out, and a
 * connection given `USER_AUTH_TIMEOUT_MS=2000` was closed up to a second late (2.15–2.79 s in a probe).
 */
export function sweepInterval(activityTimeoutMs: number, pongTimeoutMs: number, userAuthTimeoutMs: number): number {
  return Math.max(250, Math.min(1000, Math.floor(Math.min(activityTimeoutMs, pongTimeoutMs, userAuthTimeoutMs) / 4)));
}
