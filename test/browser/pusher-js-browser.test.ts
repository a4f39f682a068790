/**
 * The browser path: the pusher-js browser build (dist/web/pusher.min.js) running in headless Chromium, against an in-process
 * Beacon. Events are triggered with the `pusher` SDK; the page records what it receives in `window.beacon` and renders it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import {
  launchChromium,
  openBeaconPage,
  pageErrors,
  pageState,
  startPageServer,
  waitForPage,
  type PageApi,
  type PageServer,
} from '../helpers/browser.js';
import { APP, startServer, type TestServer } from '../helpers/server.js';

const SCREENSHOT = '/tmp/beacon-pusher-js-browser.png';

describe('pusher-js browser build in headless Chromium', () => {
  let browser: Browser;
  let server: TestServer;
  let pages: PageServer;

  before(async () => {
    server = await startServer({ APP_ENABLE_CLIENT_EVENTS: 'true' });
    pages = await startPageServer({ key: APP.key, wsPort: server.port, sdk: server.sdk() });
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await pages?.close();
    await server?.close();
  });

  test('a page receives SDK-triggered events on a public and a private channel', async () => {
    const page = await openBeaconPage(browser, pages, 'alice');
    try {
      const socketId = (await pageState(page)).socketId;
      assert.match(socketId ?? '', /^\d+\.\d+$/);

      await page.evaluate(() => {
        const api = globalThis as unknown as PageApi;
        api.beaconSubscribe('orders');
        api.beaconSubscribe('private-inbox-alice');
        api.beaconSubscribe('private-forbidden-admin');
      });
      await waitForPage(page, (api) => api.beacon.subscribed.length === 2 && api.beacon.errors.length === 1);
      const subscribed = await pageState(page);
      assert.deepEqual([...subscribed.subscribed].sort(), ['orders', 'private-inbox-alice']);
      // The private channel was authorised through the page's own /pusher/auth endpoint, for this very socket.
      assert.deepEqual(
        pages.authRequests.filter((r) => r.socketId === socketId).map((r) => [r.channel, r.status]).sort(),
        [
          ['private-forbidden-admin', 403],
          ['private-inbox-alice', 200],
        ],
      );
      assert.equal(subscribed.errors[0]?.channel, 'private-forbidden-admin');
      assert.equal((subscribed.errors[0]?.error as { status?: number }).status, 403);

      const sdk = server.sdk();
      assert.equal((await sdk.trigger('orders', 'order-shipped', { id: 42, item: 'lamp' })).status, 200);
      assert.equal((await sdk.trigger('private-inbox-alice', 'message', { text: 'héllo ☃' })).status, 200);
      // An event on a channel the page never subscribed to must not arrive.
      assert.equal((await sdk.trigger('elsewhere', 'order-shipped', { id: 0 })).status, 200);
      await waitForPage(page, (api) => api.beacon.events.length >= 2);
      // A later event proves the 'elsewhere' one, triggered before it, was not delivered (order is kept per connection).
      assert.equal((await sdk.trigger('orders', 'marker', {})).status, 200);
      await waitForPage(page, (api) => api.beacon.events.some((e) => e.event === 'marker'));

      const { events } = await pageState(page);
      assert.deepEqual(events, [
        { channel: 'orders', event: 'order-shipped', data: { id: 42, item: 'lamp' } },
        { channel: 'private-inbox-alice', event: 'message', data: { text: 'héllo ☃' } },
        { channel: 'orders', event: 'marker', data: {} },
      ]);

      // The page renders what it recorded: check the DOM, then keep a screenshot for a human look.
      assert.equal(await page.textContent('#state'), 'connected');
      assert.match((await page.textContent('#events')) ?? '', /orders {2}order-shipped {2}\{"id":42,"item":"lamp"\}/);
      assert.equal(await page.textContent('#subscribed'), 'orders, private-inbox-alice');
      await page.screenshot({ path: SCREENSHOT, fullPage: true });
      // The only error the page may log is the browser's own report of the refused /pusher/auth request.
      assert.deepEqual(
        pageErrors(page).filter((e) => !/status of 403/.test(e)),
        [],
      );
    } finally {
      await page.context().close();
    }
  });

  test('presence: two browsers see each other join and leave, and whisper with user_id', async () => {
    const contexts: Page[] = [];
    try {
      const alice = await openBeaconPage(browser, pages, 'alice');
      contexts.push(alice);
      await alice.evaluate(() => (globalThis as unknown as PageApi).beaconSubscribe('presence-room'));
      await waitForPage(alice, (api) => api.beacon.subscribed.includes('presence-room'));
      assert.deepEqual((await pageState(alice)).members['presence-room'], { alice: { name: 'ALICE' } });

      const bob = await openBeaconPage(browser, pages, 'bob');
      contexts.push(bob);
      await bob.evaluate(() => (globalThis as unknown as PageApi).beaconSubscribe('presence-room'));
      await waitForPage(bob, (api) => api.beacon.subscribed.includes('presence-room'));
      assert.deepEqual((await pageState(bob)).members['presence-room'], {
        alice: { name: 'ALICE' },
        bob: { name: 'BOB' },
      });
      await waitForPage(alice, (api) => api.beacon.memberEvents.length >= 1);
      assert.deepEqual((await pageState(alice)).memberEvents, [{ channel: 'presence-room', kind: 'added', id: 'bob' }]);
      assert.deepEqual((await pageState(alice)).members['presence-room'], {
        alice: { name: 'ALICE' },
        bob: { name: 'BOB' },
      });
      // The joiner is never told about itself.
      assert.deepEqual((await pageState(bob)).memberEvents, []);

      // A client event from the browser reaches the other member (not the sender), carrying the sender's user_id.
      const sent = await alice.evaluate(() =>
        (globalThis as unknown as PageApi).beaconTrigger('presence-room', 'client-typing', { typing: true }),
      );
      assert.equal(sent, true);
      await waitForPage(bob, (api) => api.beacon.events.some((e) => e.event === 'client-typing'));
      assert.deepEqual(
        (await pageState(bob)).events.filter((e) => e.event === 'client-typing'),
        [{ channel: 'presence-room', event: 'client-typing', data: { typing: true } }],
      );
      assert.deepEqual(
        (await pageState(bob)).frames.filter((f) => f.event === 'client-typing'),
        [{ event: 'client-typing', channel: 'presence-room', data: { typing: true }, user_id: 'alice' }],
      );
      // Bob answers; once alice has bob's reply, her own whisper would have arrived before it if it were echoed.
      await bob.evaluate(() => (globalThis as unknown as PageApi).beaconTrigger('presence-room', 'client-reply', { ok: 1 }));
      await waitForPage(alice, (api) => api.beacon.events.some((e) => e.event === 'client-reply'));
      assert.deepEqual(
        (await pageState(alice)).events.map((e) => e.event),
        ['client-reply'],
      );

      // Bob closes his browser: alice sees him leave.
      await bob.context().close();
      contexts.splice(contexts.indexOf(bob), 1);
      await waitForPage(alice, (api) => api.beacon.memberEvents.some((e) => e.kind === 'removed'), undefined, 15_000);
      const final = await pageState(alice);
      assert.deepEqual(final.memberEvents, [
        { channel: 'presence-room', kind: 'added', id: 'bob' },
        { channel: 'presence-room', kind: 'removed', id: 'bob' },
      ]);
      assert.deepEqual(final.members['presence-room'], { alice: { name: 'ALICE' } });
      assert.deepEqual(pageErrors(alice), []);
    } finally {
      for (const p of contexts) await p.context().close();
    }
  });
});
