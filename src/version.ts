/** The version reported by `websocket_build_info` and the logs: package.json's, read once at start-up. */
import { readFileSync } from 'node:fs';

function readVersion(): string {
  for (const path of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(path, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'beacon' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // try the next location (src/ when run with tsx, dist/src/ when compiled)
    }
  }
  return '0.0.0';
}

export const VERSION = readVersion();
