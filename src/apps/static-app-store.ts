/** AppStore over the apps of the configuration (environment and/or APPS_FILE). */
import type { AppConfig } from '../config.js';
import type { AppStore } from './app-store.js';

export function createStaticAppStore(apps: readonly AppConfig[]): AppStore {
  const byKey = new Map(apps.map((a) => [a.key, a]));
  const byId = new Map(apps.map((a) => [a.id, a]));
  return {
    byKey: (key) => byKey.get(key),
    byId: (id) => byId.get(id),
    all: () => apps,
  };
}
