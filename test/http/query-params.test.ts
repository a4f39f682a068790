/**
 * Query parameters of the HTTP API (src/http/api.ts): a parameter named more than once is refused with the registry's
 * API_INVALID_REQUEST (400) before its signature is checked, on every route and for the `auth_*` parameters too. fastify
 * hands a repeated name to a route as an array, which crashed `GET /channels` (500 and an `error` line per request) or was
 * silently ignored; and the signed string has one value per name, so the other values were never signed.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { apiSignString, bodyMd5, sign } from '../../src/protocol/signatures.js';
import { logLines } from '../helpers/logs.js';
import { RawClient } from '../helpers/raw-client.js';
import { APP, startServer, type TestServer } from '../helpers/server.js';
import { signedQuery } from '../helpers/signed-fetch.js';
import { until } from '../helpers/wait.js';

const API = `/apps/${APP.id}`;

/**
 * Sends `pairs` in order, then the auth parameters, signed as a backend whose signing keeps the last value of each name
 * would sign them: the signature is right for that reading, so only the repetition can be refused. An `auth_*` name in
 * `pairs` comes before the real one. Names are sent as given (percent-encoded or not), values encoded.
 */
async function send(
  server: TestServer,
  method: 'GET' | 'POST',
  path: string,
  pairs: Array<[string, string]>,
  body?: string,
): Promise<{ status: number; body: unknown }> {
  const auth: Array<[string, string]> = [
    ['auth_key', APP.key],
    ['auth_timestamp', String(Math.floor(Date.now() / 1000))],
    ['auth_version', '1.0'],
  ];
  if (body !== undefined) auth.push(['body_md5', bodyMd5(body)]);
  const signed = [...pairs, ...auth].map(([k, v]) => [decodeURIComponent(k), v]);
  const signature = sign(APP.secret, apiSignString(method, path, Object.fromEntries(signed)));
  const query = [...pairs, ...auth, ['auth_signature', signature]].map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&');
  const res = await fetch(`http://127.0.0.1:${server.port}${path}?${query}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body,
    signal: AbortSignal.timeout(3000),
  });
  return { status: res.status, body: await res.json() };
}

test('a query parameter given twice is refused with 400 on every route, never answered 500 nor logged as an error', async () => {
  const server = await startServer();
  try {
    const publish = JSON.stringify({ name: 'ev', channel: 'c', data: '{}' });
    const cases: Array<[string, 'GET' | 'POST', string, Array<[string, string]>, string?]> = [
      [
        'filter_by_prefix twice',
        'GET',
        `${API}/channels`,
        [['filter_by_prefix', 'presence-'], ['info', 'user_count'], ['filter_by_prefix', 'presence-']],
      ],
      ['info twice on /channels', 'GET', `${API}/channels`, [['info', 'user_count'], ['info', 'user_count']]],
      [
        'info twice on /channels/{name}',
        'GET',
        `${API}/channels/presence-q`,
        [['info', 'user_count'], ['info', 'subscription_count']],
      ],
      ['a parameter twice on /users', 'GET', `${API}/channels/presence-q/users`, [['x', '1'], ['x', '2']]],
      ['a parameter twice on /events', 'POST', `${API}/events`, [['x', '1'], ['x', '2']], publish],
      ['auth_key twice (the last one right)', 'GET', `${API}/channels`, [['auth_key', 'someone-else']]],
      ['auth_signature twice (the last one right)', 'GET', `${API}/channels`, [['auth_signature', '0'.repeat(64)]]],
      ['the same name, once percent-encoded', 'GET', `${API}/channels`, [['%69nfo', 'x'], ['info', 'user_count']]],
      // The signed string lower-cases names: `INFO` and `info` are one name given twice.
      ['the same name in another case', 'GET', `${API}/channels`, [['INFO', 'user_count'], ['info', 'user_count']]],
    ];
    const answers: Record<string, unknown> = {};
    for (const [name, method, path, pairs, body] of cases) answers[name] = await send(server, method, path, pairs, body);
    const refused = { status: 400, body: { error: 'Invalid request' } };
    assert.deepEqual(answers, Object.fromEntries(cases.map(([name]) => [name, refused])));
    // Counted and logged as any refused request: one access line each, at info (written once the answer is sent), and
    // nothing of it at `error`.
    const refusals = () => logLines(server, { event: 'api_request', status_code: 400, level: 'info' }).length;
    await until(() => refusals() === cases.length, `${cases.length} api_request lines with status 400`);
    assert.deepEqual(logLines(server, { level: 'error' }), []);
    // The same requests with each name once are served.
    const once = await send(server, 'GET', `${API}/channels`, [['filter_by_prefix', 'presence-'], ['info', 'user_count']]);
    assert.deepEqual(once, { status: 200, body: { channels: {} } });
    assert.equal((await send(server, 'POST', `${API}/events`, [['x', '1']], publish)).status, 200);
  } finally {
    await server.close();
  }
});

test('the routes read only what the signature covers: nothing after a second "?", names as signed (lower case)', async () => {
  // A probe: the signature was checked over the query up to a second `?` while the routes read all of it, so a signed
  // GET /channels sent again with `?&filter_by_prefix=…&info=user_count` appended was answered with what it never signed;
  // and a signed `filter_by_prefix` sent again as `FILTER_BY_PREFIX` passed the signature (names are signed lower-cased)
  // while the route, reading `filter_by_prefix`, listed every channel.
  const server = await startServer();
  const { client } = await RawClient.established(server.port);
  const get = async (query: string) => {
    const res = await fetch(`http://127.0.0.1:${server.port}${API}/channels?${query}`, { signal: AbortSignal.timeout(3000) });
    return { status: res.status, body: (await res.json()) as unknown };
  };
  try {
    for (const channel of ['pub-a', 'news']) {
      client.send({ event: 'pusher:subscribe', data: { channel } });
      await client.next((f) => f.event === 'pusher_internal:subscription_succeeded' && f.channel === channel);
    }
    const all = signedQuery('GET', `${API}/channels`);
    assert.deepEqual(await get(all), { status: 200, body: { channels: { 'pub-a': {}, news: {} } } });
    const smuggled = await get(`${all}?&filter_by_prefix=pub-&info=user_count`);
    assert.equal(smuggled.status, 401, JSON.stringify(smuggled));

    const filtered = signedQuery('GET', `${API}/channels`, { params: { filter_by_prefix: 'pub-' } });
    assert.deepEqual(await get(filtered), { status: 200, body: { channels: { 'pub-a': {} } } });
    const renamed = filtered.replace('filter_by_prefix=', 'FILTER_BY_PREFIX=');
    assert.notEqual(renamed, filtered);
    assert.deepEqual(await get(renamed), { status: 200, body: { channels: { 'pub-a': {} } } });
  } finally {
    await client.close();
    await server.close();
  }
});
