/**
 * Root spans sampled before the SDK is asked. Under `parentbased_traceidratio` a new trace (an API request without a
 * `traceparent`, a connection, a client frame) is kept with the configured ratio; the SDK decides that only after it has
 * generated both ids, consulted its span metrics, sanitised the options and called the sampler: ~10 µs per root span in
 * the server, 95 % of them thrown away at 5 % sampling. When the bootstrap installs the sampler of
 * otel/presampled-root-sampler.ts it registers the ratio here, and `startSpan` (tracing.ts) draws first: a root it does
 * not keep becomes a non-recording span with fresh ids (log lines still carry them), one it keeps goes to the SDK with
 * `ROOT_SAMPLED` in its context, which that sampler records. Without a registration (telemetry off, no traces, any other
 * sampler) every root goes to the SDK or the API's no-op tracer, as before.
 *
 * The draw is uniform and independent of the trace id, where the SDK's ratio sampler compares the trace id's bits with the
 * ratio: the same share of new traces is kept. A child of a kept root follows its parent under every `parentbased_*`
 * sampler, so a trace is still kept or dropped whole.
 */
import { createContextKey } from '@opentelemetry/api';

/** Set in the parent context of a root span the draw kept: the SDK's root sampler records it without asking again. */
export const ROOT_SAMPLED = createContextKey('beacon.root_sampled');

/** How root spans are sampled before the SDK is asked; registered by the bootstrap. */
export interface RootSampling {
  /** The share of new traces kept, in [0, 1]. */
  readonly ratio: number;
  /** The SDK's own id generator, for the ids of the roots not kept. */
  readonly ids: { generateTraceId(): string; generateSpanId(): string };
  /** Uniform in [0, 1); `Math.random` unless a test pins it. */
  readonly random?: () => number;
}

let installed: { ratio: number; ids: RootSampling['ids']; random: () => number } | undefined;

/** Registers (or, with undefined, removes) the root sampling `startSpan` applies. */
export function sampleRootsBeforeTheSdk(sampling: RootSampling | undefined): void {
  installed = sampling === undefined ? undefined : { ratio: sampling.ratio, ids: sampling.ids, random: sampling.random ?? Math.random };
}

/** The registered root sampling, if any. */
export function rootSampling(): typeof installed {
  return installed;
}
