/** The kinds of Pusher channel, by name prefix (protocol/channel-name.ts); also the bounded `channel_type` metric label. */
export type ChannelType = 'public' | 'private' | 'presence' | 'encrypted' | 'cache';

/** Every channel type, in a fixed order (gauges report each, zeros included). */
export const CHANNEL_TYPES: readonly ChannelType[] = ['public', 'private', 'presence', 'encrypted', 'cache'];
