/**
 * Load messages as signed HTTP API publishes (`POST /apps/{id}/events`), as a backend's `pusher.trigger` sends them,
 * with at most `maxInFlight` requests outstanding: past that a send is skipped and counted, because a generator that
 * queues without bound would measure its own queue instead of the server.
 */
import { apiSignString, bodyMd5, sign } from '../../src/protocol/signatures.js';
import { bump, type Tally } from './tally.js';

/** The event name of load messages sent over HTTP. */
export const HTTP_EVENT = 'load';

/** Where and as whom to publish, and the bound on requests in flight. */
export interface HttpPublisherOptions {
  /** http://host:port of the server. */
  baseUrl: string;
  appId: string;
  appKey: string;
  appSecret: string;
  maxInFlight: number;
  tally: Tally;
}

/** Signed HTTP API publishes of load messages. */
export interface HttpPublisher {
  /**
   * Publishes load message `seq` (`data`) to `channel`; when the server accepts it (2xx), `recipients` deliveries are expected.
   * Returns false when skipped (too many requests in flight).
   */
  publish(seq: number, channel: string, data: string, recipients: number): boolean;
  /** Requests still waiting for an answer. */
  inFlight(): number;
  /** Resolves once nothing is in flight. */
  idle(): Promise<void>;
}

/** A publisher over `fetch` (keep-alive connections), counting into `options.tally`. */
export function createHttpPublisher(options: HttpPublisherOptions): HttpPublisher {
  const { tally } = options;
  const path = `/apps/${encodeURIComponent(options.appId)}/events`;
  let inFlight = 0;
  let waiters: Array<() => void> = [];
  const done = () => {
    inFlight--;
    if (inFlight === 0) {
      for (const wake of waiters) wake();
      waiters = [];
    }
  };

  return {
    publish(seq, channel, data, recipients) {
      if (inFlight >= options.maxInFlight) {
        tally.skipped++;
        return false;
      }
      const body = JSON.stringify({ name: HTTP_EVENT, channel, data });
      const query: Record<string, string> = {
        auth_key: options.appKey,
        auth_timestamp: String(Math.floor(Date.now() / 1000)),
        auth_version: '1.0',
        body_md5: bodyMd5(body),
      };
      query.auth_signature = sign(options.appSecret, apiSignString('POST', path, query));
      inFlight++;
      tally.httpAttempted++;
      tally.messagesSent++;
      fetch(`${options.baseUrl}${path}?${new URLSearchParams(query).toString()}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
        signal: AbortSignal.timeout(10_000),
      })
        .then(async (res) => {
          await res.arrayBuffer();
          if (res.ok) {
            tally.httpPublished++;
            tally.expectedDeliveries += recipients;
          } else {
            tally.httpRefused++;
            bump(tally.httpRefusedStatuses, res.status);
            tally.error(`HTTP publish answered ${res.status}`);
          }
        })
        .catch((err: Error & { cause?: { code?: string } }) => {
          // No answer is no verdict: the server may have accepted it (its deliveries will tell, see Tally.unanswered).
          const cause = err.cause?.code ?? err.name;
          bump(tally.httpNoAnswer, cause);
          tally.error(`HTTP publish got no answer: ${cause}`);
          tally.unansweredPublish(seq, recipients);
        })
        .finally(done);
      return true;
    },
    inFlight: () => inFlight,
    idle() {
      return inFlight === 0 ? Promise.resolve() : new Promise((resolve) => waiters.push(resolve));
    },
  };
}
