/**
 * Session explorer: one connection's story, told by its log lines (every line of a connection carries its session_id),
 * with links to the traces its frames produced. Reached from any Beacon log line (Loki derived field `session_id`) or by
 * pasting a session id.
 */
import { DashboardBuilder, RowBuilder, TextBoxVariableBuilder, type Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import { logMetric, logs, traceSearch } from '../panels.js';
import { beaconLinks } from '../variables.js';

const SESSION = '{service_name="beacon"} | json | session_id="$session_id"';
const LIFECYCLE_EVENTS = [
  'connection_opened',
  'connection_closed',
  'subscribed',
  'subscription_failed',
  'unsubscribed',
  'signin',
  'auth_failed',
  'rate_limited',
  'slow_consumer',
].join('|');

/** Builds the Session explorer dashboard. */
export function sessions(): Dashboard {
  return new DashboardBuilder('Beacon / Session explorer')
    .uid('beacon-sessions')
    .description("One connection's story: its log lines, lifecycle, failures and traces, by session_id.")
    .tags(['beacon'])
    .refresh('')
    .time({ from: 'now-6h', to: 'now' })
    .timezone('browser')
    .readonly()
    .withVariable(
      new TextBoxVariableBuilder('session_id')
        .label('Session id')
        .description('The session_id field of a connection_opened line, or of any line of the connection.')
        .defaultValue(''),
    )
    .links(beaconLinks())

    .withRow(new RowBuilder('The connection'))
    .withPanel(
      logs('Lifecycle', `${SESSION} | event=~"${LIFECYCLE_EVENTS}" | line_format "{{.event}} {{.channel}} {{.reason}} {{.code}}"`, {
        width: 12,
        description: 'Opened, subscriptions, failures and the close reason and code, oldest last.',
      }),
    )
    .withPanel(logMetric('Lines by event', 'short', `sum by (event) (count_over_time(${SESSION} [$__auto]))`, '{{event}}'))
    .withPanel(
      logs('Every line of the session', SESSION, {
        height: 14,
        description: 'Expand a line and follow its trace_id to Tempo (derived field "View trace").',
      }),
    )

    .withRow(new RowBuilder('Traces'))
    .withPanel(
      logs('Lines written inside a span', `${SESSION} | trace_id!=""`, {
        width: 12,
        description: 'Each line links to its trace through the trace_id derived field.',
      }),
    )
    .withPanel(
      traceSearch('Spans of this session', '{ resource.service.name = "beacon" && span.session.id = "$session_id" }', {
        width: 12,
        description: 'The connect span and the process spans of the connection; the publishes it received are linked from their deliver spans.',
      }),
    )

    .withRow(new RowBuilder('Find a session'))
    .withPanel(
      logs('Recent abnormal closes', '{service_name="beacon"} | json | event="connection_closed" | reason!="client_close" | reason!="server_shutdown"', {
        description: 'Connections closed by timeouts, errors or slow consumers. Copy a session_id into the variable above.',
      }),
    )
    .withPanel(
      logs('Recent failures', '{service_name="beacon", level=~"warn|error"} | json | session_id!=""', {
        description: 'Warnings and errors that belong to a connection.',
      }),
    )
    .build();
}
