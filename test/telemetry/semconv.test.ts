/** The incubating semantic-convention names copied in src/telemetry/semconv.ts still match the package's. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as incubating from '@opentelemetry/semantic-conventions/incubating';
import * as copied from '../../src/telemetry/semconv.js';

test('every copied incubating attribute name equals the package constant of the same name', () => {
  const pkg = incubating as unknown as Record<string, unknown>;
  for (const [name, value] of Object.entries(copied)) assert.equal(value, pkg[name], name);
});
