/**
 * The safety catch of a load tool: the target must be on this machine (the loopback range, 127.0.0.0/8 or ::1) unless
 * the operator says otherwise with --allow-remote. A name is resolved and every address it resolves to must be loopback.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';

/** True for 127.0.0.0/8, ::1 and IPv4-mapped 127.x addresses. */
export function isLoopbackAddress(address: string): boolean {
  const a = address.replace(/^\[|\]$/g, '');
  if (isIP(a) === 4) return a.startsWith('127.');
  if (isIP(a) === 6) return a === '::1' || /^::ffff:127\./i.test(a) || /^0*:0*:0*:0*:0*:0*:0*:0*1$/.test(a);
  return false;
}

/** Resolves `hostname` and reports whether every address is loopback (false when it does not resolve). */
export async function resolvesToLoopback(hostname: string): Promise<boolean> {
  const bare = hostname.replace(/^\[|\]$/g, '');
  if (isIP(bare) !== 0) return isLoopbackAddress(bare);
  try {
    const addresses = await lookup(bare, { all: true });
    return addresses.length > 0 && addresses.every((a) => isLoopbackAddress(a.address));
  } catch {
    return false;
  }
}
