#!/usr/bin/env node
// beacon-load (tools/load/main.ts): the operator tools are TypeScript run through tsx, so a clone needs no build step
// after `npm install` / `npm ci`; `npx beacon-load` and `npm run load --` both land here.
import { register } from 'tsx/esm/api';

register();
await import('../load/main.ts');
