/**
 * MAX_JSON_DEPTH over a `data` that comes JSON-encoded as a string: the frame scan skips string contents, yet decode.ts
 * parses that string for `pusher:subscribe`, `pusher:unsubscribe` and `pusher:signin`. The scan holds it to the depth the
 * same value would have written as an object, so a deep string cannot buy a superlinear JSON.parse the object cannot.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { scanFrame } from '../../src/protocol/frame-scan.js';

const PARSED = ['pusher:subscribe', 'pusher:unsubscribe', 'pusher:signin'];

/** `data` nested `levels` deep (arrays) inside a subscribe's object. */
const nested = (levels: number): unknown => {
  let value: unknown = 1;
  for (let i = 0; i < levels; i++) value = [value];
  return { channel: 'x', a: value };
};

/** The frame of `event` carrying `data` written as an object, and JSON-encoded as a string. */
const asObject = (event: string, data: unknown): string => JSON.stringify({ event, data });
const asString = (event: string, data: unknown): string => JSON.stringify({ event, data: JSON.stringify(data) });

test('a data string of subscribe, unsubscribe and signin is refused exactly where the same data as an object is', () => {
  // Frame depth: the frame (1) + data's object (1) + the arrays: 30 arrays is 32 levels, 31 is one too many.
  for (const event of PARSED) {
    assert.equal(scanFrame(asObject(event, nested(30)), 32).depthOk, true, `${event} object at the limit`);
    assert.equal(scanFrame(asString(event, nested(30)), 32).depthOk, true, `${event} string at the limit`);
    assert.equal(scanFrame(asObject(event, nested(31)), 32).depthOk, false, `${event} object over the limit`);
    assert.equal(scanFrame(asString(event, nested(31)), 32).depthOk, false, `${event} string over the limit`);
  }
});

test('the reported repro: 49 000 levels in a subscribe data string are refused, and the scan finds no data to pass on', () => {
  const text = `{"event":"pusher:subscribe","data":"{\\"channel\\":\\"x\\",\\"a\\":${'['.repeat(49_000)}${']'.repeat(49_000)}}"}`;
  assert.equal(typeof (JSON.parse(text) as { data: unknown }).data, 'string');
  assert.deepEqual(scanFrame(text, 32), { depthOk: false, dataStart: -1, dataEnd: -1 });
});

test('the string is read as JSON.parse reads it: escaped brackets count, brackets inside its own strings do not', () => {
  const escaped = `{"event":"pusher:subscribe","data":"{\\"channel\\":\\"x\\",\\"a\\":${'\\u005b'.repeat(40)}${'\\u005d'.repeat(40)}}"}`;
  assert.equal(scanFrame(escaped, 32).depthOk, false);
  const quoted = asString('pusher:subscribe', { channel: 'x', note: '['.repeat(5000) });
  assert.equal(scanFrame(quoted, 32).depthOk, true);
  // An escaped event name is the event JSON.parse sees; the last `event` and `data` keys win, as in JSON.parse.
  const deep = JSON.stringify(JSON.stringify(nested(40)));
  assert.equal(scanFrame(`{"event":"pusher:sub\\u0073cribe","data":${deep}}`, 32).depthOk, false);
  assert.equal(scanFrame(`{"event":"client-a","data":${deep},"event":"pusher:signin"}`, 32).depthOk, false);
  assert.equal(scanFrame(`{"event":"pusher:signin","data":${deep},"data":{}}`, 32).depthOk, true);
});

test('a data string nobody parses is left alone: client events, pings, frames without an event or that are not JSON', () => {
  const deep = JSON.stringify(nested(40));
  const clientEvent = asString('client-typing', nested(40));
  const scan = scanFrame(clientEvent, 32);
  assert.equal(scan.depthOk, true);
  assert.equal(clientEvent.slice(scan.dataStart, scan.dataEnd), JSON.stringify(deep), 'passed through as written');
  assert.equal(scanFrame(asString('pusher:ping', nested(40)), 32).depthOk, true);
  assert.equal(scanFrame(`{"data":${JSON.stringify(deep)}}`, 32).depthOk, true);
  assert.equal(scanFrame(`{"event":["pusher:subscribe"],"data":${JSON.stringify(deep)}}`, 32).depthOk, true);
  assert.equal(scanFrame(`{"event":"pusher:subscribe","data":"${'['.repeat(40)}`, 32).depthOk, true, 'unterminated: JSON.parse refuses it');
});

/** A JSON string literal of `value` with every UTF-16 unit written as a `\\uXXXX` escape. */
const allEscaped = (value: string): string =>
  `"${Array.from({ length: value.length }, (_, i) => `\\u${value.charCodeAt(i).toString(16).padStart(4, '0')}`).join('')}"`;

test('agrees with the object form on random data and limits, however the string is escaped', () => {
  fc.assert(
    fc.property(
      fc.constantFrom(...PARSED),
      // Not a string: `asObject` of a string is no object form but a data string itself, one encoding short of
      // `asString`'s (data "[[": that string's content is read as JSON, unbalanced, and refused over a depth of 2; the
      // twice-encoded "\"[[\"" is a string literal, depth 1). Found by CI with seed -817015658.
      fc.jsonValue({ maxDepth: 8 }).filter((data) => typeof data !== 'string'),
      fc.integer({ min: 2, max: 10 }),
      (event, data, maxDepth) => {
        const expected = scanFrame(asObject(event, data), maxDepth).depthOk;
        assert.equal(scanFrame(asString(event, data), maxDepth).depthOk, expected);
        const escaped = `{"event":"${event}","data":${allEscaped(JSON.stringify(data))}}`;
        assert.equal(JSON.parse(escaped).data, JSON.stringify(data), 'the escaped literal is the same string');
        assert.equal(scanFrame(escaped, maxDepth).depthOk, expected);
      },
    ),
    { numRuns: 500 },
  );
});
