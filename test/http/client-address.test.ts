/**
 * The client's address as log lines carry it (`remote_address`): an IPv4 client as IPv4 whichever family the server
 * listens on, and text a proxy passed on cut as the client's other words are.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, request, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import Fastify from 'fastify';
import { loadConfig } from '../../src/config.js';
import { clientAddress, loggedAddress } from '../../src/http/client-address.js';

test('an IPv4 client of a dual-stack listener is logged as IPv4; IPv6 and cut text as they are', () => {
  // A probe with HOST=::: `::ffff:127.0.0.1`, which a query for 127.0.0.1 does not find.
  assert.equal(loggedAddress('::ffff:127.0.0.1'), '127.0.0.1');
  assert.equal(loggedAddress('::FFFF:192.0.2.1'), '192.0.2.1');
  assert.equal(loggedAddress('::1'), '::1');
  assert.equal(loggedAddress('2001:db8::7'), '2001:db8::7');
  assert.equal(loggedAddress('::ffff:c000:0201'), '::ffff:c000:0201');
  assert.equal(loggedAddress('x'.repeat(65)), `${'x'.repeat(64)}…`);
  assert.equal(loggedAddress(undefined), undefined);
});

test("clientAddress reads X-Forwarded-For as fastify's trustProxy does: nothing when off, every hop with true, listed proxies", async () => {
  const seen: IncomingMessage[] = [];
  const server = createServer((req, res) => {
    seen.push(req);
    res.end();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  try {
    const { port } = server.address() as AddressInfo;
    await new Promise<void>((resolve, reject) => {
      request({ host: '127.0.0.1', port, headers: { 'x-forwarded-for': '203.0.113.7, 198.51.100.2' } }, (res) => {
        res.resume();
        res.on('end', resolve);
      })
        .on('error', reject)
        .end();
    });
    const raw = seen[0]!;
    assert.equal(clientAddress(false)(raw), '127.0.0.1');
    assert.equal(clientAddress(true)(raw), '203.0.113.7');
    assert.equal(clientAddress('loopback')(raw), '198.51.100.2');
    assert.equal(clientAddress('10.0.0.0/8, 127.0.0.1')(raw), '198.51.100.2');
    assert.equal(clientAddress('10.0.0.1')(raw), '127.0.0.1');
    // TRUST_PROXY=0.0.0.0/0 (every IPv4 peer a proxy) as the configuration hands it on: every IPv4 hop trusted, by this
    // and by fastify, which compiles the same list (proxy-addr threw on the /0 and the process stopped at start).
    const everyIPv4 = loadConfig({ TRUST_PROXY: '0.0.0.0/0' }).trustProxy;
    assert.equal(clientAddress(everyIPv4)(raw), '203.0.113.7');
    const app = Fastify({ trustProxy: everyIPv4 });
    app.get('/', async (req) => req.ip);
    assert.equal((await app.inject({ url: '/', headers: { 'x-forwarded-for': '203.0.113.7, 198.51.100.2' } })).body, '203.0.113.7');
    await app.close();
  } finally {
    server.close();
  }
});
