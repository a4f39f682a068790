/** Which of an app's webhooks an event goes to: its event types and its channel-name filter. Pure. */
import type { WebhookConfig } from '../config.js';
import type { WebhookEvent, WebhookEventName } from './webhook-event.js';

/** Whether `webhook` takes events of type `name` on `channel`. */
export function webhookTakes(webhook: WebhookConfig, name: WebhookEventName, channel: string): boolean {
  if (!webhook.eventTypes.includes(name)) return false;
  if (webhook.channelNameStartsWith !== undefined && !channel.startsWith(webhook.channelNameStartsWith)) return false;
  if (webhook.channelNameEndsWith !== undefined && !channel.endsWith(webhook.channelNameEndsWith)) return false;
  return true;
}

/** Whether `webhook` takes `event`. */
export function webhookAccepts(webhook: WebhookConfig, event: WebhookEvent): boolean {
  return webhookTakes(webhook, event.name, event.channel);
}
