/**
 * The options of the ws server under @fastify/websocket (app.ts), from the configuration: what a frame, a message and its
 * parts may cost before ws closes the socket.
 *
 * ws holds a message's parts until it is whole, each as its own Buffer: a fragment (a view of the read it came in, which
 * it keeps alive whole), and, while a frame's payload is still arriving, every read of it. Each costs ~220 bytes of heap
 * besides its bytes, whatever its size. With ws's defaults (16 384 fragments, 262 144 buffered reads) a client that sent
 * a message one byte per fragment, or a frame one byte per TCP segment, made the server hold 17 to 220 times what it
 * sent, until its connection closed (the activity and pong timeouts: 150 s by default): 40 000 bytes trickled into a
 * frame held 8.8 MB. Both counts are now bounded by the largest frame, so what a message in progress holds stays within
 * a small multiple of that frame's bound: past either, ws closes with 1008 (counted and logged `too_large`).
 */
import type { WebsocketPluginOptions } from '@fastify/websocket';
import { CLOSE_HANDSHAKE_MS } from './connection.js';

/**
 * The largest frame the socket layer accepts at all (close 1009 past it); frames between maxPayloadBytes and this are read
 * and answered for what they carry (a client event's data over the limit: 4314), and the connection lives on.
 */
export const HARD_FRAME_LIMIT_FACTOR = 2;

/**
 * Fragments one message may come in: one per 4 KiB of the largest frame, and 16 at least. Pusher's clients (pusher-js,
 * the mobile SDKs, browsers' WebSocket) send every message whole; gorilla/websocket, the Go library, writes a message in
 * frames of its 4 KiB write buffer, so a largest message comes in about twice MAX_PAYLOAD_BYTES ÷ 4 KiB of them.
 */
export function maxMessageFragments(maxPayloadBytes: number): number {
  return Math.max(16, Math.ceil((maxPayloadBytes * HARD_FRAME_LIMIT_FACTOR) / 4096) + 1);
}

/**
 * Reads ws may buffer before a frame's payload is whole: 1 024, or one per 512 bytes of the largest frame if more. A
 * frame arrives in reads of at least a TCP segment's payload (~1.4 KB) unless its sender trickles it.
 */
export function maxBufferedReads(maxPayloadBytes: number): number {
  return Math.max(1024, Math.ceil((maxPayloadBytes * HARD_FRAME_LIMIT_FACTOR) / 512));
}

/** ws's `closeTimeout`, `maxFragments` and `maxBufferedChunks` (8.23 has them), which @types/ws (8.18) does not list yet. */
export type WsServerOptions = NonNullable<WebsocketPluginOptions['options']> & {
  closeTimeout: number;
  maxFragments: number;
  maxBufferedChunks: number;
};

export function wsServerOptions(maxPayloadBytes: number): WsServerOptions {
  return {
    maxPayload: maxPayloadBytes * HARD_FRAME_LIMIT_FACTOR,
    maxFragments: maxMessageFragments(maxPayloadBytes),
    maxBufferedChunks: maxBufferedReads(maxPayloadBytes),
    perMessageDeflate: false,
    // A WebSocket ping is answered by the route within the connection's frame budget (ws-route.ts).
    autoPong: false,
    // A close handshake, whichever side started it, holds the socket CLOSE_HANDSHAKE_MS at most, not ws's 30 s: a client
    // that sent its close frame and never ended its socket was counted against MAX_CONNECTIONS all that time.
    closeTimeout: CLOSE_HANDSHAKE_MS,
  };
}
