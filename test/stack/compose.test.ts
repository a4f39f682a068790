/**
 * docker-compose.yml and the files it mounts: validated by Debian's docker-compose (no daemon needed for `config`), and
 * cross-checked — every mounted file exists, images are pinned, services have health checks, and ports, URLs and data
 * source uids agree between compose, Prometheus, Tempo, Loki, Grafana and the Dockerfile.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parse } from 'yaml';
import { ROOT, readYaml } from './expressions.js';

interface Service {
  image?: string;
  build?: unknown;
  profiles?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  volumes?: string[];
  healthcheck?: { test: string[] | string };
  command?: string[];
  networks?: { default?: { aliases?: string[] } };
}
interface Compose {
  services: Record<string, Service>;
  volumes: Record<string, unknown>;
}

/** The compose file with its `<<` merge keys resolved, as docker-compose reads it. */
const compose = (): Compose => parse(readFileSync(`${ROOT}docker-compose.yml`, 'utf8'), { merge: true }) as Compose;
const composeCmd = (...args: string[]): string =>
  execFileSync('docker-compose', ['-p', 'beacon', '-f', 'docker-compose.yml', ...args], { cwd: ROOT, encoding: 'utf8', stdio: 'pipe' });

test('docker-compose config validates the file, with and without the cluster profile', () => {
  composeCmd('config', '-q');
  composeCmd('--profile', 'cluster', 'config', '-q');
  const services = composeCmd('--profile', 'cluster', 'config', '--services').trim().split('\n').sort();
  assert.deepEqual(services, ['alertmanager', 'beacon', 'beacon-2', 'grafana', 'loki', 'prometheus', 'redis', 'tempo']);
});

test('images are pinned, Beacon is built from the Dockerfile, data lives in named volumes, and Redis keeps none', () => {
  const c = compose();
  for (const [name, s] of Object.entries(c.services)) {
    if (s.build !== undefined) continue;
    assert.match(s.image ?? '', /^[\w./-]+:v?\d+\.\d+\.\d+[\w.-]*$/, `${name}: pinned image`);
  }
  assert.ok(c.services.beacon?.build !== undefined && c.services['beacon-2']?.build !== undefined);
  for (const name of ['prometheus', 'alertmanager', 'loki', 'tempo', 'grafana']) {
    const named = (c.services[name]?.volumes ?? []).filter((v) => !v.startsWith('.'));
    assert.ok(named.length > 0, `${name}: data volume`);
    for (const v of named) assert.ok(v.split(':')[0]! in c.volumes, `${name}: volume ${v} declared`);
  }
  // Redis keeps nothing: restarted from a snapshot (`--save 60 1` on a volume, before), it brought back presence members
  // who had left since, which no node removes (a probe); restarted empty, the nodes record their share again.
  assert.deepEqual(c.services.redis?.volumes ?? [], []);
  const command = c.services.redis?.command ?? [];
  const option = (name: string) => command.slice(command.indexOf(name), command.indexOf(name) + 2);
  assert.deepEqual([option('--save'), option('--appendonly')], [['--save', ''], ['--appendonly', 'no']]);
  // And evicts nothing: under an allkeys-* policy a full Redis dropped a live node's share unseen (a probe).
  assert.deepEqual(option('--maxmemory-policy'), ['--maxmemory-policy', 'noeviction']);
  assert.deepEqual(c.services['beacon-2']?.profiles, ['cluster']);
  assert.deepEqual(c.services.redis?.profiles, ['cluster']);
});

test('every service has a health check, except Tempo whose image has no client (stack:status checks it from the host)', () => {
  for (const [name, s] of Object.entries(compose().services)) {
    if (name === 'tempo') continue;
    assert.ok(s.healthcheck?.test, `${name}: healthcheck`);
  }
  // Which URLs stack:status asks, defaults included, is checked by running it: test/stack/stack-script.test.ts.
  const stack = readFileSync(`${ROOT}scripts/stack`, 'utf8');
  for (const url of ['BEACON_URL:-http://127.0.0.1:6001}', '9090/-/ready', '9093/-/ready', '3100/ready', '3200/ready', '3000/api/health']) {
    assert.ok(stack.includes(url), `stack:status checks ${url}`);
  }
});

test('every file mounted from the repository exists', () => {
  for (const [name, s] of Object.entries(compose().services)) {
    for (const v of s.volumes ?? []) {
      if (!v.startsWith('./')) continue;
      const path = v.split(':')[0]!;
      assert.ok(existsSync(ROOT + path), `${name}: ${path}`);
    }
  }
  for (const path of ['Dockerfile', '.dockerignore', 'grafana/provisioning/dashboards/beacon.yml', 'grafana/provisioning/datasources/datasources.yml']) {
    assert.ok(existsSync(ROOT + path), path);
  }
});

test('config files agree with each other and with the mounts inside the containers', () => {
  const c = compose();
  const hostPort = (service: string, container: number): boolean =>
    (c.services[service]?.ports ?? []).some((p) => p.endsWith(`:${container}`));
  // Beacon → Tempo OTLP/HTTP, Beacon → Loki, Prometheus → Beacon metrics.
  const env = c.services.beacon!.environment!;
  assert.equal(env.OTEL_EXPORTER_OTLP_ENDPOINT, 'http://tempo:4318');
  assert.equal(env.LOKI_URL, 'http://loki:3100');
  assert.equal(env.METRICS_PORT, '9464');
  assert.equal(c.services['beacon-2']!.environment!.ADAPTER, 'redis');
  assert.ok(hostPort('beacon', 6001) && hostPort('beacon', 9464));
  const prom = readYaml<{ scrape_configs: Array<{ job_name: string; dns_sd_configs?: Array<{ names: string[]; port: number }> }>; rule_files: string[] }>('prometheus/prometheus.yml');
  const job = prom.scrape_configs.find((j) => j.job_name === 'beacon');
  assert.equal(job?.dns_sd_configs?.[0]?.port, Number(env.METRICS_PORT));
  for (const node of ['beacon', 'beacon-2']) {
    assert.ok(c.services[node]?.networks?.default?.aliases?.includes(job!.dns_sd_configs![0]!.names[0]!), `${node} alias`);
  }
  // Prometheus: remote-write receiver for Tempo and exemplar storage.
  const flags = c.services.prometheus!.command!;
  assert.ok(flags.includes('--web.enable-remote-write-receiver'));
  assert.ok(flags.includes('--enable-feature=exemplar-storage'));
  assert.ok(flags.includes('--config.file=/etc/prometheus/prometheus.yml'));
  // Tempo: OTLP receivers on every interface, metrics-generator writing to Prometheus with exemplars.
  const tempo = readYaml<{
    server: { http_listen_port: number };
    distributor: { receivers: { otlp: { protocols: { http: { endpoint: string }; grpc: { endpoint: string } } } } };
    metrics_generator: { storage: { remote_write: Array<{ url: string; send_exemplars: boolean }> } };
    storage: { trace: { backend: string } };
  }>('tempo/tempo.yml');
  assert.equal(tempo.distributor.receivers.otlp.protocols.http.endpoint, '0.0.0.0:4318');
  assert.equal(tempo.distributor.receivers.otlp.protocols.grpc.endpoint, '0.0.0.0:4317');
  assert.deepEqual(tempo.metrics_generator.storage.remote_write, [{ url: 'http://prometheus:9090/api/v1/write', send_exemplars: true }]);
  assert.equal(tempo.storage.trace.backend, 'local');
  assert.ok(hostPort('tempo', tempo.server.http_listen_port) && hostPort('tempo', 4318));
  assert.deepEqual(c.services.tempo!.command, ['-config.file=/etc/tempo/tempo.yml']);
  const loki = readYaml<{ server: { http_listen_port: number } }>('loki/loki.yml');
  assert.equal(loki.server.http_listen_port, 3100);
  assert.deepEqual(c.services.loki!.command, ['-config.file=/etc/loki/loki.yml']);
  assert.ok(c.services.alertmanager!.command!.includes('--config.file=/etc/alertmanager/alertmanager.yml'));
});

test('Grafana data sources have fixed uids, point at the compose services, and correlate both ways', () => {
  type Ds = { uid: string; type: string; url: string; jsonData: Record<string, any> };
  const list = readYaml<{ datasources: Ds[] }>('grafana/provisioning/datasources/datasources.yml').datasources;
  const byUid = new Map(list.map((d) => [d.uid, d]));
  assert.deepEqual([...byUid.keys()].sort(), ['alertmanager', 'loki', 'prometheus', 'tempo']);
  assert.equal(byUid.get('prometheus')!.url, 'http://prometheus:9090');
  assert.equal(byUid.get('loki')!.url, 'http://loki:3100');
  assert.equal(byUid.get('tempo')!.url, 'http://tempo:3200');
  assert.equal(byUid.get('alertmanager')!.url, 'http://alertmanager:9093');
  for (const d of list) assert.ok(d.url.split(':')[1]!.slice(2) in compose().services, `${d.uid} host is a compose service`);
  // Every uid a correlation points at is provisioned.
  const targets = JSON.stringify(list).matchAll(/"datasourceUid":"([\w-]+)"/g);
  for (const [, uid] of targets) assert.ok(byUid.has(uid!), uid);
  const loki = byUid.get('loki')!.jsonData;
  const traceField = loki.derivedFields.find((f: { name: string }) => f.name === 'trace_id');
  assert.equal(traceField.datasourceUid, 'tempo');
  assert.ok(new RegExp(traceField.matcherRegex).test('{"trace_id":"0123456789abcdef0123456789abcdef"}'));
  const tempo = byUid.get('tempo')!.jsonData;
  assert.equal(tempo.tracesToLogsV2.datasourceUid, 'loki');
  assert.match(tempo.tracesToLogsV2.query, /trace_id=/);
  assert.match(tempo.tracesToLogsV2.query, /session_id=/);
  assert.equal(tempo.tracesToMetrics.datasourceUid, 'prometheus');
  assert.equal(tempo.serviceMap.datasourceUid, 'prometheus');
  assert.equal(byUid.get('prometheus')!.jsonData.exemplarTraceIdDestinations[0].datasourceUid, 'tempo');
  // Dashboard provider path is where compose mounts grafana/dashboards.
  const provider = readYaml<{ providers: Array<{ options: { path: string } }> }>('grafana/provisioning/dashboards/beacon.yml');
  assert.ok((compose().services.grafana!.volumes ?? []).includes(`./grafana/dashboards:${provider.providers[0]!.options.path}:ro`));
});

test('the Dockerfile is multi-stage, runs as non-root and starts with the OpenTelemetry bootstrap', () => {
  const dockerfile = readFileSync(`${ROOT}Dockerfile`, 'utf8');
  const stages = [...dockerfile.matchAll(/^FROM (\S+)/gm)].map((m) => m[1]!);
  assert.ok(stages.length >= 2, 'multi-stage');
  for (const image of stages) assert.match(image, /^node:\d+\.\d+-/, `pinned base image ${image}`);
  assert.match(dockerfile, /^USER node$/m);
  // The bootstrap imported before the entry, the entry last (the node options are npm start's: test/start-command.test.ts).
  const cmd = JSON.parse(/^CMD (\[.*\])$/m.exec(dockerfile)?.[1] ?? '[]') as string[];
  assert.deepEqual(cmd.slice(-3), ['--import', './dist/otel/register.js', 'dist/src/main.js']);
  assert.equal(cmd[0], 'node');
  assert.match(dockerfile, /^EXPOSE 6001 9464$/m);
});
