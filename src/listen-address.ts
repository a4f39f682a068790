/**
 * The addresses the servers listen on (`HOST`, `METRICS_HOST`): checked alike at start-up, and written alike in the lines
 * that name them.
 */
import { isIP } from 'node:net';

/**
 * A host name: labels of letters, digits, underscores (container and service names such as `my_host` resolve) and inner
 * hyphens, a fully qualified name's trailing dot allowed, the last label not all digits — so `999.1.1.1` is refused as
 * the mistyped IPv4 address it is, instead of being looked up as a name at listen time.
 */
const HOST_NAME = /^(?=.{1,254}$)([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.)*(?!\d+\.?$)[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.?$/;

/** What a server can listen on: an IP address (IPv6 without brackets: `::1`) or a host name. */
export function isListenHost(host: string): boolean {
  return isIP(host) !== 0 || HOST_NAME.test(host);
}

/** `host:port` as a URL writes it: an IPv6 address in brackets (`[::1]:6001`, not `::1:6001`). */
export function hostPort(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}
