/**
 * The generated dashboards: `npm run dashboards` writes each to grafana/dashboards/<file>, and test/stack checks the
 * committed files equal what this generates.
 */
import type { Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import { channels } from './dashboards/channels.js';
import { overview } from './dashboards/overview.js';
import { sessions } from './dashboards/sessions.js';
import { traces } from './dashboards/traces.js';

/** Dashboard file name (under grafana/dashboards/) → builder. */
export const DASHBOARDS: Readonly<Record<string, () => Dashboard>> = {
  'beacon-overview.json': overview,
  'beacon-channels.json': channels,
  'beacon-sessions.json': sessions,
  'beacon-traces.json': traces,
};

/** The JSON text of one dashboard as committed: panel ids numbered in order, two-space indent, final newline. */
export function render(build: () => Dashboard): string {
  const dashboard = build();
  let id = 1;
  for (const panel of dashboard.panels ?? []) panel.id = id++;
  return `${JSON.stringify(dashboard, null, 2)}\n`;
}
