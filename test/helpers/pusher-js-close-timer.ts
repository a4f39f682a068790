/**
 * A pusher-js (Node build) quirk, neutralised for tests: when the server closes a connection with a 4000–4099 code
 * ("refused"), pusher-js calls `disconnect()` from inside the close event, which calls `close()` on its already-closed
 * faye-websocket socket; faye arms a 30 s close timer that nothing ever clears, so the test process lingers 30 s after its
 * last test. Browsers' native WebSocket ignores close() on a closed socket; this makes faye's socket do the same.
 * Installed when this module is first imported, and on the other pusher-js build when the suite switches to it.
 */
import { onPusherJsSwitch } from './pusher-js.js';

interface FayeSocket {
  readyState: number;
  close(code?: number, reason?: string): void;
}

interface NodeRuntime {
  createWebSocket(url: string): FayeSocket;
}

const CLOSED = 3;
const patched = new WeakSet<NodeRuntime>();
onPusherJsSwitch((client) => {
  const runtime = (client as unknown as { Runtime: NodeRuntime }).Runtime;
  if (patched.has(runtime)) return;
  patched.add(runtime);
  const createWebSocket = runtime.createWebSocket;
  runtime.createWebSocket = function (this: NodeRuntime, url: string): FayeSocket {
    const socket = createWebSocket.call(this, url);
    const close = socket.close;
    socket.close = function (this: FayeSocket, code?: number, reason?: string) {
      if (socket.readyState === CLOSED) return;
      close.call(this, code, reason);
    };
    return socket;
  };
});
