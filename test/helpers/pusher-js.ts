/**
 * The pusher-js Node build, typed. Its package is CommonJS whose module.exports is the Pusher class while its typings say
 * `export default`, which NodeNext resolution reads as a namespace; this module gives tests the class with its real type.
 *
 * Two majors are installed: pusher-js 8 (`pusher-js`) and 7.4 (`pusher-js-7`, what many Laravel Echo 1 apps still load).
 * Every test file gets 8; `usePusherJs(7)` before the e2e files are imported (test/e2e/pusher-js-7.test.ts) runs the same
 * tests against 7. Both expose the same API the tests use; the types are 8's.
 */
import { createRequire } from 'node:module';
import pusherJs from 'pusher-js';
import type { Options as PusherClientOptions } from 'pusher-js';
import type * as PusherModule from 'pusher-js/types/src/core/pusher.js';

export type { Options as PusherClientOptions, Channel, PresenceChannel } from 'pusher-js';
type PusherClass = typeof PusherModule.default.default;
export type PusherClient = InstanceType<PusherClass>;

/** The pusher-js majors the e2e suite runs against. */
export type PusherJsMajor = 7 | 8;

const require = createRequire(import.meta.url);
const PACKAGES: Record<PusherJsMajor, string> = { 8: 'pusher-js', 7: 'pusher-js-7' };
const versionOf = (major: PusherJsMajor): string => (require(`${PACKAGES[major]}/package.json`) as { version: string }).version;

/** The pusher-js class every helper builds clients with (a live binding: `usePusherJs` switches it). */
export let PusherClient: PusherClass = pusherJs as unknown as PusherClass;
/** Its version, for test names. */
export let pusherJsVersion: string = versionOf(8);

/** Switches the whole test process to another pusher-js major; call it before importing the test files. */
export function usePusherJs(major: PusherJsMajor): void {
  PusherClient = require(PACKAGES[major]) as PusherClass;
  pusherJsVersion = versionOf(major);
  onSwitch(PusherClient);
}

/** A client of the server on 127.0.0.1:`port` as the tests connect: plain WebSocket only, no stats; `extra` on top. */
export function localClient(port: number, key: string, extra: Partial<PusherClientOptions> = {}): PusherClient {
  return new PusherClient(key, {
    cluster: 'mt1',
    wsHost: '127.0.0.1',
    wsPort: port,
    forceTLS: false,
    enabledTransports: ['ws'],
    disableStats: true,
    ...extra,
  });
}

let onSwitch: (client: PusherClass) => void = () => {};
/** Lets a runtime patch (pusher-js-close-timer.ts) follow the switch. */
export function onPusherJsSwitch(patch: (client: PusherClass) => void): void {
  onSwitch = patch;
  patch(PusherClient);
}
