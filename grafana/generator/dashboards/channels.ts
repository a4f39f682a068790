/** Channels & presence: what is subscribed where, how subscriptions fare, how wide the fan-out is, and the cluster engine. */
import { RowBuilder, type Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import { beaconDashboard, quantile, rate } from '../base.js';
import { BEACON, NEUTRAL, stat, steps, timeseries } from '../panels.js';


/**
 * What the per-node gauges of distinct things mean summed over the nodes: each node counts what its own clients hold, so
 * a channel (or a member) held on several nodes is counted once by each (a probe: 4 for 2 channels held on 2 nodes).
 */
const PER_NODE_SUM = (things: string, truth: string): string =>
  `Summed over the nodes: each counts the ${things} its own clients hold, so one held on N nodes counts N times and, with several nodes, this is above the cluster's number (${truth}). Exact on one node.`;
const CHANNELS_SUMMED = PER_NODE_SUM('channels', 'GET /apps/{app_id}/channels answers it');
const MEMBERS_SUMMED = PER_NODE_SUM('presence members', 'GET /apps/{app_id}/channels/{channel}/users lists them');

/** Builds the Channels & presence dashboard. */
export function channels(): Dashboard {
  return beaconDashboard('Beacon / Channels & presence', 'beacon-channels', 'Occupied channels, subscriptions, presence members, fan-out and the cluster engine, by channel type.')

    .withRow(new RowBuilder('Now'))
    .withPanel(stat('Channels held (sum over nodes)', 'short', { expr: `sum(websocket_channels{${BEACON}})`, legend: 'channels' }, NEUTRAL(), 6, CHANNELS_SUMMED))
    .withPanel(stat('Subscriptions', 'short', { expr: `sum(websocket_subscriptions{${BEACON}})`, legend: 'subscriptions' }, NEUTRAL()))
    .withPanel(stat('Presence members (sum over nodes)', 'short', { expr: `sum(websocket_presence_members{${BEACON}})`, legend: 'members' }, NEUTRAL(), 6, MEMBERS_SUMMED))
    .withPanel(stat('Cluster engine up', 'short', { expr: `min(websocket_adapter_up{${BEACON}})`, legend: 'up' }, steps('red', [1, 'green'])))

    .withRow(new RowBuilder('Channels'))
    .withPanel(timeseries('Channels held by type (sum over nodes)', 'short', [{ expr: `sum by (channel_type) (websocket_channels{${BEACON}})`, legend: '{{channel_type}}' }], { stacked: true, min: 0, description: CHANNELS_SUMMED }))
    .withPanel(timeseries('Subscriptions by type', 'short', [{ expr: `sum by (channel_type) (websocket_subscriptions{${BEACON}})`, legend: '{{channel_type}}' }], { stacked: true, min: 0 }))
    .withPanel(timeseries('Subscription attempts by result', 'ops', [{ expr: rate('websocket_subscriptions_total', 'channel_type, result'), legend: '{{channel_type}} {{result}}' }]))
    .withPanel(timeseries('Subscription failures', 'ops', [{ expr: rate('websocket_subscriptions_total', 'app_id, result', ', result!="ok"'), legend: '{{app_id}} {{result}}' }], { thresholds: steps('green', [0.1, 'red']) }))

    .withRow(new RowBuilder('Presence'))
    .withPanel(timeseries('Presence members by app (sum over nodes)', 'short', [{ expr: `sum by (app_id) (websocket_presence_members{${BEACON}})`, legend: '{{app_id}}' }], { min: 0, description: MEMBERS_SUMMED }))
    .withPanel(timeseries('Presence frames sent', 'ops', [{ expr: rate('websocket_messages_sent_total', 'app_id', ', kind="presence"'), legend: '{{app_id}}' }]))

    .withRow(new RowBuilder('Fan-out'))
    .withPanel(timeseries('Recipients per publish p50 / p95', 'short', [
      { expr: quantile(0.5, 'websocket_broadcast_recipients', 'channel_type'), legend: 'p50 {{channel_type}}' },
      { expr: quantile(0.95, 'websocket_broadcast_recipients', 'channel_type'), legend: 'p95 {{channel_type}}' },
    ], { min: 0 }))
    .withPanel(timeseries('Broadcast latency p95 by channel type', 's', [{ expr: quantile(0.95, 'websocket_broadcast_duration_seconds', 'channel_type'), legend: '{{channel_type}}' }], { thresholds: steps('green', [0.25, 'red']), showThresholds: true }))
    .withPanel(timeseries('Client events', 'ops', [{ expr: rate('websocket_events_published_total', 'app_id', ', source="client_event"'), legend: '{{app_id}}' }], { width: 8 }))
    .withPanel(timeseries('Webhooks by result', 'ops', [{ expr: `sum by (event, result) (rate(websocket_webhooks_total{${BEACON}}[$__rate_interval]))`, legend: '{{event}} {{result}}' }], { width: 8 }))
    .withPanel(timeseries('Webhook events waiting', 'short', [
      { expr: `sum by (instance, app_id, webhook, state) (websocket_webhook_pending_events{${BEACON}})`, legend: '{{instance}} {{app_id}} #{{webhook}} {{state}}' },
      { expr: `sum by (instance, app_id) (websocket_webhook_held_events{${BEACON}})`, legend: '{{instance}} {{app_id}} held (vacate delay)' },
    ], { width: 8, thresholds: steps('green', [5000, 'red']), showThresholds: true, min: 0, description: 'Per node and webhook (its index in the app\'s list): queued for a request, or in requests in flight or waiting to retry; per app: held back for the vacate delay, not routed to a webhook yet. Waiting while Webhooks by result shows no ok: the receiver holds or fails requests. The line at 5000 is BeaconWebhookBacklog\'s; at WEBHOOK_MAX_PENDING_EVENTS (10000) new events are dropped.' }))

    .withRow(new RowBuilder('Cluster engine'))
    .withPanel(timeseries('Cluster engine up', 'short', [{ expr: `min by (instance, adapter) (websocket_adapter_up{${BEACON}})`, legend: '{{instance}} {{adapter}}' }], { width: 6, thresholds: steps('red', [1, 'green']), min: 0 }))
    .withPanel(timeseries('Changes not recorded in the cluster engine', 'short', [{ expr: `max by (instance, adapter) (websocket_adapter_pending_changes{${BEACON}})`, legend: '{{instance}} {{adapter}}' }], { width: 6, thresholds: steps('green', [1, 'red']), min: 0 }))
    .withPanel(timeseries('Messages through the cluster engine', 'ops', [{ expr: rate('websocket_adapter_messages_total', 'direction'), legend: '{{direction}}' }], { width: 6 }))
    .withPanel(timeseries('Cross-node query latency p95', 's', [{ expr: quantile(0.95, 'websocket_adapter_request_duration_seconds', 'op'), legend: '{{op}}' }], { width: 6, thresholds: steps('green', [0.1, 'red']) }))
    .build();
}
