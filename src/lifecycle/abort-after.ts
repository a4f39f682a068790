/**
 * A bound on one outgoing request: a signal that aborts after a time, or as soon as a longer-lived signal (the shutdown)
 * aborts, whichever comes first.
 *
 * Not `AbortSignal.any([parent, AbortSignal.timeout(ms)])`: `any` holds its sources weakly, and on Node 20 (up to at
 * least 20.20, nodejs/node#57736) a timeout signal nothing else references can be garbage-collected before it fires. After
 * a GC the request then had no time bound at all: a webhook receiver that accepted the connection and never answered held
 * the request, and with it the webhook's queue, until the process stopped, with nothing retried, failed or counted. Here
 * the timer is an ordinary `setTimeout`, which Node's timer list holds until it fires or is cleared, and it holds the
 * controller; the caller clears it once the request settled.
 */

/** A signal bounded in time, and how to let go of its timer and of the parent's listener once the work is done. */
export interface BoundedSignal {
  readonly signal: AbortSignal;
  /** Stops the timer and leaves the parent; the signal then never aborts. Call it once the work settled. */
  clear(): void;
}

/**
 * A signal that aborts after `ms` with a `TimeoutError` DOMException (as `AbortSignal.timeout` does: the same name and
 * message reach the caller's error handling and logs), or with `parent`'s reason when it aborts first. The timer does not
 * hold the process open (as `AbortSignal.timeout`'s does not); the request it bounds does, while in flight.
 */
export function abortAfter(ms: number, parent?: AbortSignal): BoundedSignal {
  const controller = new AbortController();
  if (parent?.aborted) {
    controller.abort(parent.reason);
    return { signal: controller.signal, clear: () => {} };
  }
  const onParent = (): void => {
    clearTimeout(timer);
    controller.abort(parent?.reason);
  };
  const timer = setTimeout(() => {
    parent?.removeEventListener('abort', onParent);
    controller.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError'));
  }, ms);
  timer.unref();
  parent?.addEventListener('abort', onParent, { once: true });
  return {
    signal: controller.signal,
    clear() {
      clearTimeout(timer);
      parent?.removeEventListener('abort', onParent);
    },
  };
}
