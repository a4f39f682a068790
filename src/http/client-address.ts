/**
 * The client's address as log lines carry it (`remote_address`): the peer, or with `TRUST_PROXY` the client a trusted proxy
 * names in X-Forwarded-For — text the client may have written, so cut as the client's other words are.
 */
import type { IncomingMessage } from 'node:http';
import proxyAddr from '@fastify/proxy-addr';

/** How much of an address is logged: an IPv6 address with a zone fits; X-Forwarded-For text past it is the client's. */
export const ADDRESS_LOGGED = 64;

/** `value` cut to `max` characters, marked with `…` when cut. */
export function clipped(value: string | undefined, max: number): string | undefined {
  return value === undefined || value.length <= max ? value : `${value.slice(0, max)}…`;
}

/** An IPv4 client of a dual-stack (`::`) listener, as the kernel names it: `::ffff:192.0.2.1`. */
const IPV4_MAPPED = /^::ffff:(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})$/i;

/**
 * An address for a log line: an IPv4 client as IPv4 whichever family the server listens on (with HOST=:: the kernel
 * names it `::ffff:192.0.2.1`, which a query for `192.0.2.1` does not find), cut past ADDRESS_LOGGED characters (a 12 KB
 * X-Forwarded-For made a 12 KB line).
 */
export function loggedAddress(address: string | undefined): string | undefined {
  if (address === undefined) return undefined;
  const mapped = IPV4_MAPPED.exec(address);
  return mapped !== null ? mapped[1] : clipped(address, ADDRESS_LOGGED);
}

/**
 * fastify's `request.ip` under `trustProxy`, for a raw request: fastify hands its router's refusals (`frameworkErrors`: a
 * malformed URL) a request built without `trustProxy`, whose `ip` is the peer — the proxy's address, not the client's.
 * The same trust as fastify's: `true` every hop, a list the addresses it names (@fastify/proxy-addr, as fastify uses it).
 */
export function clientAddress(trustProxy: boolean | string): (raw: IncomingMessage) => string | undefined {
  if (trustProxy === false) return (raw) => raw.socket.remoteAddress;
  const trust = trustProxy === true ? () => true : proxyAddr.compile(trustProxy.split(',').map((entry) => entry.trim()));
  return (raw) => proxyAddr(raw, trust);
}
