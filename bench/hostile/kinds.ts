/** The floods of the hostile-neighbour benchmark, one per refusal path of the inbound budget (issue: "each flood kind"). */
export const FLOOD_KINDS = ['deep-nesting', 'subscribe', 'invalid', 'oversized', 'bad-auth'] as const;

/** One kind of hostile traffic. */
export type FloodKind = (typeof FLOOD_KINDS)[number];

/** What each flood sends, for the results' notes. */
export const FLOOD_DESCRIPTIONS: Record<FloodKind, string> = {
  'deep-nesting': 'deep-nesting: client events on a subscribed private channel whose data is `[` nested 5000 deep (~10 KB a frame)',
  subscribe: 'subscribe: subscribes to ever new 160-character public channel names',
  invalid: 'invalid: malformed frames (not JSON, truncated JSON, wrong types, unknown events), in turn',
  oversized: 'oversized: one frame just over twice MAX_PAYLOAD_BYTES (the server closes with 1009), then a new connection, again',
  'bad-auth': 'bad-auth: subscribes to private channels with a wrong signature',
};
