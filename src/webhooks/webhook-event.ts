/** The webhook events of the Pusher protocol (reference "Webhooks"), exactly as they appear in a request's `events`. */

/** Every webhook event name; the `event` label of `websocket_webhooks_total` is always one of these. */
export const WEBHOOK_EVENT_NAMES = [
  'channel_occupied',
  'channel_vacated',
  'member_added',
  'member_removed',
  'client_event',
  'cache_miss',
  'subscription_count',
] as const;

/** One of WEBHOOK_EVENT_NAMES: what a webhook's `eventTypes` choose from. */
export type WebhookEventName = (typeof WEBHOOK_EVENT_NAMES)[number];

/**
 * The event types of the `APP_WEBHOOK_URL` / `webhookUrl` shorthand: every one but `subscription_count`, which a webhook
 * gets only when its `eventTypes` name it. So it is in Pusher, where subscription count is a webhook type of its own,
 * chosen per webhook. And it is the one event that comes with every subscribe and unsubscribe of a channel (for an app
 * that counts subscriptions): an app turning counting on must not multiply what an existing receiver gets.
 */
export const SHORTHAND_WEBHOOK_EVENT_NAMES: readonly WebhookEventName[] = WEBHOOK_EVENT_NAMES.filter(
  (name) => name !== 'subscription_count',
);

/** One webhook event. `data` of a client event is the string the client sent, as the receiver's Pusher SDK expects. */
export type WebhookEvent =
  | { name: 'channel_occupied' | 'channel_vacated'; channel: string }
  /** `user_id` as the backend signed it: a number stays a number, as in the presence frames. */
  | { name: 'member_added' | 'member_removed'; channel: string; user_id: string | number }
  | {
      name: 'client_event';
      channel: string;
      event: string;
      data: string;
      socket_id: string;
      /** Presence channels only. */
      user_id?: string | undefined;
    }
  | { name: 'cache_miss'; channel: string }
  /** The count the cluster published to the channel's subscribers (`pusher_internal:subscription_count`), as they got it. */
  | { name: 'subscription_count'; channel: string; subscription_count: number };
