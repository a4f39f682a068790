/**
 * deploy/kubernetes/: every manifest validates against the Kubernetes and Prometheus Operator schemas shipped by the
 * kubernetes-models packages (offline), the PrometheusRule is exactly what prometheus/alerts.yml renders to, and the
 * Deployment, Service and monitors agree on ports, probes and labels.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { PodMonitor, PrometheusRule, ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { Ingress } from 'kubernetes-models/networking.k8s.io/v1';
import { Service } from 'kubernetes-models/v1';
import { parse } from 'yaml';
import { PROMETHEUS_RULE_PATH, renderPrometheusRule } from '../../deploy/kubernetes/prometheus-rule.js';
import { telemetryOptionsFromEnv } from '../../otel/options.js';
import { CONFIG_VARIABLES, configProblems, configWarnings, loadConfig } from '../../src/config.js';
import { ROOT } from './expressions.js';

const DIR = `${ROOT}deploy/kubernetes/`;
const load = <T>(file: string): T => parse(readFileSync(DIR + file, 'utf8')) as T;

test('every manifest validates against its schema', () => {
  const validators: Record<string, (doc: any) => { validate(): void }> = {
    'apps/v1/Deployment': (d) => new Deployment(d),
    'v1/Service': (d) => new Service(d),
    'networking.k8s.io/v1/Ingress': (d) => new Ingress(d),
    'monitoring.coreos.com/v1/ServiceMonitor': (d) => new ServiceMonitor(d),
    'monitoring.coreos.com/v1/PodMonitor': (d) => new PodMonitor(d),
    'monitoring.coreos.com/v1/PrometheusRule': (d) => new PrometheusRule(d),
  };
  const files = readdirSync(DIR).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml');
  assert.deepEqual(files.sort(), ['deployment.yaml', 'ingress.yaml', 'podmonitor.yaml', 'prometheusrule.yaml', 'service.yaml', 'servicemonitor.yaml']);
  for (const file of files) {
    const doc = load<{ apiVersion: string; kind: string }>(file);
    const make = validators[`${doc.apiVersion}/${doc.kind}`];
    assert.ok(make, `${file}: no schema for ${doc.apiVersion} ${doc.kind}`);
    assert.doesNotThrow(() => make(doc).validate(), file);
  }
  const kustomization = load<{ resources: string[] }>('kustomization.yaml');
  for (const r of kustomization.resources) assert.ok(files.includes(r), `kustomization: ${r}`);
});

test('the schema check rejects a broken manifest', () => {
  const doc = load<any>('deployment.yaml');
  doc.spec.template.spec.containers[0].ports[0].containerPort = 'ws';
  assert.throws(() => new Deployment(doc).validate());
});

test('the PrometheusRule is generated from prometheus/alerts.yml and in sync (run `npm run k8s:rules`)', () => {
  assert.equal(readFileSync(PROMETHEUS_RULE_PATH, 'utf8'), renderPrometheusRule());
  const rule = load<{ spec: unknown }>('prometheusrule.yaml');
  assert.deepEqual(rule.spec, parse(readFileSync(`${ROOT}prometheus/alerts.yml`, 'utf8')));
});

test('Deployment: the apps come from a Secret; every variable it sets is one Beacon reads, valid, and warns of nothing', () => {
  const pod = load<any>('deployment.yaml').spec.template.spec;
  // A Service named `metrics` would set METRICS_PORT=tcp://… in every pod of the namespace: Beacon refuses that value.
  assert.equal(pod.enableServiceLinks, false);
  const container = pod.containers[0];
  const env = container.env as { name: string; value?: string; valueFrom?: unknown }[];
  // src/config.ts's, the telemetry bootstrap's own (otel/options.ts) and the SDK's `OTEL_*`.
  const known = new Set([...CONFIG_VARIABLES.map((v) => v.name), 'METRICS_HOST', 'METRICS_PORT']);
  for (const { name } of env) assert.ok(known.has(name) || name.startsWith('OTEL_'), `${name} is no variable Beacon reads`);
  // No credential written into the manifest: APPS_FILE is a file of a Secret's volume.
  assert.ok(!env.some((v) => /^APP_(ID|KEY|SECRET)$/.test(v.name)));
  const appsFile = env.find((v) => v.name === 'APPS_FILE')?.value;
  assert.ok(appsFile !== undefined);
  const mount = container.volumeMounts.find((m: { mountPath: string }) => appsFile.startsWith(`${m.mountPath}/`));
  assert.ok(mount?.readOnly);
  const volume = pod.volumes.find((v: { name: string }) => v.name === mount.name);
  assert.equal(volume.secret.secretName, 'beacon-apps');
  assert.deepEqual(volume.secret.items, [{ key: 'apps.json', path: appsFile.slice(mount.mountPath.length + 1) }]);
  // The manifest's settings with an apps.json as README describes it: valid, and nothing said at start-up.
  const dir = mkdtempSync(join(tmpdir(), 'beacon-k8s-'));
  try {
    writeFileSync(join(dir, 'apps.json'), JSON.stringify({ apps: [{ id: 'app-1', key: 'key-1', secret: 'a-long-random-secret' }] }));
    const values = Object.fromEntries(env.map((v) => [v.name, v.value ?? 'beacon-7d9f-abcde']));
    const config = loadConfig({ ...values, APPS_FILE: join(dir, 'apps.json') });
    assert.deepEqual(configWarnings(config), []);
    const telemetry = telemetryOptionsFromEnv(values);
    assert.deepEqual([telemetry.errors, telemetry.warnings], [[], []]);
    assert.deepEqual(telemetry.metrics, { host: '0.0.0.0', port: 9464 });
    // Without the Secret's file it would not start (the pod waits for the Secret instead).
    assert.notDeepEqual(configProblems({ ...values, APPS_FILE: join(dir, 'missing.json') }), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('Deployment: probes, drain, resources, annotations; Service and monitors use the named ports', () => {
  const deployment = load<any>('deployment.yaml');
  const pod = deployment.spec.template;
  const container = pod.spec.containers[0];
  assert.deepEqual(container.ports.map((p: { name: string; containerPort: number }) => [p.name, p.containerPort]), [['ws', 6001], ['metrics', 9464]]);
  assert.equal(container.livenessProbe.httpGet.path, '/healthz');
  assert.equal(container.readinessProbe.httpGet.path, '/readyz');
  assert.ok(container.lifecycle.preStop);
  assert.ok(container.resources.requests.cpu && container.resources.requests.memory);
  // The grace covers preStop + the drain grace + the shutdown bound (SHUTDOWN_TIMEOUT_MS default 10 s).
  assert.ok(pod.spec.terminationGracePeriodSeconds >= container.lifecycle.preStop.sleep.seconds + 10 + 10);
  assert.equal(pod.metadata.annotations['prometheus.io/scrape'], 'true');
  assert.equal(pod.metadata.annotations['prometheus.io/port'], '9464');
  assert.equal(pod.metadata.annotations['prometheus.io/path'], '/metrics');
  assert.ok(pod.spec.securityContext.runAsNonRoot);
  // BeaconMemoryHigh fires at 1.5 GiB: 75% of the memory limit.
  assert.equal(container.resources.limits.memory, '2Gi');
  assert.match(readFileSync(`${ROOT}prometheus/alerts.yml`, 'utf8'), /process_resident_memory_bytes\{job="beacon"\}\) > 1\.5 \* 1024 \* 1024 \* 1024/);

  const service = load<any>('service.yaml');
  assert.deepEqual(service.spec.ports.map((p: { name: string; targetPort: string }) => [p.name, p.targetPort]), [['ws', 'ws'], ['metrics', 'metrics']]);
  assert.deepEqual(service.spec.selector, deployment.spec.selector.matchLabels);
  const serviceMonitor = load<any>('servicemonitor.yaml');
  assert.equal(serviceMonitor.spec.endpoints[0].port, 'metrics');
  assert.deepEqual(serviceMonitor.spec.selector.matchLabels, service.metadata.labels['app.kubernetes.io/name'] ? { 'app.kubernetes.io/name': 'beacon' } : {});
  const podMonitor = load<any>('podmonitor.yaml');
  assert.equal(podMonitor.spec.podMetricsEndpoints[0].port, 'metrics');
  assert.deepEqual(podMonitor.spec.selector.matchLabels, deployment.spec.selector.matchLabels);
  // Alerts select job="beacon": both monitors set it.
  for (const endpoint of [serviceMonitor.spec.endpoints[0], podMonitor.spec.podMetricsEndpoints[0]]) {
    assert.deepEqual(endpoint.relabelings, [{ targetLabel: 'job', replacement: 'beacon' }]);
  }
});

test('Ingress: the ws port of the Service at the root; nginx keeps quiet connections past ACTIVITY_TIMEOUT and takes the largest API body Beacon takes', () => {
  const ingress = load<any>('ingress.yaml');
  const annotations = ingress.metadata.annotations as Record<string, string>;
  const env = load<any>('deployment.yaml').spec.template.spec.containers[0].env as { name: string; value?: string }[];
  const config = loadConfig(Object.fromEntries(env.flatMap((v) => (v.value === undefined || v.name === 'APPS_FILE' ? [] : [[v.name, v.value]]))));
  // Idle connections ping after ACTIVITY_TIMEOUT: a proxy timeout under it cuts every quiet client (docs/reverse-proxy.md).
  for (const key of ['proxy-read-timeout', 'proxy-send-timeout']) {
    assert.ok(Number(annotations[`nginx.ingress.kubernetes.io/${key}`]) > config.activityTimeoutSeconds, key);
  }
  const size = /^(\d+)m$/.exec(annotations['nginx.ingress.kubernetes.io/proxy-body-size'] ?? '');
  assert.ok(size !== null && Number(size[1]) * 1024 * 1024 >= config.apiBodyLimitBytes, 'proxy-body-size');
  assert.match(annotations['nginx.ingress.kubernetes.io/proxy-next-upstream'] ?? '', /http_503/);
  const [path] = ingress.spec.rules[0].http.paths;
  assert.deepEqual([path.path, path.backend.service.name, path.backend.service.port.name], ['/', load<any>('service.yaml').metadata.name, 'ws']);
});
