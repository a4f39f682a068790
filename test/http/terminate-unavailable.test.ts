/**
 * `POST /users/{id}/terminate_connections` answers 200 only once the engine took the request: on Redis, a PUBLISH that
 * failed (Redis gone between the admission check and the handler, a refusal, a timeout) answered 200 and closed nothing,
 * not even on the node that took the call — after a ban or a password change, the backend believed it done.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EngineUnavailableError, type Adapter } from '../../src/adapters/adapter.js';
import { createLocalAdapter } from '../../src/adapters/local-adapter.js';
import { APP, startServer } from '../helpers/server.js';
import { signedFetch } from '../helpers/signed-fetch.js';

test('terminate_connections: 503 with Retry-After when the engine fails the request; 200 once it took it', async () => {
  let failing = true;
  const server = await startServer({}, {
    adapter: (_hub, metrics) => {
      const local = createLocalAdapter({ metrics, cacheTtlMs: 60_000, cacheMaxBytes: 1 << 20 });
      const wrapped: Adapter = Object.create(local) as Adapter;
      wrapped.terminateUser = async (appId, userId) => {
        if (failing) throw new EngineUnavailableError('cluster engine failed the request: connection closed');
        return local.terminateUser(appId, userId);
      };
      return wrapped;
    },
  });
  try {
    const refused = await signedFetch(server, 'POST', `/apps/${APP.id}/users/u1/terminate_connections`, { body: '{}' });
    assert.equal(refused.status, 503);
    assert.equal(refused.headers.get('retry-after'), '1');
    failing = false;
    const done = await signedFetch(server, 'POST', `/apps/${APP.id}/users/u1/terminate_connections`, { body: '{}' });
    assert.deepEqual([done.status, done.body], [200, {}]);
  } finally {
    await server.close();
  }
});
