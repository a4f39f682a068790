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

const HEAD = /^\{"t":(\d+(?:\.\d+)?),"s":(\d+),/;

/** Decodes a load message's data (only its head: a large payload is not parsed); undefined when it is not ours. */
export function decodePayload(data: unknown): LoadPayload | undefined {
  if (typeof data !== 'string') return undefined;
  const m = HEAD.exec(data);
  return m === null ? undefined : { t: Number(m[1]), s: Number(m[2]) };
}
