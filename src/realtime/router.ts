/**
 * One client text frame → its handler. Size, decode, dispatch, and the per-frame telemetry (received counters, processing
 * time, `process` spans for the frames worth tracing) all happen here, once.
 */
import { context } from '@opentelemetry/api';
import { decodeClientFrame } from '../protocol/decode.js';
import { NAME_CHAR_BYTES } from '../protocol/channel-name.js';
import { HARD_FRAME_LIMIT_FACTOR } from '../transport/ws-options.js';
import { Errors } from '../protocol/errors.js';
import { scanFrame, type FrameScan } from '../protocol/frame-scan.js';
import { PONG_FRAME } from '../protocol/encode.js';
import { Events } from '../protocol/events.js';
import type { ClientMessage } from '../protocol/messages.js';
import type { Connection } from '../transport/connection.js';
import type { ReceivedKind } from '../protocol/frame-kinds.js';
import { startProcessSpan, withSpan } from '../telemetry/tracing.js';
import { clientEvent } from './client-events.js';
import type { RealtimeDeps } from './deps.js';
import { signin } from './signin.js';
import { malformedSubscribe, refuseSubscription, subscribe, unsubscribe } from './subscribe.js';

const KIND: Record<ClientMessage['event'], ReceivedKind> = {
  'pusher:subscribe': 'subscribe',
  'pusher:unsubscribe': 'unsubscribe',
  'pusher:ping': 'ping',
  'pusher:pong': 'pong',
  'pusher:signin': 'signin',
  client_event: 'client_event',
};

/** Span names use the bounded kind, never the client-chosen event name. */
const TRACED: Partial<Record<ReceivedKind, string>> = {
  subscribe: 'subscribe',
  signin: 'signin',
  client_event: 'client_event',
};

export interface Router {
  /** Handles one text frame of `bytes` bytes, already counted by `connection.frameReceived`. Never throws. */
  handle(connection: Connection, text: string, bytes: number): void;
}

/** JSON punctuation and member names of a frame's envelope (`{"event":…,"channel":…,"data":…}`), beyond the names. */
const ENVELOPE_BYTES = 64;

export function createRouter(deps: RealtimeDeps): Router {
  const { metrics, limits } = deps;
  // A frame may carry data up to the socket layer's own bound (HARD_FRAME_LIMIT_FACTOR × MAX_PAYLOAD_BYTES) plus its
  // envelope, so that a client event whose data is over the limit is parsed far enough to be answered on its channel with
  // its own code (4314) instead of an anonymous refusal — and one within it is not refused for how the frame writes it: a
  // data string counts as its value, longer escaped in the frame (`\"`: the Android client sends its JSON as a string;
  // JSON text of 9 000 bytes with 4 000 quotes is 13 000 in the frame). The event name's limit is in characters, each up
  // to NAME_CHAR_BYTES in the frame (a review: at one byte each, a client event with a 157-emoji name — within the 200 —
  // and 1000 bytes of data under a 1024 limit was refused as an anonymous too_large).
  const maxFrameBytes =
    limits.maxPayloadBytes * HARD_FRAME_LIMIT_FACTOR + limits.maxEventNameLength * NAME_CHAR_BYTES + limits.maxChannelNameLength + ENVELOPE_BYTES;
  return {
    handle(connection, text, bytes) {
      const started = performance.now();
      if (bytes > maxFrameBytes) {
        connection.reject({
          reason: 'too_large',
          message: Errors.FRAME_TOO_LARGE.format(maxFrameBytes),
          code: Errors.FRAME_TOO_LARGE.code,
          frameBytes: bytes,
        });
        return;
      }
      // One linear pass before any JSON work: deep nesting is refused at the depth where it goes too far.
      const scan = scanFrame(text, limits.maxJsonDepth);
      if (!scan.depthOk) {
        connection.reject({
          reason: 'too_deep',
          message: Errors.FRAME_TOO_DEEP.format(limits.maxJsonDepth),
          code: Errors.FRAME_TOO_DEEP.code,
          frameBytes: bytes,
        });
        return;
      }
      const decoded = decodeClientFrame(text);
      if (!decoded.ok) {
        if (decoded.subscribeChannel === undefined) {
          connection.reject({ reason: decoded.reason, message: decoded.message, code: decoded.error.code, frameBytes: bytes });
        } else {
          // The client waits on that channel: it hears the refusal there, as for any other refused subscribe.
          metrics.messageReceived(connection.app.id, 'invalid', bytes);
          refuseSubscription(deps, connection, decoded.subscribeChannel, {
            ...malformedSubscribe(decoded.error),
            errorReason: decoded.reason,
          });
        }
        return;
      }
      const { message, traceparent } = decoded.value;
      const kind = KIND[message.event];
      const spanName = TRACED[kind];
      if (spanName === undefined) {
        connection.frameDecoded(kind, bytes);
        dispatch(deps, connection, message, text, scan);
        metrics.messageProcessed(kind, (performance.now() - started) / 1000);
        return;
      }
      const span = startProcessSpan(spanName, connection.app.id, connection.sessionId, connection.upgradeSpan, traceparent);
      const done = () => {
        metrics.messageProcessed(kind, (performance.now() - started) / 1000);
        span.end();
      };
      try {
        const result = withSpan(span, () => {
          // Inside the frame's span: its debug line carries the trace id.
          connection.frameDecoded(kind, bytes);
          return dispatch(deps, connection, message, text, scan);
        });
        if (result === undefined) done();
        else
          result.then(done, (err: unknown) => {
            metrics.messageProcessed(kind, (performance.now() - started) / 1000);
            connection.handlerFailed(err, span);
          });
      } catch (err) {
        connection.handlerFailed(err, span);
      }
    },
  };
}

/** A client event's data as the client wrote it: a string as is, anything else the raw JSON text (never re-serialized). */
function rawData(data: unknown, text: string, scan: FrameScan): string {
  if (typeof data === 'string') return data;
  return scan.dataStart < 0 ? 'null' : text.slice(scan.dataStart, scan.dataEnd);
}

function dispatch(
  deps: RealtimeDeps,
  connection: Connection,
  message: ClientMessage,
  text: string,
  scan: FrameScan,
): Promise<void> | undefined {
  switch (message.event) {
    case Events.Ping:
      connection.send(PONG_FRAME, 'protocol');
      return undefined;
    case Events.Pong:
      connection.pongReceived(performance.now());
      return undefined;
    case Events.Subscribe:
      return subscribe(deps, connection, message);
    case Events.Unsubscribe:
      unsubscribe(deps, connection, message);
      return undefined;
    case Events.Signin:
      return signin(deps, connection, message);
    case 'client_event':
      // Inside the frame's `process` span: the publish span becomes its child.
      clientEvent(deps, connection, message, rawData(message.data, text, scan), context.active());
      return undefined;
  }
}
