/** Event names of the Pusher protocol 7 wire format. */
export const Events = {
  ConnectionEstablished: 'pusher:connection_established',
  Error: 'pusher:error',
  Ping: 'pusher:ping',
  Pong: 'pusher:pong',
  Subscribe: 'pusher:subscribe',
  Unsubscribe: 'pusher:unsubscribe',
  Signin: 'pusher:signin',
  SigninSuccess: 'pusher:signin_success',
  SubscriptionError: 'pusher:subscription_error',
  CacheMiss: 'pusher:cache_miss',
  SubscriptionSucceeded: 'pusher_internal:subscription_succeeded',
  SubscriptionCount: 'pusher_internal:subscription_count',
  MemberAdded: 'pusher_internal:member_added',
  MemberRemoved: 'pusher_internal:member_removed',
  WatchlistEvents: 'pusher_internal:watchlist_events',
} as const;

/** Client events carry this prefix; anything else from a client must be a `pusher:` event. */
export const CLIENT_EVENT_PREFIX = 'client-';
