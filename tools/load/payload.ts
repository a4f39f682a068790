/**
 * What every load message carries in its `data` string: the run's id (so a run counts only its own messages when another
 * run, or anything else, publishes on the same server), the sender's clock when it was sent (performance.now() of this
 * process, which every socket shares, so latency needs no clock sync) and a sequence number, padded to --payload-bytes.
 */
import { randomBytes } from 'node:crypto';

/** The decoded header of a load message. */
export interface LoadPayload {
  /** The id of the run that sent it. */
  r: string;
  /** performance.now() at send, in ms. */
  t: number;
  /** Sequence number of the message in this run. */
  s: number;
}

/** A new run id: 8 hex digits, in the run's channel names and in every message it sends. */
export function newRunId(): string {
  return randomBytes(4).toString('hex');
}

/** The `data` string of message `seq` of run `runId`, padded with `x` to `bytes` (never shorter than its header). */
export function encodePayload(runId: string, seq: number, bytes: number): string {
  const head = `{"r":"${runId}","t":${performance.now().toFixed(3)},"s":${seq},"p":"`;
  const pad = Math.max(0, bytes - head.length - 2);
  return `${head}${'x'.repeat(pad)}"}`;
}

const HEAD = /^\{"r":"([0-9a-f]+)","t":(\d+(?:\.\d+)?),"s":(\d+),/;

/**
 * Decodes a load message's data (only its head: a large payload is not parsed); undefined when it is no load message.
 * The caller compares `r` with its own run id: a message of another run is not one of its deliveries.
 */
export function decodePayload(data: unknown): LoadPayload | undefined {
  if (typeof data !== 'string') return undefined;
  const m = HEAD.exec(data);
  return m === null ? undefined : { r: m[1] as string, t: Number(m[2]), s: Number(m[3]) };
}
