/**
 * Laravel Echo, unchanged, on the pusher-js Node client against an in-process Beacon: the channel helpers Laravel apps use
 * (public, private, presence, whispers, notifications) and the X-Socket-Id flow (the backend passes Echo's socket id as
 * `socket_id` so the sender is excluded from its own broadcast). Every test runs on Echo 2 and on Echo 1 (which many apps
 * still ship), each on the pusher-js the process uses (8, or 7 under test/e2e/pusher-js-7.test.ts).
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { after, before, describe, test } from 'node:test';
import Echo from 'laravel-echo';
import type Pusher from 'pusher';
import { PusherClient, pusherJsVersion } from '../helpers/pusher-js.js';
import { APP, startServer, type TestServer } from '../helpers/server.js';

const WAIT_MS = 5_000;

/**
 * The Echo majors under test. Echo 1's CommonJS build puts the class on `default`; its options and the channel API the
 * tests use are the same, so it is driven through Echo 2's types.
 */
const ECHOES: { name: string; Echo: typeof Echo }[] = [
  { name: 'Laravel Echo 2', Echo },
  { name: 'Laravel Echo 1', Echo: (createRequire(import.meta.url)('laravel-echo-1') as { default: typeof Echo }).default },
];

/**
 * Echo's typings name pusher-js's default export, which NodeNext reads as the module namespace (see helpers/pusher-js.ts);
 * at run time `PusherClient` is exactly the class Echo wants.
 */
type EchoPusherConstructor = ConstructorParameters<typeof Echo<'pusher'>>[0]['Pusher'];
type AuthCallback = (error: Error | null, data: { auth: string; channel_data?: string } | null) => void;

interface LaravelUser {
  id: number;
  name: string;
}

/** Resolves with the first value `register` hands to its callback, or rejects after `ms`. */
function nextCall<T>(label: string, register: (cb: (value: T) => void) => void, ms = WAIT_MS): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${label}`)), ms);
    register((value) => {
      clearTimeout(timer);
      resolve(value);
    });
  });
}

/** An Echo instance as a Laravel front end builds it, logged in as `user`; channel auth is signed as the backend would. */
function makeEcho(EchoClass: typeof Echo, server: TestServer, sdk: Pusher, user: LaravelUser): Echo<'pusher'> {
  return new EchoClass({
    broadcaster: 'pusher',
    key: APP.key,
    cluster: 'mt1',
    wsHost: '127.0.0.1',
    wsPort: server.port,
    forceTLS: false,
    enabledTransports: ['ws'],
    disableStats: true,
    Pusher: PusherClient as unknown as EchoPusherConstructor,
    // Echo's documented custom authorizer; the "backend" refuses channels that are not this user's.
    authorizer: (channel: { name: string }) => ({
      // Answered on a later turn, as the app's HTTP auth endpoint would be (so Echo's .error() can be bound first).
      authorize: (socketId: string, callback: AuthCallback) =>
        setImmediate(() => {
          if (channel.name.startsWith('private-user.') && channel.name !== `private-user.${user.id}`) {
            callback(new Error('forbidden'), null);
          } else if (channel.name.startsWith('presence-')) {
            callback(null, sdk.authorizeChannel(socketId, channel.name, { user_id: String(user.id), user_info: user }));
          } else {
            callback(null, sdk.authorizeChannel(socketId, channel.name));
          }
        }),
    }),
  });
}

/** Connected, read from Echo's pusher-js connection (Echo 1 has no connectionStatus()). */
function connected(echo: Echo<'pusher'>): Promise<void> {
  const connection = echo.connector.pusher.connection;
  if (connection.state === 'connected') return Promise.resolve();
  return nextCall<void>('echo to connect', (cb) => {
    const done = () => {
      connection.unbind('connected', done);
      cb();
    };
    connection.bind('connected', done);
  });
}

for (const variant of ECHOES) describe(`${variant.name} (broadcaster pusher) with the pusher-js ${pusherJsVersion} Node client`, () => {
  let server: TestServer;
  let sdk: Pusher;
  const echoes: Echo<'pusher'>[] = [];
  const echo = (user: LaravelUser): Echo<'pusher'> => {
    const e = makeEcho(variant.Echo, server, sdk, user);
    echoes.push(e);
    return e;
  };

  before(async () => {
    server = await startServer({ APP_ENABLE_CLIENT_EVENTS: 'true' });
    sdk = server.sdk();
  });
  after(async () => {
    for (const e of echoes) e.disconnect();
    await server?.close();
  });

  test('public channel: .listen with a leading dot and with the App.Events namespace', async () => {
    const taylor = echo({ id: 1, name: 'Taylor' });
    await connected(taylor);
    assert.match(taylor.socketId() ?? '', /^\d+\.\d+$/);

    const orders = taylor.channel('orders');
    await nextCall<void>('orders subscribed', (cb) => orders.subscribed(() => cb()));
    const shipped = nextCall<unknown>('.OrderShipped', (cb) => orders.listen('.OrderShipped', cb));
    const namespaced = nextCall<unknown>('OrderPaid', (cb) => orders.listen('OrderPaid', cb));

    assert.equal((await sdk.trigger('orders', 'OrderShipped', { order: { id: 7 } })).status, 200);
    assert.deepEqual(await shipped, { order: { id: 7 } });
    // Laravel names broadcast events by class: App\Events\OrderPaid; Echo maps 'OrderPaid' to that.
    assert.equal((await sdk.trigger('orders', 'App\\Events\\OrderPaid', { order: { id: 8 } })).status, 200);
    assert.deepEqual(await namespaced, { order: { id: 8 } });
  });

  test('private channel: Echo.private prefixes private-, authorises, receives events and notifications', async () => {
    const taylor = echo({ id: 1, name: 'Taylor' });
    await connected(taylor);
    const mine = taylor.private('user.1');
    await nextCall<void>('private-user.1 subscribed', (cb) => mine.subscribed(() => cb()));
    assert.ok(taylor.connector.pusher.channel('private-user.1')?.subscribed, 'pusher-js sees private-user.1 subscribed');

    const refused = taylor.private('user.2');
    const error = await nextCall<unknown>('private-user.2 error', (cb) => refused.error(cb));
    assert.ok(error !== undefined);
    assert.equal(taylor.connector.pusher.channel('private-user.2')?.subscribed, false);

    const message = nextCall<unknown>('.MessageSent', (cb) => mine.listen('.MessageSent', cb));
    const notification = nextCall<unknown>('notification', (cb) => mine.notification(cb));
    await sdk.trigger('private-user.1', 'MessageSent', { body: 'hi' });
    assert.deepEqual(await message, { body: 'hi' });
    const note = { id: 'b0e3', type: 'App\\Notifications\\InvoicePaid', amount: 12.5 };
    await sdk.trigger('private-user.1', 'Illuminate\\Notifications\\Events\\BroadcastNotificationCreated', note);
    assert.deepEqual(await notification, note);
  });

  test('presence channel: here, joining, leaving', async () => {
    const taylor = echo({ id: 1, name: 'Taylor' });
    const abigail = echo({ id: 2, name: 'Abigail' });
    await Promise.all([connected(taylor), connected(abigail)]);

    const taylorChat = taylor.join('chat');
    const taylorHere = await nextCall<LaravelUser[]>('taylor here', (cb) => taylorChat.here(cb));
    assert.deepEqual(taylorHere, [{ id: 1, name: 'Taylor' }]);
    const joined = nextCall<LaravelUser>('taylor sees joining', (cb) => taylorChat.joining(cb));

    const abigailChat = abigail.join('chat');
    const abigailHere = await nextCall<LaravelUser[]>('abigail here', (cb) => abigailChat.here(cb));
    assert.deepEqual(
      [...abigailHere].sort((a, b) => a.id - b.id),
      [
        { id: 1, name: 'Taylor' },
        { id: 2, name: 'Abigail' },
      ],
    );
    assert.deepEqual(await joined, { id: 2, name: 'Abigail' });

    const left = nextCall<LaravelUser>('taylor sees leaving', (cb) => taylorChat.leaving(cb));
    abigail.leave('chat');
    assert.deepEqual(await left, { id: 2, name: 'Abigail' });
    assert.deepEqual(Object.keys(taylor.connector.pusher.channel('presence-chat')?.members.members ?? {}), ['1']);
  });

  test('whispers: listenForWhisper / whisper on private and presence channels, never echoed to the sender', async () => {
    const taylor = echo({ id: 1, name: 'Taylor' });
    const abigail = echo({ id: 2, name: 'Abigail' });
    await Promise.all([connected(taylor), connected(abigail)]);

    const tChat = taylor.join('room');
    const aChat = abigail.join('room');
    await Promise.all([
      nextCall<void>('taylor in room', (cb) => tChat.subscribed(() => cb())),
      nextCall<void>('abigail in room', (cb) => aChat.subscribed(() => cb())),
    ]);
    const ownTyping: unknown[] = [];
    tChat.listenForWhisper('typing', (d: unknown) => ownTyping.push(d));
    const typing = nextCall<unknown>('abigail hears typing', (cb) => aChat.listenForWhisper('typing', cb));
    tChat.whisper('typing', { name: 'Taylor' });
    assert.deepEqual(await typing, { name: 'Taylor' });
    // Abigail replies; Taylor receives the reply after anything echoed of her own whisper would have come.
    const reply = nextCall<unknown>('taylor hears reply', (cb) => tChat.listenForWhisper('reply', cb));
    aChat.whisper('reply', { ok: true });
    assert.deepEqual(await reply, { ok: true });
    assert.deepEqual(ownTyping, []);

    // On a private channel too (both users may join the same conversation channel).
    const tConv = taylor.private('conversation.9');
    const aConv = abigail.private('conversation.9');
    await Promise.all([
      nextCall<void>('taylor in conversation', (cb) => tConv.subscribed(() => cb())),
      nextCall<void>('abigail in conversation', (cb) => aConv.subscribed(() => cb())),
    ]);
    const seen = nextCall<unknown>('abigail hears private whisper', (cb) => aConv.listenForWhisper('seen', cb));
    tConv.whisper('seen', { at: 123 });
    assert.deepEqual(await seen, { at: 123 });
  });

  test('X-Socket-Id: a broadcast with the sender socket_id reaches everyone but the sender', async () => {
    const taylor = echo({ id: 1, name: 'Taylor' });
    const abigail = echo({ id: 2, name: 'Abigail' });
    await Promise.all([connected(taylor), connected(abigail)]);

    const tRoom = taylor.private('project.5');
    const aRoom = abigail.private('project.5');
    await Promise.all([
      nextCall<void>('taylor subscribed', (cb) => tRoom.subscribed(() => cb())),
      nextCall<void>('abigail subscribed', (cb) => aRoom.subscribed(() => cb())),
    ]);
    const taylorGot: unknown[] = [];
    tRoom.listen('.TaskCreated', (d: unknown) => taylorGot.push(d));
    const abigailGot = nextCall<unknown>('abigail TaskCreated', (cb) => aRoom.listen('.TaskCreated', cb));

    // What Laravel's broadcast(...)->toOthers() does with the X-Socket-Id header Echo adds to the app's requests.
    const socketId = taylor.socketId();
    assert.ok(socketId !== undefined);
    const res = await sdk.trigger('private-project.5', 'TaskCreated', { task: 'write tests' }, { socket_id: socketId });
    assert.equal(res.status, 200);
    assert.deepEqual(await abigailGot, { task: 'write tests' });

    // A later broadcast without socket_id reaches Taylor; the excluded one, sent first on the same channel, never did.
    const marker = nextCall<unknown>('taylor marker', (cb) => tRoom.listen('.Marker', cb));
    await sdk.trigger('private-project.5', 'Marker', { n: 1 });
    assert.deepEqual(await marker, { n: 1 });
    assert.deepEqual(taylorGot, []);

    // The same flow through /batch_events.
    const abigailBatch = nextCall<unknown>('abigail batch', (cb) => aRoom.listen('.Batched', cb));
    const taylorBatch: unknown[] = [];
    tRoom.listen('.Batched', (d: unknown) => taylorBatch.push(d));
    await sdk.triggerBatch([
      { channel: 'private-project.5', name: 'Batched', data: { i: 1 }, socket_id: socketId },
    ]);
    assert.deepEqual(await abigailBatch, { i: 1 });
    const marker2 = nextCall<unknown>('taylor marker 2', (cb) => tRoom.listen('.Marker2', cb));
    await sdk.trigger('private-project.5', 'Marker2', {});
    await marker2;
    assert.deepEqual(taylorBatch, []);
  });
});
