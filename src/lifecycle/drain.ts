/**
 * The graceful drain (README, "Health and shutdown"), as one ordered sequence under one `Deadline`:
 *
 * 1. draining: `/readyz` answers 503 and new upgrades are refused at once (the load balancer stops sending clients);
 * 2. the grace (`SHUTDOWN_GRACE_MS`), so the load balancer has seen readiness go before the API refuses anything — with no
 *    client connected too: the API's publishers are still sent here until it has (set it to 0 where nothing balances);
 * 3. the HTTP API stops accepting: every request from now on gets 503 + `Retry-After`, and a publish is only accepted
 *    (HTTP 200) while the gate is open — checked in the same synchronous step that hands it to the adapter;
 * 4. the adapter is flushed: every envelope accepted before step 3 has reached this node's fan-out, i.e. was written to
 *    the sockets of every subscriber connected now — so a 200 means delivered, and nothing accepted is lost;
 * 5. every connection is closed with 4200 (its close frame queues behind the frames written in step 4), and the drain
 *    waits for the close handshakes. A cluster engine holds their leaves for the leave grace (`Adapter.holdLeaves`:
 *    LEAVE_GRACE_MAX_MS at most, a fifth of the deadline, a third of what is left of it), so the clients that reconnect
 *    to another node meanwhile neither leave nor join for the rest of the cluster;
 * 6. the connections' leaves are settled with the cluster engine, once the leave grace is over (their webhooks come from
 *    its answers); then what the engine still records for this node (a leave that failed and waits for its retry) is
 *    recorded or removed, and announced (`Adapter.reapOwn`); the engine keeps its heartbeat until it closes;
 * 7. webhooks, the HTTP server and the adapter close; the webhooks give up on what is still in flight (counted and logged
 *    failed) after their own close timeout, or sooner to leave WEBHOOK_RESERVE_MS of the deadline to what follows.
 * Every wait is bounded by what is left of the deadline; a stage that runs out of time does not stop the later ones.
 */
import type { Adapter } from '../adapters/adapter.js';
import { Errors } from '../protocol/errors.js';
import type { Hub } from '../realtime/hub.js';
import type { Logger } from '../telemetry/logger.js';
import { logEvent } from '../telemetry/log-events.js';
import type { Metrics } from '../telemetry/metrics.js';
import type { Deadline } from './deadline.js';

/**
 * The longest leave grace (step 5): pusher-js reconnects at once on 4200, and a presence member is back on another node
 * once its auth request and join have been answered — well under a second normally, more when every client of the node
 * reconnects at once.
 */
export const LEAVE_GRACE_MAX_MS = 5000;

/**
 * What the webhooks leave of the deadline for the later stages and the telemetry and log flushes (half of what is left
 * when that is less than twice this): they wait for their requests in flight until then, at most their own close timeout,
 * and what they give up is counted and logged in time. Half of what was left instead cut a normal wait short when the
 * earlier stages had used most of the deadline (a review).
 */
const WEBHOOK_RESERVE_MS = 1000;

/** The leave grace for a shutdown deadline of `totalMs`: a fifth of it, at most LEAVE_GRACE_MAX_MS (2 s for the default 10 s). */
export function leaveGraceMs(totalMs: number): number {
  return Math.min(LEAVE_GRACE_MAX_MS, Math.floor(totalMs / 5));
}

/** What the drain drives; each part is built elsewhere (app.ts wires them). */
export interface DrainParts {
  hub: Hub;
  adapter: Adapter;
  logger: Logger;
  metrics: Pick<Metrics, 'shutdownStarted' | 'shutdownDuration'>;
  graceMs: number;
  /** Step 1: readiness 503, upgrades refused. */
  startDraining(): void;
  /** Step 3: the HTTP API answers 503 from now on and accepts no publish. */
  stopAcceptingApi(): void;
  heartbeat: { stop(): void };
  webhooks: { close(waitMs: number): Promise<void> };
  /** The HTTP server (fastify.close). */
  server: { close(): Promise<unknown> };
}

/** How the drain went. */
export interface DrainResult {
  seconds: number;
  /** Stages that ran out of time, in order ('' never: empty when everything finished). */
  timedOut: string[];
}

/** Runs the drain sequence above; resolves (never rejects) by the deadline. */
export async function drain(parts: DrainParts, deadline: Deadline): Promise<DrainResult> {
  const { hub, adapter, logger } = parts;
  const started = performance.now();
  // The deadline starts with the shutdown: its whole length sets the leave grace (step 5).
  const leaveGrace = leaveGraceMs(deadline.remainingMs());
  const timedOut: string[] = [];
  const stage = async (name: string, work: () => Promise<unknown>): Promise<void> => {
    if (!(await deadline.race(Promise.resolve().then(work)))) timedOut.push(name);
  };

  parts.startDraining();
  parts.metrics.shutdownStarted();
  // Before any wait: a node in its grace sleep takes no clients, and another node's drain must not count on it.
  adapter.markDraining?.(deadline.remainingMs());
  logEvent(logger, 'info', { event: 'shutdown_started', connections: hub.connectionCount(), grace_ms: parts.graceMs }, 'draining');
  // Whether or not clients are connected: skipping it without them (a shortcut from before the API had a gate) left an
  // API-only node exiting before its load balancer saw /readyz go 503, its publishers' requests then refused by a closed port.
  if (parts.graceMs > 0) await deadline.sleep(parts.graceMs);
  parts.heartbeat.stop();

  parts.stopAcceptingApi();
  await stage('adapter_flush', () => adapter.flush());

  const open = [...hub.connections()];
  const gone = Promise.all(
    open.map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.ws.readyState === c.ws.CLOSED) resolve();
          else c.ws.once('close', () => resolve());
        }),
    ),
  );
  // Their leaves (on close) are held by a cluster engine until the grace is over or the settle below; within what is left.
  if (open.length > 0) adapter.holdLeaves?.(Math.min(leaveGrace, deadline.remainingMs() / 3));
  for (const connection of open) connection.close(Errors.CLOSE_SHUTTING_DOWN.code, Errors.CLOSE_SHUTTING_DOWN.message, 'server_shutdown');
  // Connection.close cuts a socket whose peer does not answer within its own bound; clients normally answer at once.
  await stage('connections', () => gone);
  // The clients' leaves are recorded cluster-wide first, once the leave grace is over (their webhooks come from the
  // answers), then their channel_vacated / member_removed go out now instead of after their delay.
  await stage('adapter_settle', () => adapter.settle());
  // What the engine still holds for this node is removed and announced while the webhooks are open.
  await stage('adapter_reap_own', async () => adapter.reapOwn?.());
  // Told how long it may wait, so that it gives up on what is still in flight — counted and logged failed — while there is
  // time left: bounded only by the stage, its own close timeout outlasted a short deadline and the process exited with
  // those events neither delivered nor counted (a probe).
  await stage('webhooks', () => {
    const left = deadline.remainingMs();
    return parts.webhooks.close(left - Math.min(WEBHOOK_RESERVE_MS, left / 2));
  });
  await stage('http_server', () => parts.server.close());
  await stage('adapter', () => adapter.close());

  const seconds = (performance.now() - started) / 1000;
  parts.metrics.shutdownDuration(seconds);
  return { seconds, timedOut };
}
