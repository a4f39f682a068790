/**
 * The e2e tests whose subject is what pusher-js does against Beacon, run a second time on pusher-js 7.4 (what many
 * Laravel Echo 1 apps still load). The same test files, not copies: the process switches the pusher-js build every helper
 * uses, then imports them inside one suite named after the version. Files about the server alone (HTTP API, cluster,
 * flood, slow consumers, rate limits) run once, on 8.
 */
import { describe } from 'node:test';
import { pusherJsVersion, usePusherJs } from '../helpers/pusher-js.js';

usePusherJs(7);

const FILES = [
  './smoke.test.js',
  './channels.test.js',
  './presence.test.js',
  './client-events.test.js',
  './cache.test.js',
  './signin.test.js',
  './watchlist.test.js',
  './webhooks.test.js',
  './compat.test.js',
  './laravel-echo.test.js',
];

describe(`pusher-js ${pusherJsVersion}`, async () => {
  for (const file of FILES) await import(file);
});
