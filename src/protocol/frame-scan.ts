/**
 * One linear pass over a client frame's text, before any JSON work: its nesting depth (V8's JSON.parse costs more than
 * linear time on deep nesting and JSON.stringify overflows the stack, so deep frames are refused here) and where the
 * top-level `data` value lies, so a client event's data is passed through as the client wrote it, never re-serialized.
 * Pure: no I/O, no state.
 */

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

/** Scans `text` once; stops as soon as the nesting exceeds `maxDepth`. */
export function scanFrame(text: string, maxDepth: number): FrameScan {
  let depth = 0;
  let dataStart = -1;
  let dataEnd = -1;
  // Top-level object state: the key just read, and where its value started.
  let expectKey = false;
  let key: string | undefined;
  let valueStart = -1;
  const endValue = (end: number): void => {
    if (key === 'data' && valueStart >= 0) {
      let e = end;
      while (e > valueStart && isSpace(text.charCodeAt(e - 1))) e--;
      dataStart = valueStart;
      dataEnd = e;
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
  return { depthOk: true, dataStart, dataEnd };
}
