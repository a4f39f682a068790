/**
 * A fan-out scenario: how a message enters the server (its publisher) and where subscribers listen. The load process
 * (load.ts) runs the same workload against every target with the scenario's publisher; one scenario per file.
 */
import type { Payload, Subscription } from './clients.js';
import type { TargetId } from './targets.js';

/** Publishes benchmark messages to one target. `publish` resolves (if it returns a promise) when the server accepted it. */
export interface Publisher {
  publish(payload: Payload): Promise<unknown> | void;
  close(): void;
}

export interface Scenario {
  id: string;
  title: string;
  /** What is measured, for the notes of the results. */
  description: string;
  subscription: Subscription;
  connectPublisher(target: TargetId, port: number): Promise<Publisher>;
  /**
   * A publisher of the same requests to a channel (room) nobody subscribes to, for the request-path warm-up of load.ts:
   * the publish path reaches its steady state (V8 optimises a function after thousands of calls) without a fan-out.
   * Scenarios whose messages need a subscribed sender leave it out.
   */
  connectWarmupPublisher?(target: TargetId, port: number): Promise<Publisher>;
}
