/**
 * Process-level instruments that the runtime instrumentation does not cover, under the names Prometheus users know from
 * every other exporter (`process_*`): CPU seconds, resident memory, open and maximum file descriptors, start time.
 * `process_open_fds` matters here more than usual: every WebSocket connection holds one, so it tracks
 * `websocket_connections` plus a small constant, and a gap between the two points at leaked sockets.
 *
 * All values are read at collection time (one batch callback per scrape), so they cost nothing between scrapes.
 * The file-descriptor gauges exist only where `/proc/self` does (Linux); elsewhere they are simply not reported.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { metrics, type Meter } from '@opentelemetry/api';
import { registerActiveResources } from './active-resources.js';

/** Counts entries of /proc/self/fd; undefined when the platform has no procfs. */
export function countOpenFds(): number | undefined {
  try {
    // Linux ≥ 6.2 reports the count as the directory's size: one stat instead of listing every socket (10 000 connections
    // made the listing ~10 ms of every scrape). Older kernels report 0 there: list them.
    const size = statSync('/proc/self/fd').size;
    if (size > 0) return size;
    // The directory handle used by readdirSync is itself listed; subtract it.
    return readdirSync('/proc/self/fd').length - 1;
  } catch {
    return undefined;
  }
}

/** The soft "Max open files" limit from /proc/self/limits; undefined when unavailable or unlimited. */
export function readMaxFds(): number | undefined {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const soft = line?.slice('Max open files'.length).trim().split(/\s+/)[0];
    const n = soft === undefined ? Number.NaN : Number(soft);
    return Number.isFinite(n) ? n : undefined;
  } catch {
    return undefined;
  }
}

/** The resident set size, or undefined when it cannot be read (no descriptor left to open /proc/self/stat with). */
export function residentBytes(read: () => number = process.memoryUsage.rss): number | undefined {
  try {
    return read();
  } catch {
    return undefined;
  }
}

/**
 * Declares the `process_*` instruments and `v8js_resource_active` (active-resources.ts) on `meter` (the global one by
 * default). Call once, after the SDK started.
 */
export function registerProcessMetrics(meter: Meter = metrics.getMeter('beacon-process')): void {
  registerActiveResources(meter);
  const cpu = meter.createObservableCounter('process_cpu_seconds_total', {
    description: 'Total user and system CPU time spent, in seconds',
    unit: 's',
  });
  const cpuUser = meter.createObservableCounter('process_cpu_user_seconds_total', {
    description: 'User CPU time spent, in seconds',
    unit: 's',
  });
  const cpuSystem = meter.createObservableCounter('process_cpu_system_seconds_total', {
    description: 'System CPU time spent, in seconds',
    unit: 's',
  });
  const resident = meter.createObservableGauge('process_resident_memory_bytes', {
    description: 'Resident set size, in bytes',
    unit: 'By',
  });
  const openFds = meter.createObservableGauge('process_open_fds', { description: 'Open file descriptors' });
  const maxFds = meter.createObservableGauge('process_max_fds', { description: 'Maximum open file descriptors' });
  const startTime = meter.createObservableGauge('process_start_time_seconds', {
    description: 'Start time of the process since the Unix epoch, in seconds',
    unit: 's',
  });
  const startedAtSeconds = Math.round((Date.now() - process.uptime() * 1000) / 1000);
  const maxFdsValue = readMaxFds();

  meter.addBatchObservableCallback(
    (result) => {
      const usage = process.cpuUsage();
      result.observe(cpu, (usage.user + usage.system) / 1e6);
      result.observe(cpuUser, usage.user / 1e6);
      result.observe(cpuSystem, usage.system / 1e6);
      // The descriptor count first, read without opening one where the kernel allows (a stat, Linux ≥ 6.2): with every
      // descriptor taken, reading the RSS (libuv opens /proc/self/stat) throws EMFILE, which lost the whole callback —
      // `process_open_fds` froze at its last value exactly when it mattered, and every scrape logged an error. Without a
      // descriptor the RSS is left out (and on older kernels, whose count needs a directory listing, the count too).
      const fds = countOpenFds();
      if (fds !== undefined) result.observe(openFds, fds);
      const rss = residentBytes();
      if (rss !== undefined) result.observe(resident, rss);
      if (maxFdsValue !== undefined) result.observe(maxFds, maxFdsValue);
      result.observe(startTime, startedAtSeconds);
    },
    [cpu, cpuUser, cpuSystem, resident, openFds, maxFds, startTime],
  );
}
