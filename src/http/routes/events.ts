/** `POST /apps/{app_id}/events` and `POST /apps/{app_id}/batch_events`. */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Errors } from '../../protocol/errors.js';
import { ApiError, type ApiDeps } from '../api-deps.js';
import { channelInfo, parseEventRequest, type EventRequest } from '../publish-request.js';
import { requestContext, type AppRequest } from '../request-app.js';

export function registerEventRoutes(scope: FastifyInstance, deps: ApiDeps): void {
  const publish = (request: FastifyRequest, appId: string, event: EventRequest) => {
    // A publish the cluster engine cannot carry is refused, not accepted and dropped: the backend sees 503 and can retry.
    if (!deps.adapter.status().up) throw new ApiError(Errors.API_ENGINE_UNAVAILABLE);
    // Checked in the same synchronous step that hands the events to the adapter: a publish is either refused here or
    // accepted before the drain flushes the adapter, so a 200 always means written to every subscriber connected now.
    if (!deps.isAccepting()) throw new ApiError(Errors.API_SHUTTING_DOWN);
    const parent = requestContext(request);
    for (const channel of event.channels) {
      deps.publisher.publish({
        appId,
        channel,
        event: event.name,
        data: event.data,
        excludeSocketId: event.socketId,
        source: 'http_api',
        parent,
      });
    }
  };

  scope.post<AppRequest>('/events', async (request) => {
    const app = request.beaconApp;
    const event = parseEventRequest(request.body, deps.config, false);
    publish(request, app.id, event);
    if (event.info.length === 0) return {};
    const channels: Record<string, Record<string, number>> = {};
    for (const channel of event.channels) {
      channels[channel] = channelInfo(channel, await deps.adapter.channel(app.id, channel), event.info);
    }
    return { channels };
  });

  scope.post<AppRequest>('/batch_events', async (request) => {
    const app = request.beaconApp;
    const body = request.body as { batch?: unknown } | null;
    const batch = body?.batch;
    if (!Array.isArray(batch)) throw new ApiError(Errors.API_BATCH_NOT_ARRAY);
    if (batch.length > deps.config.maxBatchSize) {
      throw new ApiError(Errors.API_BATCH_TOO_LARGE, batch.length, deps.config.maxBatchSize);
    }
    // Validate the whole batch before publishing any of it: a bad item publishes nothing.
    const events = batch.map((item) => parseEventRequest(item, deps.config, true));
    for (const event of events) publish(request, app.id, event);
    if (events.every((e) => e.info.length === 0)) return {};
    const out: Record<string, number>[] = [];
    for (const event of events) {
      const channel = event.channels[0] as string;
      out.push(channelInfo(channel, await deps.adapter.channel(app.id, channel), event.info));
    }
    return { batch: out };
  });
}
