// Worker entry used only when Beacon runs from its TypeScript sources under tsx (tests, development). Worker threads do
// not inherit the main thread's loader hooks (and pino starts its workers without --import flags), so the TypeScript
// transport cannot be imported directly there: register tsx in the worker first. Compiled builds load loki-transport.js.
import { register } from 'tsx/esm/api';

register();
const { default: lokiTransport } = await import('./loki-transport.ts');
export default lokiTransport;
