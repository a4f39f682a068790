/**
 * A quantile from cumulative histogram buckets, as PromQL's histogram_quantile computes it: find the bucket the rank falls
 * in and interpolate linearly inside it (the lowest bucket starts at 0; a rank in the +Inf bucket answers the highest
 * finite bound).
 */

/** One cumulative bucket: observations ≤ `le`. */
export interface Bucket {
  le: number;
  count: number;
}

/** The q-quantile (0–1) of `buckets`; undefined when they hold no observation. */
export function histogramQuantile(q: number, buckets: Bucket[]): number | undefined {
  const sorted = [...buckets].sort((a, b) => a.le - b.le);
  const last = sorted[sorted.length - 1];
  if (last === undefined || last.count <= 0) return undefined;
  const rank = q * last.count;
  let lowerBound = 0;
  let lowerCount = 0;
  for (const b of sorted) {
    if (b.count >= rank) {
      if (b.le === Number.POSITIVE_INFINITY) return lowerBound;
      if (b.count === lowerCount) return b.le;
      return lowerBound + ((b.le - lowerBound) * (rank - lowerCount)) / (b.count - lowerCount);
    }
    lowerBound = b.le;
    lowerCount = b.count;
  }
  return lowerBound;
}
