/** `POST /apps/{app_id}/events` and `POST /apps/{app_id}/batch_events`. */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Errors } from '../../protocol/errors.js';
import type { ApiDeps } from '../api-deps.js';
import { ApiError } from '../api-error.js';
import { channelInfo, parseBody, publishSchemas, type EventRequest } from '../publish-request.js';
import { requestContext, type AppRequest } from '../request-app.js';

export function registerEventRoutes(scope: FastifyInstance, deps: ApiDeps): void {
  // Built once: the limits are part of the schemas. They run in the handlers, after the signing hook (api.ts).
  const schemas = publishSchemas(deps.config);
  /**
   * Decided once per request, before any of its events is handed on, so a request is refused whole or carried whole.
   * A publish the cluster engine cannot carry is refused, not accepted and dropped: the backend sees 503 and can retry
   * (a congested engine still carries what it admitted: adapters/adapter.ts). Checked in the same synchronous step that
   * hands the events to the adapter: a publish is either refused here or accepted before the drain flushes the adapter,
   * so a 200 always means written to every subscriber connected now.
   */
  const admit = (): void => {
    const engine = deps.adapter.status();
    if (!engine.up || engine.congested) throw ApiError.of(Errors.API_ENGINE_UNAVAILABLE);
    if (!deps.isAccepting()) throw ApiError.of(Errors.API_SHUTTING_DOWN);
  };
  const publish = (request: FastifyRequest, appId: string, event: EventRequest) => {
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
    const event = parseBody(schemas.event, request.body);
    admit();
    publish(request, app.id, event);
    if (event.info.length === 0) return {};
    const channels: Array<[string, Record<string, number>]> = [];
    for (const channel of event.channels) {
      channels.push([channel, channelInfo(channel, await deps.adapter.channel(app.id, channel), event.info)]);
    }
    // fromEntries defines each name as an own key: assigning `__proto__` (a valid name) would set the prototype instead.
    return { channels: Object.fromEntries(channels) };
  });

  scope.post<AppRequest>('/batch_events', async (request) => {
    const app = request.beaconApp;
    // The whole batch is validated before any of it is published: a bad item publishes nothing.
    const events = parseBody(schemas.batch, request.body);
    admit();
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
