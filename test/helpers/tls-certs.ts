/**
 * A throwaway certificate authority and one server certificate it signed, made with the `openssl` command (Debian's
 * package, installed by scripts/ensure-system when missing), for servers on loopback that speak TLS (Redis).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface TlsFiles {
  /** The authority's certificate (PEM): what a client trusts, e.g. through `NODE_EXTRA_CA_CERTS`. */
  ca: string;
  /** The server's certificate (PEM), for the names given, and its key. */
  cert: string;
  key: string;
  /** Removes the files. */
  remove(): void;
}

/** `names`: the server certificate's subjectAltName entries, e.g. `['IP:127.0.0.1']` or `['DNS:localhost']`. */
export async function makeCertificates(names: readonly string[]): Promise<TlsFiles> {
  const dir = mkdtempSync(join(tmpdir(), 'beacon-tls-'));
  const file = (name: string): string => join(dir, name);
  const openssl = (...args: string[]): Promise<unknown> => run('openssl', args, { timeout: 20_000 });
  try {
    await openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', file('ca.key'), '-out', file('ca.crt'), '-days', '2', '-subj', '/CN=beacon-test-ca');
    await openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', file('server.key'), '-out', file('server.csr'), '-subj', '/CN=beacon-test-server');
    writeFileSync(file('ext.cnf'), `subjectAltName=${names.join(',')}\n`);
    await openssl(
      'x509', '-req', '-in', file('server.csr'), '-CA', file('ca.crt'), '-CAkey', file('ca.key'), '-CAcreateserial',
      '-out', file('server.crt'), '-days', '2', '-extfile', file('ext.cnf'),
    );
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return { ca: file('ca.crt'), cert: file('server.crt'), key: file('server.key'), remove: () => rmSync(dir, { recursive: true, force: true }) };
}
