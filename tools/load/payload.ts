/**
 * What every load message carries in its `data` string: the sender's clock when it was sent (performance.now() of this
 * process, which every socket shares, so latency needs no clock sync) and a sequence number, padded to --payload-bytes.
 */

/** The decoded header of a load message. */
export interface LoadPayload {
  /** performance.now() at send, in ms. */
  t: number;
  /** Sequence number of the message in this run. */
  s: number;
}

/** The `data` string of message `seq`, padded with `x` to `bytes` (never shorter than its header). */
export function encodePayload(seq: number, bytes: number): string {
  const head = `{"t":${performance.now().toFixed(3)},"s":${seq},"p":"`;
  const pad = Math.max(0, bytes - head.length - 2);
  return `${head}${'x'.repeat(pad)}"}`;
}

/** Decodes a load message's data; undefined when it is not one of ours. */
export function decodePayload(data: unknown): LoadPayload | undefined {
  if (typeof data !== 'string' || !data.startsWith('{"t":')) return undefined;
  try {
    const parsed = JSON.parse(data) as Partial<LoadPayload>;
    return typeof parsed.t === 'number' && typeof parsed.s === 'number' ? { t: parsed.t, s: parsed.s } : undefined;
  } catch {
    return undefined;
  }
}
