/** A full garbage collection on demand, without starting node with `--expose-gc`: V8 hands `gc` to a context made after the flag is set. */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

setFlagsFromString('--expose-gc');
export const gc = runInNewContext('gc') as () => void;
