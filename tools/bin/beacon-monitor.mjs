#!/usr/bin/env node
// beacon-monitor (tools/monitor/main.ts): the operator tools are TypeScript run through tsx, so a clone needs no build
// step after `npm install` / `npm ci`; `npx beacon-monitor` and `npm run monitor --` both land here.
import { register } from 'tsx/esm/api';

register();
await import('../monitor/main.ts');
