/**
 * Fan-out alone: the publisher is one more WebSocket client in the channel and every message is relayed by the server to
 * all the other subscribers (never echoed to the sender). Beacon: a `client-bench` client event on `private-bench`
 * (client events need a private channel; the per-connection client-event limit is lifted for the run); bare ws: a frame
 * the server broadcasts; Socket.IO: `socket.to(room).emit`.
 */
import { connectBeacon, connectSocketIo, connectWs, type Payload } from './clients.js';
import type { Publisher, Scenario } from './scenario.js';
import { protocolOf, type TargetId } from './targets.js';

const CHANNEL = 'private-bench';
const BEACON_EVENT = 'client-bench';
const EVENT = 'bench';

async function connectPublisher(target: TargetId, port: number): Promise<Publisher> {
  switch (protocolOf(target)) {
    case 'beacon': {
      const ws = await connectBeacon(port, CHANNEL, BEACON_EVENT, undefined);
      return {
        publish: (payload: Payload) => ws.send(JSON.stringify({ event: BEACON_EVENT, channel: CHANNEL, data: payload })),
        close: () => ws.terminate(),
      };
    }
    case 'ws': {
      const ws = await connectWs(port, EVENT, undefined);
      return { publish: (payload: Payload) => ws.send(JSON.stringify({ event: EVENT, data: payload })), close: () => ws.terminate() };
    }
    case 'socketio': {
      const socket = await connectSocketIo(port, EVENT, undefined);
      return { publish: (payload: Payload) => void socket.emit('publish', { event: EVENT, data: payload }), close: () => socket.disconnect() };
    }
  }
}

export const clientEvent: Scenario = {
  id: 'client-event',
  title: 'Client event relay',
  description:
    'client-event: the publisher is a WebSocket client in the channel and the server relays each message to the other subscribers — Beacon a `client-bench` client event on `private-bench`, bare ws a broadcast frame, Socket.IO `socket.to(room).emit` — the fan-out without an HTTP request.',
  subscription: { beaconChannel: CHANNEL, beaconEvent: BEACON_EVENT, event: EVENT },
  connectPublisher,
};
