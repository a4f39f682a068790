/**
 * A stand-in OTLP/HTTP trace collector for tests: `POST /v1/traces` bodies are decoded with the protobuf definitions
 * generated from the official opentelemetry-proto files (the `otlp-proto-root` dev dependency is
 * @opentelemetry/otlp-transformer 0.205, the last line that shipped them as a protobufjs module; the 0.223 runtime
 * serialises by hand and ships no decoder). JSON bodies (`http/json`) are accepted too.
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { createRequire } from 'node:module';

export type AttributeValue = string | number | boolean | null | AttributeValue[];

/** One received span, ids as lowercase hex. */
export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  /** '' for a root span. */
  parentSpanId: string;
  name: string;
  /** OTLP SpanKind: 1 internal, 2 server, 3 client, 4 producer, 5 consumer. */
  kind: number;
  startTimeUnixNano: bigint;
  endTimeUnixNano: bigint;
  attributes: Record<string, AttributeValue>;
  links: Array<{ traceId: string; spanId: string; attributes: Record<string, AttributeValue> }>;
  status: { code: number; message: string };
  resource: Record<string, AttributeValue>;
  scope: string;
}

/** OTLP SpanKind values. */
export const SpanKindOtlp = { INTERNAL: 1, SERVER: 2, CLIENT: 3, PRODUCER: 4, CONSUMER: 5 } as const;

export interface OtlpRequest {
  contentType: string;
  /** The request's headers as Node received them (lowercase names). */
  headers: IncomingHttpHeaders;
  spans: ReceivedSpan[];
}

export interface OtlpReceiver {
  /** Base URL, for OTEL_EXPORTER_OTLP_ENDPOINT. */
  url: string;
  requests: OtlpRequest[];
  spans(): ReceivedSpan[];
  /** Resolves once `predicate` holds, polling every 20 ms; rejects after `timeoutMs`. */
  waitFor(predicate: (spans: ReceivedSpan[]) => boolean, timeoutMs?: number): Promise<ReceivedSpan[]>;
  /** From now on answer every export with `status` (and record nothing); `undefined` goes back to accepting them. */
  answerWith(status: number | undefined): void;
  /** From now on leave every export unanswered (an export that hangs), until `release()`. */
  hold(): void;
  /** Stops holding, and handles the held exports as if they just arrived; returns how many there were. */
  release(): number;
  close(): Promise<void>;
}

// --- decoding -------------------------------------------------------------------------------------------------------

interface ProtoType {
  decode(bytes: Uint8Array): unknown;
  toObject(message: unknown, options: Record<string, unknown>): unknown;
}

const require = createRequire(import.meta.url);
const root = require('otlp-proto-root/build/src/generated/root.js') as {
  opentelemetry: { proto: { collector: { trace: { v1: { ExportTraceServiceRequest: ProtoType } } } } };
};
const ExportTraceServiceRequest = root.opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest;

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (typeof v === 'object' && v !== null ? (v as Obj) : {});
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const str = (v: unknown): string => (typeof v === 'string' ? v : '');

function hex(v: unknown, base64: boolean): string {
  if (typeof v !== 'string' || v === '') return '';
  return base64 ? Buffer.from(v, 'base64').toString('hex') : v.toLowerCase();
}

function anyValue(v: unknown): AttributeValue {
  const o = obj(v);
  if ('stringValue' in o) return str(o.stringValue);
  if ('boolValue' in o) return o.boolValue === true;
  if ('intValue' in o) return Number(o.intValue);
  if ('doubleValue' in o) return Number(o.doubleValue);
  if ('arrayValue' in o) return arr(obj(o.arrayValue).values).map(anyValue);
  return null;
}

function attributes(list: unknown): Record<string, AttributeValue> {
  const out: Record<string, AttributeValue> = {};
  for (const kv of arr(list)) out[str(obj(kv).key)] = anyValue(obj(kv).value);
  return out;
}

/** Flattens an ExportTraceServiceRequest (as a plain object; ids base64 for protobuf, hex for JSON) into spans. */
function flatten(request: unknown, base64Ids: boolean): ReceivedSpan[] {
  const spans: ReceivedSpan[] = [];
  for (const rs of arr(obj(request).resourceSpans)) {
    const resource = attributes(obj(obj(rs).resource).attributes);
    for (const ss of arr(obj(rs).scopeSpans)) {
      const scope = str(obj(obj(ss).scope).name);
      for (const raw of arr(obj(ss).spans)) {
        const s = obj(raw);
        spans.push({
          traceId: hex(s.traceId, base64Ids),
          spanId: hex(s.spanId, base64Ids),
          parentSpanId: hex(s.parentSpanId, base64Ids),
          name: str(s.name),
          kind: Number(s.kind ?? 0),
          startTimeUnixNano: BigInt(String(s.startTimeUnixNano ?? '0')),
          endTimeUnixNano: BigInt(String(s.endTimeUnixNano ?? '0')),
          attributes: attributes(s.attributes),
          links: arr(s.links).map((l) => ({
            traceId: hex(obj(l).traceId, base64Ids),
            spanId: hex(obj(l).spanId, base64Ids),
            attributes: attributes(obj(l).attributes),
          })),
          status: { code: Number(obj(s.status).code ?? 0), message: str(obj(s.status).message) },
          resource,
          scope,
        });
      }
    }
  }
  return spans;
}

/** Decodes one OTLP/HTTP protobuf trace export body. */
export function decodeTraceRequest(body: Uint8Array): ReceivedSpan[] {
  const message = ExportTraceServiceRequest.decode(body);
  const plain = ExportTraceServiceRequest.toObject(message, { longs: String, enums: Number, bytes: String, defaults: false });
  return flatten(plain, true);
}

// --- server ---------------------------------------------------------------------------------------------------------

/** Starts a collector on a free loopback port. */
export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const requests: OtlpRequest[] = [];
  let forcedStatus: number | undefined;
  let held: Array<() => void> | undefined;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => (held === undefined ? handle() : held.push(handle)));
    const handle = (): void => {
      let body = Buffer.concat(chunks);
      if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
      const contentType = String(req.headers['content-type'] ?? '');
      if (req.method !== 'POST' || req.url !== '/v1/traces') {
        res.statusCode = 404;
        res.end();
        return;
      }
      if (forcedStatus !== undefined) {
        res.statusCode = forcedStatus;
        res.end();
        return;
      }
      try {
        const spans = contentType.includes('json')
          ? flatten(JSON.parse(body.toString('utf8')), false)
          : decodeTraceRequest(body);
        requests.push({ contentType, headers: req.headers, spans });
        res.statusCode = 200;
        res.setHeader('content-type', contentType.includes('json') ? 'application/json' : 'application/x-protobuf');
        res.end(contentType.includes('json') ? '{}' : undefined);
      } catch (err) {
        res.statusCode = 400;
        res.end(String(err));
      }
    };
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const all = (): ReceivedSpan[] => requests.flatMap((r) => r.spans);
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    spans: all,
    async waitFor(predicate, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (!predicate(all())) {
        if (Date.now() > deadline) throw new Error(`otlp receiver: condition not met within ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 20));
      }
      return all();
    },
    answerWith(status) {
      forcedStatus = status;
    },
    hold() {
      held ??= [];
    },
    release() {
      const waiting = held ?? [];
      held = undefined;
      for (const handle of waiting) handle();
      return waiting.length;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
