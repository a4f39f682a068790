import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { scanFrame } from '../../src/protocol/frame-scan.js';

const dataOf = (text: string): string | undefined => {
  const scan = scanFrame(text, 64);
  return scan.dataStart < 0 ? undefined : text.slice(scan.dataStart, scan.dataEnd);
};

test('finds the raw text of the top-level data member, whatever the spacing, order and escapes', () => {
  assert.equal(dataOf('{"event":"client-a","channel":"private-a","data":{"x":[1,2,{"y":"}"}]}}'), '{"x":[1,2,{"y":"}"}]}');
  assert.equal(dataOf('{ "data" :  [1e2, "a\\"b"]  , "event":"e"}'), '[1e2, "a\\"b"]');
  assert.equal(dataOf('{"event":"e","data":"a string"}'), '"a string"');
  assert.equal(dataOf('{"event":"e","data":12.5e-3}'), '12.5e-3');
  assert.equal(dataOf('{"event":"e","data":null}'), 'null');
  // Escaped key, nested "data" keys that are not top-level, duplicate keys (the last wins, as in JSON.parse).
  assert.equal(dataOf('{"d\\u0061ta":1,"event":"e"}'), '1');
  assert.equal(dataOf('{"event":"e","x":{"data":1},"y":["data",2]}'), undefined);
  assert.equal(dataOf('{"data":1,"data":[2]}'), '[2]');
  assert.equal(dataOf('[{"data":1}]'), undefined);
  assert.equal(dataOf('{"event":"e"}'), undefined);
});

test('refuses nesting deeper than the limit, counting objects and arrays but not brackets inside strings', () => {
  assert.equal(scanFrame('{"data":' + '['.repeat(31) + ']'.repeat(31) + '}', 32).depthOk, true);
  assert.equal(scanFrame('{"data":' + '['.repeat(32) + ']'.repeat(32) + '}', 32).depthOk, false);
  assert.equal(scanFrame('{"data":"' + '['.repeat(5000) + '"}', 32).depthOk, true);
  assert.equal(scanFrame('['.repeat(1_000_000), 32).depthOk, false);
});

test('agrees with JSON.parse on random JSON: the data text parses to the data value', () => {
  fc.assert(
    fc.property(fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 5 })), fc.jsonValue({ maxDepth: 5 }), fc.boolean(), (rest, data, pretty) => {
      const frame = { ...rest, data };
      const text = JSON.stringify(frame, null, pretty ? 2 : undefined);
      const parsed = JSON.parse(text) as { data: unknown };
      const raw = dataOf(text);
      assert.ok(raw !== undefined);
      assert.deepEqual(JSON.parse(raw), parsed.data);
    }),
    { numRuns: 300 },
  );
});
