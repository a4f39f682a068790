// Worker entry used only when Beacon runs from its TypeScript sources under tsx (tests, development): the worker starts
// without the process's flags, so register tsx before importing the TypeScript worker. Compiled builds load
// span-export-worker.js.
import { register } from 'tsx/esm/api';

register();
await import('./span-export-worker.ts');
