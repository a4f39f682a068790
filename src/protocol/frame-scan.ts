/**
 * One linear pass over a client frame's text, before any JSON work: its nesting depth (V8's JSON.parse costs more than
 * linear time on deep nesting and JSON.stringify overflows the stack, so deep frames are refused here) and where the
 * top-level `data` value lies, so a client event's data is passed through as the client wrote it, never re-serialized.
 * A `data` string that decode.ts parses as JSON (see `PARSED_DATA_EVENTS`) is held to the same depth as if it had been
 * written in the frame. Pure: no I/O, no state.
 */
import { Events } from './events.js';

/** What the scan found; `data…` is meaningful only for text that JSON.parse accepts. */
export interface FrameScan {
  /** False when the nesting went deeper than allowed (the scan stopped there). */
  depthOk: boolean;
  /** Start and end (exclusive) of the last top-level `"data"` member's value in the text; -1 when there is none. */
  dataStart: number;
  dataEnd: number;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const COLON = 0x3a;
const COMMA = 0x2c;

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

/** Index just past the string whose opening quote is at `start` (or the text's length if it never closes). */
function skipString(text: string, start: number): number {
  let i = start + 1;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) return i + 1;
    i += c === BACKSLASH ? 2 : 1;
  }
  return text.length;
}

/** The value of a JSON string literal (`"…"` with its quotes): escapes are rare in keys, decoded only when present. */
function keyValue(literal: string): string | undefined {
  if (!literal.includes('\\')) return literal.slice(1, -1);
  try {
    const value: unknown = JSON.parse(literal);
    return typeof value === 'string' ? value : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The events whose `data`, when it comes JSON-encoded as a string, decode.ts parses (before any signature is checked).
 * A client event's data string is passed through unparsed, so its contents are the client's own business.
 */
const PARSED_DATA_EVENTS: ReadonlySet<string> = new Set([Events.Subscribe, Events.Unsubscribe, Events.Signin]);

const LETTER_U = 0x75;

/** The value of the four hex digits of `text` at `at`, or -1 when they are not (the frame is not JSON then). */
function hex4(text: string, at: number): number {
  let value = 0;
  for (let k = at; k < at + 4; k++) {
    const c = text.charCodeAt(k) | 0x20; // A-F as a-f; past the end NaN | 0x20 is a space
    const digit = c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x66 ? c - 0x57 : -1;
    if (digit < 0) return -1;
    value = value * 16 + digit;
  }
  return value;
}

/**
 * True when the JSON that the string literal at `start`…`end` of `text` (quotes and escapes as the frame has them)
 * encodes nests no deeper than `maxDepth`. The literal is read once, its escapes decoded as JSON.parse decodes them (an
 * escaped `\u005b` is as much a bracket as `[`), without building its value: no copy of a string as long as the frame.
 * Brackets inside the encoded JSON's own strings do not count. Stops at the first level too deep.
 */
function encodedNestingWithin(text: string, start: number, end: number, maxDepth: number): boolean {
  let depth = 0;
  let inString = false;
  let escaped = false;
  let i = start + 1;
  const last = end - 1;
  while (i < last) {
    let c = text.charCodeAt(i);
    if (c === BACKSLASH) {
      // `\"` and `\\` stand for themselves, `\uXXXX` for its code; the rest (`\n`, `\/`, …) for no bracket nor quote.
      const next = text.charCodeAt(i + 1);
      if (next === LETTER_U) {
        c = hex4(text, i + 2);
        i += 6;
      } else {
        c = next === QUOTE || next === BACKSLASH ? next : 0;
        i += 2;
      }
    } else {
      i++;
    }
    if (inString) {
      if (escaped) escaped = false;
      else if (c === BACKSLASH) escaped = true;
      else if (c === QUOTE) inString = false;
    } else if (c === QUOTE) {
      inString = true;
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (++depth > maxDepth) return false;
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      depth--;
    }
  }
  return true;
}

/** Scans `text` once; stops as soon as the nesting exceeds `maxDepth`. */
export function scanFrame(text: string, maxDepth: number): FrameScan {
  let depth = 0;
  let dataStart = -1;
  let dataEnd = -1;
  let eventStart = -1;
  let eventEnd = -1;
  // Top-level object state: the key just read, and where its value started.
  let expectKey = false;
  let key: string | undefined;
  let valueStart = -1;
  const endValue = (end: number): void => {
    if ((key === 'data' || key === 'event') && valueStart >= 0) {
      let e = end;
      while (e > valueStart && isSpace(text.charCodeAt(e - 1))) e--;
      if (key === 'data') {
        dataStart = valueStart;
        dataEnd = e;
      } else {
        eventStart = valueStart;
        eventEnd = e;
      }
    }
    key = undefined;
    valueStart = -1;
  };
  let i = 0;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      const end = skipString(text, i);
      if (depth === 1 && expectKey) {
        key = keyValue(text.slice(i, end));
        expectKey = false;
      } else if (depth === 1 && valueStart < 0 && key !== undefined) {
        valueStart = i;
      }
      i = end;
      continue;
    }
    if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (depth === 1 && valueStart < 0 && key !== undefined) valueStart = i;
      depth++;
      if (depth > maxDepth) return { depthOk: false, dataStart: -1, dataEnd: -1 };
      if (depth === 1) expectKey = c === OPEN_BRACE;
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      if (depth === 1) endValue(i);
      depth--;
    } else if (depth === 1) {
      if (c === COMMA) {
        endValue(i);
        expectKey = true;
      } else if (c !== COLON && !isSpace(c) && valueStart < 0 && key !== undefined) {
        valueStart = i;
      }
    }
    i++;
  }
  // `"data":"{\"channel\":\"x\",\"a\":[[[…"`: the nesting the loop skipped as string contents, JSON.parse would meet
  // in decode.ts. It counts from the depth `data` itself is at (1), as the same value written as an object would.
  if (
    dataStart >= 0 &&
    text.charCodeAt(dataStart) === QUOTE &&
    parsesDataString(text, eventStart, eventEnd) &&
    !encodedNestingWithin(text, dataStart, dataEnd, maxDepth - 1)
  ) {
    return { depthOk: false, dataStart: -1, dataEnd: -1 };
  }
  return { depthOk: true, dataStart, dataEnd };
}

/** True when the top-level `event` (its literal at `start`…`end`) is one whose `data` string decode.ts parses. */
function parsesDataString(text: string, start: number, end: number): boolean {
  if (start < 0 || text.charCodeAt(start) !== QUOTE) return false;
  const event = keyValue(text.slice(start, end));
  return event !== undefined && PARSED_DATA_EVENTS.has(event);
}
