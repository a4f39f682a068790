/**
 * The bootstrap's reading of the environment (otel/options.ts), the shutdown registry (src/telemetry/lifecycle.ts) and the
 * process gauges' sources (src/telemetry/process-metrics.ts): pure parts, tested without starting an SDK.
 */
import assert from 'node:assert/strict';
import { openSync, closeSync } from 'node:fs';
import { describe, it } from 'node:test';
import { telemetryOptionsFromEnv } from '../../otel/options.js';
import { loadConfig } from '../../src/config.js';
import { countOpenFds, readMaxFds } from '../../src/telemetry/process-metrics.js';

describe('telemetryOptionsFromEnv', () => {
  it('defaults: enabled, service beacon, metrics on 0.0.0.0:9464, no traces, health paths ignored', () => {
    const o = telemetryOptionsFromEnv({});
    assert.equal(o.disabled, false);
    assert.equal(o.defaultServiceName, 'beacon');
    assert.deepEqual(o.metrics, { host: '0.0.0.0', port: 9464 });
    assert.equal(o.traces, undefined);
    assert.deepEqual(o.warnings, []);
  });

  it('OTEL_SDK_DISABLED=true (any case) disables', () => {
    assert.equal(telemetryOptionsFromEnv({ OTEL_SDK_DISABLED: 'TRUE' }).disabled, true);
    assert.equal(telemetryOptionsFromEnv({ OTEL_SDK_DISABLED: 'false' }).disabled, false);
  });

  it('a service named by OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES gets no default', () => {
    assert.equal(telemetryOptionsFromEnv({ OTEL_SERVICE_NAME: 'x' }).defaultServiceName, undefined);
    assert.equal(telemetryOptionsFromEnv({ OTEL_RESOURCE_ATTRIBUTES: 'a=b,service.name=y' }).defaultServiceName, undefined);
    assert.equal(telemetryOptionsFromEnv({ OTEL_RESOURCE_ATTRIBUTES: 'a=b' }).defaultServiceName, 'beacon');
  });

  it('a blank service.name names the resource as it names the log lines: the default, never ""', async () => {
    // Before: the SDK's detector took `service.name=` as the name "", spans and target_info said "", the lines "beacon".
    const { detectTelemetryResource } = await import('../../otel/sdk.js');
    const saved = process.env.OTEL_RESOURCE_ATTRIBUTES;
    process.env.OTEL_RESOURCE_ATTRIBUTES = 'service.name=,team=x';
    try {
      const env = { OTEL_RESOURCE_ATTRIBUTES: process.env.OTEL_RESOURCE_ATTRIBUTES };
      const resource = await detectTelemetryResource(telemetryOptionsFromEnv(env));
      assert.equal(resource.attributes['service.name'], 'beacon');
      assert.equal(resource.attributes.team, 'x');
      assert.equal(loadConfig(env).serviceName, 'beacon');
      // A blank OTEL_SERVICE_NAME too: the lines said "  " while the resource said beacon.
      process.env.OTEL_RESOURCE_ATTRIBUTES = '';
      const blank = { OTEL_SERVICE_NAME: '  ' };
      assert.equal(loadConfig(blank).serviceName, 'beacon');
      assert.equal((await detectTelemetryResource(telemetryOptionsFromEnv(blank))).attributes['service.name'], 'beacon');
    } finally {
      if (saved === undefined) delete process.env.OTEL_RESOURCE_ATTRIBUTES;
      else process.env.OTEL_RESOURCE_ATTRIBUTES = saved;
    }
  });

  it('traces only with an endpoint, protocol http/protobuf unless told, none wins', () => {
    assert.deepEqual(telemetryOptionsFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }).traces, {
      protocol: 'http/protobuf',
    });
    assert.deepEqual(
      telemetryOptionsFromEnv({
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://c:4318/v1/traces',
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      }).traces,
      { protocol: 'http/json' },
    );
    assert.equal(
      telemetryOptionsFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_EXPORTER: 'none' }).traces,
      undefined,
    );
    const grpc = telemetryOptionsFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4317', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' });
    assert.deepEqual(grpc.traces, { protocol: 'http/protobuf' });
    assert.equal(grpc.warnings.length, 1);
  });

  it('parentbased_traceidratio, exactly as the SDK matches it, gives Beacon the root ratio when spans are recorded', () => {
    const traced = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_SAMPLER: 'parentbased_traceidratio' };
    assert.equal(telemetryOptionsFromEnv({ ...traced, OTEL_TRACES_SAMPLER_ARG: '0.05' }).rootRatio, 0.05);
    assert.equal(telemetryOptionsFromEnv({ ...traced, OTEL_TRACES_SAMPLER_ARG: ' 0.25 ' }).rootRatio, 0.25);
    assert.equal(telemetryOptionsFromEnv({ ...traced, OTEL_TRACES_SAMPLER_ARG: '0' }).rootRatio, 0);
    assert.equal(
      telemetryOptionsFromEnv({ OTEL_TRACES_EXPORTER: 'console', OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.5' }).rootRatio,
      0.5,
    );
    // The SDK's rule for a bad argument: ratio 1, with a warning.
    for (const arg of [undefined, '', ' ', 'half', '-0.1', '1.5']) {
      const o = telemetryOptionsFromEnv({ ...traced, ...(arg === undefined ? {} : { OTEL_TRACES_SAMPLER_ARG: arg }) });
      assert.equal(o.rootRatio, 1, String(arg));
      assert.equal(o.warnings.length, 1, String(arg));
    }
    // No spans recorded, or another sampler (the SDK builds it, and does not match a trimmed or recased name either).
    assert.equal(telemetryOptionsFromEnv({ OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.05' }).rootRatio, undefined);
    for (const name of ['traceidratio', 'always_on', 'parentbased_always_on', ' parentbased_traceidratio', 'ParentBased_TraceIdRatio']) {
      assert.equal(telemetryOptionsFromEnv({ ...traced, OTEL_TRACES_SAMPLER: name, OTEL_TRACES_SAMPLER_ARG: '0.05' }).rootRatio, undefined, name);
    }
    assert.equal(telemetryOptionsFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }).rootRatio, undefined);
  });

  it('METRICS_* win over OTEL_EXPORTER_PROMETHEUS_*; none turns metrics off', () => {
    assert.deepEqual(
      telemetryOptionsFromEnv({
        METRICS_HOST: '127.0.0.1',
        METRICS_PORT: '9999',
        OTEL_EXPORTER_PROMETHEUS_HOST: '10.0.0.1',
        OTEL_EXPORTER_PROMETHEUS_PORT: '1234',
      }).metrics,
      { host: '127.0.0.1', port: 9999 },
    );
    assert.deepEqual(
      telemetryOptionsFromEnv({ OTEL_EXPORTER_PROMETHEUS_HOST: '::1', OTEL_EXPORTER_PROMETHEUS_PORT: '1234' }).metrics,
      { host: '::1', port: 1234 },
    );
    assert.deepEqual(telemetryOptionsFromEnv({ METRICS_HOST: 'metrics.internal', METRICS_PORT: '65535' }).metrics, {
      host: 'metrics.internal',
      port: 65535,
    });
    assert.equal(telemetryOptionsFromEnv({ OTEL_METRICS_EXPORTER: 'none' }).metrics, undefined);
    assert.deepEqual(telemetryOptionsFromEnv({ METRICS_HOST: '::1', METRICS_PORT: '9999' }).errors, []);
    // A fully qualified name's trailing dot, and the underscores of container names, are host names (refused before).
    for (const host of ['localhost.', 'metrics.internal.', 'my_host', 'beacon_metrics.svc', '0.0.0.0', '::']) {
      assert.deepEqual(telemetryOptionsFromEnv({ METRICS_HOST: host }).errors, [], host);
    }
  });

  it('an invalid METRICS_PORT or METRICS_HOST is an error naming it (the process refuses to start), not a warning', () => {
    // Before: `metrics port "abc" is invalid; using 9464`, and 999.1.1.1 failed only at listen time, leaving no /metrics.
    // And written otherwise than in decimal digits (Number() took these as ports: a review).
    for (const port of ['abc', '0', '65536', '80.5', '-1', '0x4BC9', '1e4', '+9465', '9465.0']) {
      const o = telemetryOptionsFromEnv({ METRICS_PORT: port });
      assert.deepEqual(o.errors, [`METRICS_PORT: not a port from 1 to 65535: "${port}"`], port);
      assert.deepEqual(o.warnings, [], port);
    }
    for (const host of ['999.1.1.1', '999.1.1.1.', '1.2.3', 'bad host', '-x.example', 'a..b', '[::1]', '.']) {
      assert.deepEqual(telemetryOptionsFromEnv({ METRICS_HOST: host }).errors, [`METRICS_HOST: not an IP address or host name: "${host}"`], host);
    }
    // Checked whether or not metrics are served, as src/config.ts checks every setting.
    assert.equal(telemetryOptionsFromEnv({ METRICS_PORT: 'abc', OTEL_METRICS_EXPORTER: 'none' }).errors.length, 1);
    assert.equal(telemetryOptionsFromEnv({ METRICS_PORT: 'abc', OTEL_SDK_DISABLED: 'true' }).errors.length, 1);
  });

  it('the standard OTEL_* variables follow the specification: an invalid value warns and its default is used', () => {
    for (const env of [{ OTEL_EXPORTER_PROMETHEUS_PORT: 'abc' }, { OTEL_EXPORTER_PROMETHEUS_HOST: '999.1.1.1' }]) {
      const o = telemetryOptionsFromEnv(env);
      assert.deepEqual(o.metrics, { host: '0.0.0.0', port: 9464 }, JSON.stringify(env));
      assert.equal(o.warnings.length, 1, JSON.stringify(env));
      assert.deepEqual(o.errors, [], JSON.stringify(env));
    }
    for (const env of [{ OTEL_SDK_DISABLED: 'maybe' }, { OTEL_EXPORTER_OTLP_ENDPOINT: 'notaurl' }]) {
      assert.deepEqual(telemetryOptionsFromEnv(env).errors, [], JSON.stringify(env));
    }
  });

  it('adds deployment.environment.name and service.instance.id from DEPLOYMENT_ENV and NODE_ID', () => {
    assert.deepEqual(telemetryOptionsFromEnv({ DEPLOYMENT_ENV: 'prod', NODE_ID: 'n-1' }).resourceAttributes, {
      'deployment.environment.name': 'prod',
      'service.instance.id': 'n-1',
    });
  });

  it('unset, with the defaults the log lines use for env and node_id (before: left out of target_info and spans)', () => {
    const config = loadConfig({});
    assert.deepEqual(telemetryOptionsFromEnv({}).resourceAttributes, {
      'deployment.environment.name': config.env,
      'service.instance.id': config.nodeId,
    });
    assert.equal(config.env, 'development');
    assert.match(config.nodeId, new RegExp(`-${process.pid}$`));
  });
});

describe('process metrics sources', () => {
  it('counts open file descriptors as they open and close', () => {
    const before = countOpenFds();
    assert.ok(before !== undefined && before > 2);
    const fd = openSync('/proc/self/stat', 'r');
    assert.equal(countOpenFds(), before + 1);
    closeSync(fd);
    assert.equal(countOpenFds(), before);
  });

  it('reads the soft fd limit', () => {
    const max = readMaxFds();
    assert.ok(max === undefined || (Number.isInteger(max) && max > 0));
  });
});
