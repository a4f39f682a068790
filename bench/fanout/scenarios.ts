/** Every fan-out scenario, by id, in the order they run. */
import { clientEvent } from './scenario-client-event.js';
import { httpPublish } from './scenario-http-publish.js';
import type { Scenario } from './scenario.js';

export const SCENARIOS: readonly Scenario[] = [clientEvent, httpPublish];

export function scenarioById(id: string): Scenario {
  const scenario = SCENARIOS.find((s) => s.id === id);
  if (scenario === undefined) throw new Error(`unknown scenario "${id}" (known: ${SCENARIOS.map((s) => s.id).join(', ')})`);
  return scenario;
}
