/**
 * The containers of the LGTM stack (docker-compose.yml), best effort: `docker compose ps --format json`, else the plain
 * docker CLI filtered by the compose project label. No docker, no daemon, or no container: "not running".
 */
import { execFile } from 'node:child_process';

/** One container of the compose project. */
export interface ContainerHealth {
  name: string;
  state: string;
  /** healthy, unhealthy, starting, or "" when the container has no health check. */
  health: string;
}

/** The compose project's containers, or why there are none. */
export interface StackHealth {
  running: boolean;
  /** "not running" and why, or "3/7 healthy"-style summary. */
  detail: string;
  containers: ContainerHealth[];
}

function run(command: string, args: string[], signal: AbortSignal | undefined): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { timeout: 5000, maxBuffer: 1024 * 1024, signal }, (err, stdout) => (err === null ? resolve(stdout) : reject(err)));
  });
}

/** `docker compose ps --format json` prints an array (older) or one object per line (newer). */
function parseRecords(text: string): Array<Record<string, unknown>> {
  const trimmed = text.trim();
  if (trimmed === '') return [];
  if (trimmed.startsWith('[')) return JSON.parse(trimmed) as Array<Record<string, unknown>>;
  return trimmed.split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
}

function fromRecord(r: Record<string, unknown>): ContainerHealth {
  const name = String(r.Service ?? r.Name ?? r.Names ?? '?');
  const status = String(r.Status ?? '');
  const health = String(r.Health ?? (/\((healthy|unhealthy|health: starting)\)/.exec(status)?.[1] ?? '')).replace('health: ', '');
  return { name, state: String(r.State ?? ''), health };
}

const UNANSWERED: StackHealth = { running: false, detail: 'unknown (docker did not answer by the end)', containers: [] };

/** Looks the project's containers up; never throws. `end` (the end of the run) kills a docker command still running. */
export async function stackHealth(project: string, end?: AbortSignal): Promise<StackHealth> {
  const aborted = () => end?.aborted === true;
  let records: Array<Record<string, unknown>> | undefined;
  try {
    records = parseRecords(await run('docker', ['compose', '-p', project, 'ps', '--format', 'json'], end));
  } catch {
    if (aborted()) return UNANSWERED;
    try {
      records = parseRecords(
        await run('docker', ['ps', '--filter', `label=com.docker.compose.project=${project}`, '--format', '{{json .}}'], end),
      );
    } catch {
      if (aborted()) return UNANSWERED;
      return { running: false, detail: 'not running (docker not reachable)', containers: [] };
    }
  }
  const containers = records.map(fromRecord);
  if (containers.length === 0) return { running: false, detail: 'not running', containers };
  const bad = containers.filter((c) => c.state !== 'running' || c.health === 'unhealthy');
  const detail =
    bad.length === 0
      ? `${containers.length} up`
      : `${containers.length - bad.length}/${containers.length} up; ${bad.map((c) => `${c.name} ${c.health || c.state}`).join(', ')}`;
  return { running: true, detail, containers };
}
