/**
 * The safety catch of a load tool: the target must be on this machine (the loopback range, 127.0.0.0/8 or ::1) unless
 * the operator says otherwise with --allow-remote. A name is resolved and every address it resolves to must be loopback.
 */
import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';

/**
 * 127.0.0.0/8 and ::1. BlockList compares addresses, not their spelling: an IPv4-mapped one matches the IPv4 range in
 * any form (the URL parser writes [::ffff:127.0.0.1] as [::ffff:7f00:1], which a string prefix refused), and ::1 in any.
 */
const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/** True for 127.0.0.0/8, ::1 and IPv4-mapped 127.x addresses, however written. */
export function isLoopbackAddress(address: string): boolean {
  const a = address.replace(/^\[|\]$/g, '');
  const family = isIP(a);
  if (family === 0) return false;
  return LOOPBACK.check(a, family === 4 ? 'ipv4' : 'ipv6');
}

/**
 * Why `hostname` is not a target on this machine, or undefined when it is: every address it resolves to must be loopback.
 * A name that does not resolve is said as such (it used to read "not a loopback address", which sent the operator to
 * --allow-remote for a typo).
 */
export async function notLoopback(hostname: string): Promise<string | undefined> {
  const bare = hostname.replace(/^\[|\]$/g, '');
  if (isIP(bare) !== 0) {
    return isLoopbackAddress(bare) ? undefined : `${hostname} is not a loopback address; a load test leaves this machine only with --allow-remote`;
  }
  let addresses: Array<{ address: string }>;
  try {
    addresses = await lookup(bare, { all: true });
  } catch (err) {
    return `${hostname} does not resolve (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): is --host right?`;
  }
  if (addresses.length === 0) return `${hostname} does not resolve (no address): is --host right?`;
  const remote = addresses.filter((a) => !isLoopbackAddress(a.address)).map((a) => a.address);
  if (remote.length === 0) return undefined;
  return `${hostname} is not a loopback address (it resolves to ${remote.join(', ')}); a load test leaves this machine only with --allow-remote`;
}

/** Resolves `hostname` and reports whether every address is loopback (false when it does not resolve). */
export async function resolvesToLoopback(hostname: string): Promise<boolean> {
  return (await notLoopback(hostname)) === undefined;
}
