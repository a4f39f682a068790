/** Order statistics for the fan-out benchmark. */

/** The q-quantile (0..1) of the first `length` values, nearest-rank; sorts that prefix in place. */
export function quantile(values: Float64Array, length: number, q: number): number {
  if (length === 0) return Number.NaN;
  const sorted = values.subarray(0, length).sort();
  return sorted[Math.min(length - 1, Math.max(0, Math.ceil(q * length) - 1))] ?? Number.NaN;
}

/** The median of finite numbers (NaN when there are none). */
export function median(values: number[]): number {
  const finite = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (finite.length === 0) return Number.NaN;
  const mid = finite.length >> 1;
  return finite.length % 2 === 1 ? (finite[mid] ?? Number.NaN) : ((finite[mid - 1] ?? 0) + (finite[mid] ?? 0)) / 2;
}
