/**
 * Incubating OpenTelemetry semantic-convention names Beacon uses, copied `as const` with the names of
 * `@opentelemetry/semantic-conventions/incubating` — as that package advises: incubating names may change in a minor
 * release, so they are pinned here rather than imported from the entry point. Stable names (`ATTR_HTTP_*`, `ATTR_SERVER_*`,
 * `ATTR_SERVICE_NAME`, …) are imported from `@opentelemetry/semantic-conventions` where they are used.
 * test/telemetry/semconv.test.ts checks each copy against the package.
 */

/** `messaging.system` (incubating). */
export const ATTR_MESSAGING_SYSTEM = 'messaging.system' as const;
/** `messaging.operation.type` (incubating). */
export const ATTR_MESSAGING_OPERATION_TYPE = 'messaging.operation.type' as const;
/** `messaging.operation.name` (incubating). */
export const ATTR_MESSAGING_OPERATION_NAME = 'messaging.operation.name' as const;
/** `messaging.destination.name` (incubating). */
export const ATTR_MESSAGING_DESTINATION_NAME = 'messaging.destination.name' as const;
/** `messaging.message.body.size` (incubating). */
export const ATTR_MESSAGING_MESSAGE_BODY_SIZE = 'messaging.message.body.size' as const;
/** `messaging.batch.message_count` (incubating). */
export const ATTR_MESSAGING_BATCH_MESSAGE_COUNT = 'messaging.batch.message_count' as const;
/** `session.id` (incubating). */
export const ATTR_SESSION_ID = 'session.id' as const;
/** `deployment.environment.name` (incubating, resource). */
export const ATTR_DEPLOYMENT_ENVIRONMENT_NAME = 'deployment.environment.name' as const;
/** `service.instance.id` (incubating, resource). */
export const ATTR_SERVICE_INSTANCE_ID = 'service.instance.id' as const;
