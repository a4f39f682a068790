/**
 * Secrets never reach a log line (telemetry/logger.ts REDACT_PATHS): each secret field at the top level and inside the
 * objects a line may nest it in, whatever the line. Checked on the raw text written, so a value that slipped through
 * anywhere in the line fails the test.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { createLogger } from '../../src/telemetry/logger.js';
import { logEvent } from '../../src/telemetry/log-events.js';

function capture(): { stream: Writable; text: () => string } {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      text += chunk.toString('utf8');
      done();
    },
  });
  return { stream, text: () => text };
}

const SECRET_FIELDS = ['auth', 'secret', 'signature', 'auth_signature', 'shared_secret', 'password', 'authorization'];
const CONTAINERS = ['data', 'frame', 'query', 'headers', 'body', 'params', 'channel_data', 'app', 'config', 'req', 'request'];

test('secret fields are redacted at the top level and inside every container a line may nest them in', () => {
  const out = capture();
  const logger = createLogger({ serviceName: 'beacon', env: 'test', nodeId: 'n', level: 'info', destination: out.stream });
  const child = logger.child({ session_id: 's-1', socket_id: '1.2', app_id: 'a' });
  let n = 0;
  const secrets: string[] = [];
  const secret = (): string => {
    const value = `s3cret-value-${n++}`;
    secrets.push(value);
    return value;
  };
  for (const field of SECRET_FIELDS) {
    logEvent(child, 'info', { event: 'subscribed', channel: 'private-a', [field]: secret() }, 'top level');
    for (const container of CONTAINERS) {
      logEvent(child, 'info', { event: 'message_rejected', reason: 'invalid_message', [container]: { [field]: secret(), kept: 'visible' } }, 'nested');
    }
  }
  logEvent(logger, 'info', { event: 'api_request', req: { headers: { authorization: secret() }, query: { auth_signature: secret() } } }, 'request');
  const text = out.text();
  const lines = text.trim().split('\n');
  assert.equal(lines.length, SECRET_FIELDS.length * (1 + CONTAINERS.length) + 1);
  for (const value of secrets) assert.ok(!text.includes(value), `${value} was written`);
  assert.equal(text.split('[redacted]').length - 1, secrets.length, 'every secret replaced by [redacted]');
  // What is not a secret stays.
  assert.equal(text.split('"kept":"visible"').length - 1, SECRET_FIELDS.length * CONTAINERS.length);
  assert.equal((JSON.parse(lines[0]!) as { channel: string }).channel, 'private-a');
});
