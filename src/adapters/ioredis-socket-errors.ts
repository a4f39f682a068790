/**
 * Every socket ioredis opens gets an `error` listener that stays.
 *
 * ioredis 6.0.0 listens for its socket's `error` with `once` only (StandaloneConnector, SentinelConnector, and the client
 * itself), and Node can emit a second `error` on a TLS socket it has already destroyed: a certificate that does not name
 * the host fails the handshake (the first error, handled: a reconnection), then the server's alert, already read, is
 * emitted as another — with no listener left, which ends the process ("Unhandled 'error' event"). A probe: Beacon exited
 * with 1 in 11 of 51 start-ups against a TLS Redis Cluster whose certificate named another host, on a busy machine; none
 * in 22 with this. (ioredis declined changing `once` to `on`.) Every connection — a Cluster's nodes, its slot refresher
 * and sharded subscribers, Sentinels' masters — is made through these two connectors. test/adapters/ioredis-socket-errors.test.ts
 * pins it to the installed ioredis.
 */
import { createRequire } from 'node:module';
import type { Duplex } from 'node:stream';

interface Connector {
  connect(...args: unknown[]): Promise<Duplex>;
}
type ConnectorClass = { prototype: Connector };

const require = createRequire(import.meta.url);
/** The connectors whose `connect` makes the socket: StandaloneConnector has no export but its file. */
const CONNECTORS: readonly ConnectorClass[] = [
  (require('ioredis/built/connectors/StandaloneConnector.js') as { default: ConnectorClass }).default,
  (require('ioredis') as { SentinelConnector: ConnectorClass }).SentinelConnector,
];

const ignore = (): void => undefined;
const PATCHED = Symbol.for('beacon.ioredis-socket-errors');

for (const connector of CONNECTORS) {
  const proto = connector.prototype as Connector & { [PATCHED]?: true };
  if (proto[PATCHED]) continue;
  const connect = proto.connect;
  proto.connect = function (this: Connector, ...args: unknown[]): Promise<Duplex> {
    // Resolved before any of the socket's I/O: the listener is there before its first event.
    return connect.apply(this, args).then((stream) => {
      stream.on('error', ignore);
      return stream;
    });
  };
  proto[PATCHED] = true;
}
