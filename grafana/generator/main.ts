/** `npm run dashboards`: regenerates grafana/dashboards/*.json from the TypeScript definitions. */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DASHBOARDS, render } from './index.js';

const out = fileURLToPath(new URL('../dashboards/', import.meta.url));
for (const [file, build] of Object.entries(DASHBOARDS)) {
  writeFileSync(out + file, render(build));
  console.log(`wrote grafana/dashboards/${file}`);
}
