/** The webhook events of the Pusher protocol (reference "Webhooks"), exactly as they appear in a request's `events`. */

/** Every webhook event name; the `event` label of `websocket_webhooks_total` is always one of these. */
export const WEBHOOK_EVENT_NAMES = [
  'channel_occupied',
  'channel_vacated',
  'member_added',
  'member_removed',
  'client_event',
  'cache_miss',
] as const;

/** One of WEBHOOK_EVENT_NAMES: what a webhook's `eventTypes` choose from. */
export type WebhookEventName = (typeof WEBHOOK_EVENT_NAMES)[number];

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
  | { name: 'cache_miss'; channel: string };
