/** `POST /apps/{app_id}/events` and `POST /apps/{app_id}/batch_events`. */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { EngineUnavailableError } from '../../adapters/adapter.js';
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
   * so a 200 always means written to every subscriber connected now. A channel on a shard that is down (a Redis Cluster
   * master lost while the others serve) refuses the whole request the same way: the backend's retry then publishes every
   * event once, none twice.
   */
  const admit = (appId: string, events: readonly EventRequest[]): void => {
    const engine = deps.adapter.status();
    if (!engine.up || engine.congested || events.some((e) => onDownShard(appId, e))) throw ApiError.of(Errors.API_ENGINE_UNAVAILABLE);
    if (!deps.isAccepting()) throw ApiError.of(Errors.API_SHUTTING_DOWN);
  };
  const onDownShard = (appId: string, event: EventRequest): boolean =>
    event.channels.some((channel) => deps.adapter.shardDown?.(appId, channel) === true);
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

  /**
   * The `info` attributes asked for each published channel, in order, asked once the events were handed on, all at once
   * (one after another, 100 channels waited 100 round trips to the engine). A channel the engine cannot answer on gets no
   * attributes (`{}`) and the request still answers 200: a 503 would have the backend publish the events again, and zeros
   * would say nobody is there. The asks the engine fails wait for its command timeout together, once.
   */
  const infoOf = async (appId: string, asks: readonly { channel: string; info: readonly string[] }[]): Promise<Record<string, number>[]> => {
    const answers = await Promise.allSettled(
      asks.map(async ({ channel, info }) => (info.length > 0 ? deps.adapter.channel(appId, channel) : undefined)),
    );
    return answers.map((answer, i) => {
      if (answer.status === 'rejected') {
        if (!(answer.reason instanceof EngineUnavailableError)) throw answer.reason;
        return {};
      }
      const { channel, info } = asks[i]!;
      return answer.value === undefined ? {} : channelInfo(channel, answer.value, info);
    });
  };

  scope.post<AppRequest>('/events', async (request) => {
    const app = request.beaconApp;
    const event = parseBody(schemas.event, request.body);
    admit(app.id, [event]);
    publish(request, app.id, event);
    if (event.info.length === 0) return {};
    const infos = await infoOf(app.id, event.channels.map((channel) => ({ channel, info: event.info })));
    const channels = event.channels.map((channel, i): [string, Record<string, number>] => [channel, infos[i] ?? {}]);
    // fromEntries defines each name as an own key: assigning `__proto__` (a valid name) would set the prototype instead.
    return { channels: Object.fromEntries(channels) };
  });

  scope.post<AppRequest>('/batch_events', async (request) => {
    const app = request.beaconApp;
    // The whole batch is validated before any of it is published: a bad item publishes nothing.
    const events = parseBody(schemas.batch, request.body);
    admit(app.id, events);
    for (const event of events) publish(request, app.id, event);
    if (events.every((e) => e.info.length === 0)) return {};
    return { batch: await infoOf(app.id, events.map((event) => ({ channel: event.channels[0] as string, info: event.info }))) };
  });
}
