/**
 * Accepts events (from the HTTP API or a client) and hands them to the adapter, one envelope per channel, inside a
 * `publish <channel_type>` span whose context the envelope carries to every node. Cache channels keep their last event
 * from the backend (never a client event), stored by the adapter with the envelope that carries it.
 */
import type { Context } from '@opentelemetry/api';
import type { Adapter, CachedEvent } from '../adapters/adapter.js';
import type { Envelope } from '../adapters/envelope.js';
import { channelKind } from '../protocol/channel-name.js';
import type { SentKind } from '../protocol/frame-kinds.js';
import type { Metrics, PublishSource } from '../telemetry/metrics.js';
import { endWithError, sampledContextOf, startPublishSpan } from '../telemetry/tracing.js';

export interface PublishRequest {
  appId: string;
  channel: string;
  event: string;
  data: string;
  excludeSocketId?: string | undefined;
  userId?: string | undefined;
  source: PublishSource;
  /** Parent of the publish span (the HTTP server span, or the client frame's `process` span). */
  parent?: Context | undefined;
}

export interface Publisher {
  publish(request: PublishRequest): void;
}

export function createPublisher({ adapter, metrics }: { adapter: Adapter; metrics: Metrics }): Publisher {
  return {
    publish(request) {
      const kind = channelKind(request.channel);
      const sentKind: SentKind = request.source === 'client_event' ? 'client_event' : 'channel_event';
      const publishedAt = Date.now();
      const acceptedAt = performance.now();
      const span = startPublishSpan(
        kind.type,
        request.channel,
        request.appId,
        request.event,
        Buffer.byteLength(request.data),
        request.parent,
      );
      metrics.eventPublished(request.appId, request.source);
      // Only the backend's events are cached, as Pusher caches them: a client event on a cache channel is delivered like
      // any other and leaves the cached event as it was (a subscriber must not replace the state the backend set).
      const cached: CachedEvent | undefined =
        kind.cache && request.source !== 'client_event' ? { event: request.event, data: request.data } : undefined;
      const envelope: Envelope = {
        appId: request.appId,
        channel: request.channel,
        event: request.event,
        data: request.data,
        userId: request.userId,
        excludeSocketId: request.excludeSocketId,
        kind: sentKind,
        trace: sampledContextOf(span),
        publishedAt,
        acceptedAt,
      };
      const dropped = adapter.publish(envelope, cached);
      // Dropped unsent (a client event while the engine is down: the HTTP API refuses its own publishes then): the trace
      // says so, as the drop counter does.
      if (dropped !== undefined && span.isRecording()) endWithError(span, new Error(`cluster engine ${dropped === 'down' ? 'down' : 'congested'}: dropped unsent`));
      else span.end();
    },
  };
}
