/**
 * Every log line's `time` is the ISO 8601 string pino's `stdTimeFunctions.isoTime` writes, byte for byte, whatever order
 * the instants come in (a clock that steps back included).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { isoTime, isoTimeField } from '../../src/telemetry/log-time.js';

const expected = (ms: number): string => `,"time":"${new Date(ms).toISOString()}"`;

describe('log time', () => {
  it('writes what a new Date would, on every millisecond boundary of the field', () => {
    const base = Date.UTC(2026, 11, 2, 5, 41, 7);
    for (const ms of [0, 1, 9, 10, 11, 99, 100, 101, 998, 999, 1000, 1001, 59_999, 60_000, 86_399_999, 86_400_000]) {
      assert.equal(isoTimeField(base + ms), expected(base + ms), String(base + ms));
    }
  });

  it('writes what a new Date would for instants in any order, across the years it formats with four digits', () => {
    let seed = 12345;
    const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31);
    const lo = new Date('0000-01-01T00:00:00.000Z').getTime();
    const hi = new Date('9999-12-31T23:59:59.999Z').getTime();
    for (let i = 0; i < 20_000; i++) {
      const t = lo + Math.floor((next() / 2 ** 31) * (hi - lo));
      // Pairs inside one second and a step back: the cached second must never leak into another.
      for (const u of [t, t + 1, t - 1, t + 999, t - 1000]) assert.equal(isoTimeField(u), expected(u), String(u));
    }
    for (const edge of [lo, hi, 0, -1, -999, -1000, -1001]) assert.equal(isoTimeField(edge), expected(edge), String(edge));
  });

  it('writes years beyond four digits as a new Date would', () => {
    for (const t of [new Date('-000001-06-01T00:00:00.123Z').getTime(), new Date('+010000-01-01T00:00:00.007Z').getTime()]) {
      assert.equal(isoTimeField(t), expected(t));
      assert.equal(isoTimeField(t + 1), expected(t + 1));
    }
  });

  it('has the shape of pino’s own isoTime', () => {
    const ours = isoTime();
    const theirs = pino.stdTimeFunctions.isoTime();
    assert.match(ours, /^,"time":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"$/);
    assert.equal(ours.length, theirs.length);
    assert.ok(Math.abs(Date.parse(ours.slice(9, -1)) - Date.parse(theirs.slice(9, -1))) < 1000);
  });
});
