/**
 * The pusher-js Node build, typed. Its package is CommonJS whose module.exports is the Pusher class while its typings say
 * `export default`, which NodeNext resolution reads as a namespace; this module gives tests the class with its real type.
 */
import pusherJs from 'pusher-js';
import type * as PusherModule from 'pusher-js/types/src/core/pusher.js';

export type { Options as PusherClientOptions, Channel, PresenceChannel } from 'pusher-js';
type PusherClass = typeof PusherModule.default.default;
export type PusherClient = InstanceType<PusherClass>;
export const PusherClient = pusherJs as unknown as PusherClass;
