/**
 * The root sampler of `parentbased_traceidratio` when Beacon draws root spans itself (src/telemetry/root-sampling.ts): a
 * root whose context carries `ROOT_SAMPLED` was kept by that draw and is recorded; any other root (one started without the
 * draw) is decided by the SDK's ratio sampler, as before. Children follow their parent through the ParentBasedSampler
 * around it, with the SDK's defaults.
 */
import type { Attributes, Context, Link, SpanKind } from '@opentelemetry/api';
import {
  ParentBasedSampler,
  SamplingDecision,
  TraceIdRatioBasedSampler,
  type Sampler,
  type SamplingResult,
} from '@opentelemetry/sdk-trace-base';
import { ROOT_SAMPLED } from '../src/telemetry/root-sampling.js';

const KEPT: SamplingResult = Object.freeze({ decision: SamplingDecision.RECORD_AND_SAMPLED });

export class PresampledRootSampler implements Sampler {
  private readonly byRatio: TraceIdRatioBasedSampler;

  constructor(readonly ratio: number) {
    this.byRatio = new TraceIdRatioBasedSampler(ratio);
  }

  shouldSample(context: Context, traceId: string, name: string, kind: SpanKind, attributes: Attributes, links: Link[]): SamplingResult {
    if (context.getValue(ROOT_SAMPLED) === true) return KEPT;
    return this.byRatio.shouldSample(context, traceId);
  }

  toString(): string {
    return `PresampledRoot{${this.byRatio.toString()}}`;
  }
}

/** `parentbased_traceidratio` at `ratio`, its root drawn before the SDK when the draw is registered. */
export function presampledParentBasedSampler(ratio: number): ParentBasedSampler {
  return new ParentBasedSampler({ root: new PresampledRootSampler(ratio) });
}
