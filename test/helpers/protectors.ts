/**
 * V8's protector trace, for tests that a process never detaches an ArrayBuffer: the first detach in a thread invalidates
 * its ArrayBufferDetaching protector, and every optimised function reading a typed array is rebuilt slower.
 */
import { fileURLToPath } from 'node:url';

const PRELOAD = fileURLToPath(new URL('./trace-protectors.mjs', import.meta.url));

/** NODE_OPTIONS for a child that prints "Invalidating protector cell <name>" on stdout at each invalidation. */
export const TRACE_PROTECTORS = `--import="${PRELOAD}"`;

/** The line printed when an ArrayBuffer is detached for the first time (in any thread of the process). */
export const ARRAY_BUFFER_DETACHED = 'Invalidating protector cell ArrayBufferDetaching';
