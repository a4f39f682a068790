/**
 * scripts/stack (npm run stack:status | stack:up | stack:down | stack:logs) on a machine where Docker is missing or its
 * daemon is down: one line saying what is missing and how to fix it, never docker-compose's Python traceback, and status
 * still checks Beacon's /healthz, /readyz and /metrics (BEACON_URL, BEACON_METRICS_URL) with the exit status
 * docs/runbook.md documents. The script runs with a PATH holding only the commands it needs and fakes of `docker` and
 * `docker-compose` that fail as the real ones do without a daemon (no daemon runs on the test machine); Beacon's endpoints
 * are a stand-in HTTP server on 127.0.0.1, asked by the real curl.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ROOT } from './expressions.js';

const BASH = execFileSync('bash', ['-c', 'command -v bash'], { encoding: 'utf8' }).trim();
/** What the script calls besides docker: linked into the test PATH from this machine. */
const TOOLS = ['dirname', 'timeout', 'grep', 'curl'];

/** The real docker CLI without a daemon (and without the compose plugin, as Debian's docker.io ships it). */
const DOCKER_NO_DAEMON = `#!${BASH}
echo "docker $*" >> "$CALLS"
if [ "$1" = compose ]; then echo "docker: unknown command: docker compose" >&2; exit 1; fi
if [ "$1" = version ]; then
  echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?" >&2
  exit 1
fi
exit 1
`;
/** docker-compose 1.29 without a daemon: a Python traceback (abridged) on stderr for every command but `version`. */
const COMPOSE_NO_DAEMON = `#!${BASH}
echo "docker-compose $*" >> "$CALLS"
if [ "$1" = version ]; then echo "docker-compose version 1.29.2, build unknown"; exit 0; fi
printf '%s\\n' >&2 \\
  'Traceback (most recent call last):' \\
  '  File "/usr/lib/python3/dist-packages/urllib3/connectionpool.py", line 703, in urlopen' \\
  '    httplib_response = self._make_request(' \\
  'FileNotFoundError: [Errno 2] No such file or directory' \\
  'During handling of the above exception, another exception occurred:' \\
  '  File "/usr/lib/python3/dist-packages/docker/api/client.py", line 221, in _retrieve_server_version' \\
  '    raise DockerException(' \\
  "docker.errors.DockerException: Error while fetching server API version: ('Connection aborted.', FileNotFoundError(2, 'No such file or directory'))"
exit 1
`;
/** A docker with the compose plugin and a daemon: \`compose … ps --services\` lists the running services. */
const DOCKER_OK = `#!${BASH}
echo "docker $*" >> "$CALLS"
if [ "$1" = version ]; then echo 28.2.2; exit 0; fi
if [ "$1" = compose ] && [ "$2" = version ]; then echo "Docker Compose version v2.36.2"; exit 0; fi
for a in "$@"; do if [ "$a" = --services ]; then printf 'beacon\\nbeacon-2\\nprometheus\\n'; exit 0; fi; done
echo "NAME  IMAGE  SERVICE  STATUS"
`;
/** curl that records the URL it was asked for and answers 200 (the LGTM ports may be in use on the test machine). */
const CURL_RECORDING = `#!${BASH}
for a in "$@"; do case "$a" in http*) echo "$a" >> "$CALLS";; esac; done
exit 0
`;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  /** Every docker, docker-compose (and fake curl) invocation, one a line. */
  calls: string[];
}

describe('scripts/stack without a usable Docker', () => {
  let dir: string;
  let server: Server;
  let beaconUrl: string;
  /** What the stand-in Beacon answers on /readyz. */
  let readyStatus = 200;
  let runs = 0;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'beacon-stack-'));
    server = createServer((req, res) => {
      const status = req.url === '/readyz' ? readyStatus : ['/healthz', '/metrics'].includes(req.url ?? '') ? 200 : 404;
      res.writeHead(status).end(status === 200 ? 'ok\n' : 'no\n');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    beaconUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await rm(dir, { recursive: true, force: true });
  });

  /** Runs `scripts/stack args` with a PATH of the needed tools plus `fakes` (name → script); never throws on exit ≠ 0. */
  async function stack(args: string[], fakes: Record<string, string>, env: Record<string, string> = {}): Promise<Run> {
    const bin = join(dir, `bin-${++runs}`);
    await mkdir(bin);
    for (const tool of TOOLS) {
      if (tool in fakes) continue;
      const path = execFileSync(BASH, ['-c', `command -v ${tool}`], { encoding: 'utf8' }).trim();
      await symlink(path, join(bin, tool));
    }
    for (const [name, text] of Object.entries(fakes)) {
      await writeFile(join(bin, name), text);
      await chmod(join(bin, name), 0o755);
    }
    const calls = join(dir, `calls-${runs}`);
    await writeFile(calls, '');
    const result = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(
        BASH,
        ['scripts/stack', ...args],
        { cwd: ROOT, timeout: 30_000, env: { PATH: bin, HOME: dir, CALLS: calls, ...env } },
        (err, stdout, stderr) => resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr }),
      );
    });
    return { ...result, calls: (await readFile(calls, 'utf8')).split('\n').filter((l) => l !== '') };
  }

  const beaconEnv = () => ({ BEACON_URL: beaconUrl, BEACON_METRICS_URL: `${beaconUrl}/metrics` });
  const noDaemon = { docker: DOCKER_NO_DAEMON, 'docker-compose': COMPOSE_NO_DAEMON };

  /** One line on stderr, no traceback: what the run said about Docker. */
  function oneLine(run: Run): string {
    assert.doesNotMatch(run.stderr + run.stdout, /Traceback|File "/, 'no Python traceback');
    const lines = run.stderr.split('\n').filter((l) => l !== '');
    assert.equal(lines.length, 1, run.stderr);
    return lines[0] as string;
  }

  it('status, daemon down: one line, then Beacon /healthz, /readyz and /metrics checked; exit 3 when they are healthy', async () => {
    readyStatus = 200;
    const run = await stack(['status'], noDaemon, beaconEnv());
    assert.match(
      oneLine(run),
      /^stack: containers not checked: the Docker daemon is not reachable \(Cannot connect to the Docker daemon at unix:\/\/\/var\/run\/docker\.sock\. Is the docker daemon running\?\): start it .*; checking Beacon's endpoints only$/,
    );
    assert.deepEqual(run.stdout.trim().split('\n').map((l) => l.split(/\s+/)), [
      ['beacon-healthz', 'healthy', `${beaconUrl}/healthz`],
      ['beacon', 'healthy', `${beaconUrl}/readyz`],
      ['beacon-metrics', 'healthy', `${beaconUrl}/metrics`],
    ]);
    assert.equal(run.code, 3);
    assert.ok(!run.calls.some((c) => c.startsWith('docker-compose ') && !c.endsWith(' version')), run.calls.join('\n'));
  });

  it('status, daemon down and Beacon not ready: the failing endpoint with curl\'s reason, exit 1', async () => {
    readyStatus = 503;
    const run = await stack(['status'], noDaemon, beaconEnv());
    oneLine(run);
    assert.match(run.stdout, /^beacon-healthz\s+healthy /m);
    assert.match(run.stdout, new RegExp(`^beacon\\s+UNHEALTHY ${beaconUrl}/readyz\\s+\\(22\\) .*503$`, 'm'));
    assert.equal(run.code, 1);
  });

  it('up, down and logs, daemon down: one line and exit 3 instead of a traceback', async () => {
    const said: Record<string, RegExp> = {
      up: /^stack: cannot start the stack: the Docker daemon is not reachable \(Cannot connect/,
      down: /^stack: cannot stop the stack: the Docker daemon is not reachable/,
      logs: /^stack: cannot show the logs: the Docker daemon is not reachable/,
    };
    for (const [cmd, line] of Object.entries(said)) {
      const run = await stack([cmd], noDaemon);
      assert.match(oneLine(run), line, cmd);
      assert.equal(run.code, 3, cmd);
      assert.equal(run.stdout, '', cmd);
    }
  });

  it('no docker at all, docker without compose, docker-compose 1.x alone: each said in one line', async () => {
    readyStatus = 200;
    const none = await stack(['status'], {}, beaconEnv());
    assert.match(oneLine(none), /^stack: containers not checked: docker is not installed \(no docker on PATH\): install Docker Engine/);
    assert.equal(none.code, 3);
    assert.match(none.stdout, /^beacon-metrics\s+healthy /m);

    const noCompose = await stack(['up'], { docker: DOCKER_NO_DAEMON });
    assert.match(oneLine(noCompose), /^stack: cannot start the stack: docker has no compose: install the compose plugin/);
    assert.equal(noCompose.code, 3);

    const composeOnly = await stack(['down'], { 'docker-compose': COMPOSE_NO_DAEMON });
    assert.match(
      oneLine(composeOnly),
      /^stack: cannot stop the stack: the Docker daemon is not reachable \(docker\.errors\.DockerException: Error while fetching server API version: .*\): start it/,
    );
    assert.equal(composeOnly.code, 3);
  });

  it('with Docker, status checks every service at its published port (the defaults), beacon-2 when it runs; exit 0', async () => {
    const run = await stack(['status'], { docker: DOCKER_OK, curl: CURL_RECORDING });
    assert.equal(run.stderr, '');
    assert.equal(run.code, 0, run.stdout);
    const urls = run.calls.filter((c) => c.startsWith('http'));
    assert.deepEqual(urls, [
      'http://127.0.0.1:6001/healthz',
      'http://127.0.0.1:6001/readyz',
      'http://127.0.0.1:9464/metrics',
      'http://127.0.0.1:9090/-/ready',
      'http://127.0.0.1:9093/-/ready',
      'http://127.0.0.1:3100/ready',
      'http://127.0.0.1:3200/ready',
      'http://127.0.0.1:3000/api/health',
      'http://127.0.0.1:6002/readyz',
    ]);
    assert.ok(run.calls.includes('docker compose -p beacon -f docker-compose.yml --profile cluster ps'), run.calls.join('\n'));
  });

  it('a usage error is exit 2 and says the usage', async () => {
    const run = await stack(['restart'], noDaemon);
    assert.match(oneLine(run), /^usage: scripts\/stack up \[--cluster\] \| down \[--volumes\] \| status \| logs/);
    assert.equal(run.code, 2);
  });
});
