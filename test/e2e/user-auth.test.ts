/** Apps with user authentication required: a connection that does not sign in within USER_AUTH_TIMEOUT_MS is closed 4009. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RawClient } from '../helpers/raw-client.js';
import { APP, startServer } from '../helpers/server.js';
import { userAuthString, sign } from '../../src/protocol/signatures.js';

test('an app requiring user authentication closes a connection that never signs in with 4009', async () => {
  const server = await startServer({ APP_USER_AUTHENTICATION_REQUIRED: 'true', USER_AUTH_TIMEOUT_MS: '300' });
  try {
    const silent = await RawClient.established(server.port);
    const signed = await RawClient.established(server.port);
    const userData = JSON.stringify({ id: 'u1' });
    signed.client.send({
      event: 'pusher:signin',
      data: { auth: `${APP.key}:${sign(APP.secret, userAuthString(signed.socketId, userData))}`, user_data: userData },
    });
    await signed.client.next('pusher:signin_success');
    const closed = await silent.client.waitClosed(5000);
    assert.equal(closed.code, 4009);
    // The signed-in connection outlives the deadline: it answers a ping after the silent one was closed.
    signed.client.send({ event: 'pusher:ping', data: {} });
    await signed.client.next('pusher:pong');
    assert.equal(signed.client.ws.readyState, signed.client.ws.OPEN);
    await signed.client.close();
  } finally {
    await server.close();
  }
});
