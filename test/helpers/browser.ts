/**
 * Browser-test helpers: headless Debian Chromium driven by playwright-core, and a tiny loopback page server that serves a page
 * running the pusher-js *browser* build (dist/web/pusher.min.js) against a Beacon, plus the `/pusher/auth` endpoint a real
 * backend would have (signed with the `pusher` SDK).
 */
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser, type Page } from 'playwright-core';
import type Pusher from 'pusher';

export const CHROMIUM_PATH = '/usr/bin/chromium';

/** Launches headless Chromium with the flags this machine needs (Playwright gives every launch a fresh user-data-dir). */
export async function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    timeout: 30_000,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** What the page keeps in `window.beacon`, readable from the test with `page.evaluate`. */
export interface PageState {
  state: string;
  socketId: string | null;
  subscribed: string[];
  errors: { channel: string; error: unknown }[];
  events: { channel: string; event: string; data: unknown }[];
  /** Every non-protocol frame pusher-js decoded, as on the wire (channel events and client events, with `user_id`). */
  frames: { event: string; channel?: string; data?: unknown; user_id?: string }[];
  members: Record<string, Record<string, unknown>>;
  memberEvents: { channel: string; kind: 'added' | 'removed'; id: string }[];
}

/** The page's API, as seen by functions passed to `page.evaluate` (they run in the page, where `window === globalThis`). */
export interface PageApi {
  beacon: PageState;
  beaconSubscribe(channel: string): void;
  beaconTrigger(channel: string, event: string, data: unknown): boolean;
}

export interface PageServer {
  url(user?: string): string;
  /** Auth requests the server answered: channel, socket id and HTTP status. */
  authRequests: { channel: string; socketId: string; status: number }[];
  close(): Promise<void>;
}

const requireFromHere = createRequire(import.meta.url);

/** Runs in the page (serialised into the HTML); renders everything it records so a screenshot shows the same facts. */
function pageScript(options: { key: string; wsPort: number; user: string }): void {
  type Ctor = new (key: string, options: Record<string, unknown>) => {
    connection: { state: string; socket_id: string; bind(event: string, cb: (arg: unknown) => void): void };
    subscribe(name: string): {
      bind(event: string, cb: (data: unknown, meta?: { user_id?: string }) => void): void;
      bind_global(cb: (event: string, data: unknown) => void): void;
      trigger(event: string, data: unknown): boolean;
    };
    channel(name: string): { trigger(event: string, data: unknown): boolean } | undefined;
  };
  interface DomElement {
    textContent: string | null;
  }
  const g = globalThis as unknown as {
    Pusher: Ctor;
    document: { getElementById(id: string): DomElement | null };
  } & PageApi;
  const state: PageState = {
    state: 'initialized',
    socketId: null,
    subscribed: [],
    errors: [],
    events: [],
    frames: [],
    members: {},
    memberEvents: [],
  };
  g.beacon = state;
  const render = (): void => {
    const set = (id: string, text: string): void => {
      const el = g.document.getElementById(id);
      if (el !== null) el.textContent = text;
    };
    set('state', state.state);
    set('socket', state.socketId ?? '-');
    set('subscribed', state.subscribed.join(', ') || '-');
    set('events', state.events.map((e) => `${e.channel}  ${e.event}  ${JSON.stringify(e.data)}`).join('\n') || '-');
    set(
      'members',
      Object.entries(state.members)
        .map(([channel, m]) => `${channel}: ${Object.keys(m).sort().join(', ')}`)
        .join('\n') || '-',
    );
    set('errors', state.errors.map((e) => `${e.channel}: ${JSON.stringify(e.error)}`).join('\n') || '-');
  };
  const pusher = new g.Pusher(options.key, {
    cluster: 'mt1',
    wsHost: '127.0.0.1',
    wsPort: options.wsPort,
    forceTLS: false,
    enabledTransports: ['ws'],
    disableStats: true,
    channelAuthorization: { endpoint: '/pusher/auth', transport: 'ajax', params: { user: options.user } },
  });
  pusher.connection.bind('state_change', (change) => {
    state.state = (change as { current: string }).current;
    state.socketId = pusher.connection.socket_id ?? null;
    render();
  });
  pusher.connection.bind('message', (frame) => {
    const f = frame as PageState['frames'][number];
    if (!f.event.startsWith('pusher:') && !f.event.startsWith('pusher_internal:')) state.frames.push(f);
  });
  g.beaconSubscribe = (name) => {
    const channel = pusher.subscribe(name);
    channel.bind('pusher:subscription_succeeded', (data) => {
      state.subscribed.push(name);
      if (name.startsWith('presence-')) {
        const members = (data as { members: Record<string, Record<string, unknown>> }).members;
        state.members[name] = { ...members };
      }
      render();
    });
    channel.bind('pusher:subscription_error', (error) => {
      state.errors.push({ channel: name, error });
      render();
    });
    channel.bind('pusher:member_added', (member) => {
      const m = member as { id: string; info: Record<string, unknown> };
      (state.members[name] ??= {})[m.id] = m.info;
      state.memberEvents.push({ channel: name, kind: 'added', id: m.id });
      render();
    });
    channel.bind('pusher:member_removed', (member) => {
      const m = member as { id: string };
      delete state.members[name]?.[m.id];
      state.memberEvents.push({ channel: name, kind: 'removed', id: m.id });
      render();
    });
    channel.bind_global((event, data) => {
      if (event.startsWith('pusher:') || event.startsWith('pusher_internal:')) return;
      state.events.push({ channel: name, event, data });
      render();
    });
  };
  g.beaconTrigger = (name, event, data) => pusher.channel(name)?.trigger(event, data) ?? false;
  render();
}

function page(options: { key: string; wsPort: number; user: string }): string {
  const esc = (s: string): string => s.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>Beacon browser test — ${esc(options.user)}</title>
<style>
  body { font: 14px/1.4 sans-serif; margin: 16px; }
  dt { font-weight: bold; margin-top: 8px; }
  pre { margin: 2px 0; background: #f3f3f3; padding: 4px; white-space: pre-wrap; }
</style>
<script>var __name = (f) => f; /* tsx (esbuild keepNames) may wrap nested functions in __name() */</script>
<script src="/pusher.min.js"></script></head>
<body>
<h1>Beacon · pusher-js browser build · user ${esc(options.user)}</h1>
<dl>
  <dt>Connection state</dt><dd><pre id="state"></pre></dd>
  <dt>Socket id</dt><dd><pre id="socket"></pre></dd>
  <dt>Subscribed channels</dt><dd><pre id="subscribed"></pre></dd>
  <dt>Events received</dt><dd><pre id="events"></pre></dd>
  <dt>Presence members</dt><dd><pre id="members"></pre></dd>
  <dt>Subscription errors</dt><dd><pre id="errors"></pre></dd>
</dl>
<script>(${pageScript.toString()})(${JSON.stringify(options)});</script>
</body></html>`;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > 64 * 1024) throw new Error('body too large');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Serves the test page, the pusher-js browser build and `/pusher/auth` on 127.0.0.1 (free port). The auth endpoint acts as
 * the app's backend: the `user` param is the logged-in user; channels named `private-forbidden-*` are refused with 403.
 */
export async function startPageServer(opts: { key: string; wsPort: number; sdk: Pusher }): Promise<PageServer> {
  const pusherJs = await readFile(requireFromHere.resolve('pusher-js/dist/web/pusher.min.js'));
  const authRequests: PageServer['authRequests'] = [];

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (req.method === 'GET' && url.pathname === '/') {
      const user = url.searchParams.get('user') ?? 'anonymous';
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(page({ key: opts.key, wsPort: opts.wsPort, user }));
    } else if (req.method === 'GET' && url.pathname === '/pusher.min.js') {
      res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' }).end(pusherJs);
    } else if (url.pathname === '/favicon.ico') {
      res.writeHead(204).end();
    } else if (req.method === 'POST' && url.pathname === '/pusher/auth') {
      const form = new URLSearchParams(await readBody(req));
      const socketId = form.get('socket_id') ?? '';
      const channel = form.get('channel_name') ?? '';
      const user = form.get('user') ?? 'anonymous';
      if (channel.startsWith('private-forbidden-')) {
        authRequests.push({ channel, socketId, status: 403 });
        res.writeHead(403, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'forbidden' }));
        return;
      }
      const auth = channel.startsWith('presence-')
        ? opts.sdk.authorizeChannel(socketId, channel, { user_id: user, user_info: { name: user.toUpperCase() } })
        : opts.sdk.authorizeChannel(socketId, channel);
      authRequests.push({ channel, socketId, status: 200 });
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(auth));
    } else {
      res.writeHead(404).end();
    }
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500);
      res.end(String(err));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    authRequests,
    url: (user = 'anonymous') => `http://127.0.0.1:${port}/?user=${encodeURIComponent(user)}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const uncaught = new WeakMap<Page, string[]>();

/** Uncaught errors and console errors the page has reported so far. */
export function pageErrors(p: Page): string[] {
  return uncaught.get(p) ?? [];
}

/** Opens the test page as `user` (in a fresh browser context) and waits until pusher-js reports `connected`. */
export async function openBeaconPage(browser: Browser, pages: PageServer, user: string): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 900, height: 700 } });
  const p = await context.newPage();
  const errors: string[] = [];
  uncaught.set(p, errors);
  p.on('pageerror', (err) => errors.push(`pageerror: ${err.message}`));
  p.on('console', (msg) => {
    if (msg.type() === 'error') errors.push(`console.error: ${msg.text()}`);
  });
  await p.goto(pages.url(user), { timeout: 15_000 });
  await waitForPage(p, (api) => api.beacon.state === 'connected');
  return p;
}

/** Waits (bounded) until `predicate(window)` is true in the page; on timeout the error carries the page's state. */
export async function waitForPage<A>(
  p: Page,
  predicate: (api: PageApi, arg: A) => boolean,
  arg?: A,
  timeout = 10_000,
): Promise<void> {
  const source = `(${predicate.toString()})(globalThis, ${JSON.stringify(arg ?? null)})`;
  try {
    await p.waitForFunction(source, undefined, { timeout, polling: 50 });
  } catch (err) {
    const state = await p.evaluate(() => (globalThis as unknown as PageApi).beacon).catch(() => null);
    throw new Error(`page condition not met within ${timeout} ms: ${predicate.toString()}\npage state: ${JSON.stringify(state)}`, {
      cause: err,
    });
  }
}

/** The page's recorded state. */
export function pageState(p: Page): Promise<PageState> {
  return p.evaluate(() => (globalThis as unknown as PageApi).beacon);
}
