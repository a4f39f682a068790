/**
 * Where apps come from. Contract: lookups are synchronous and cheap (they run on every upgrade and API request); the set of
 * apps is fixed for the life of the process, so `all()` can size per-app metrics and state at start-up.
 */
import type { AppConfig } from '../config.js';

export interface AppStore {
  byKey(key: string): AppConfig | undefined;
  byId(id: string): AppConfig | undefined;
  all(): readonly AppConfig[];
}
