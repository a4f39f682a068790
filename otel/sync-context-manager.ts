/**
 * A context manager without async hooks: `context.with(ctx, fn)` makes `ctx` active for the synchronous run of `fn` only.
 *
 * Why: the default AsyncLocalStorage context manager (async hooks on Node 20, run for every async resource the process
 * creates) and the HTTP instrumentation together raised the server CPU per delivered message by tens of percent even
 * with no span exported (bench/RESULTS.md, telemetry-cost). Beacon always uses this one: its spans take explicit parents,
 * and the only consumers of the active context are synchronous (log lines written inside `withSpan`). Code that goes on
 * after an `await` takes `context.active()` before it and re-enters it with `context.with` (src/realtime/subscribe.ts).
 */
import { ROOT_CONTEXT, type Context, type ContextManager } from '@opentelemetry/api';

export class SyncContextManager implements ContextManager {
  private current: Context = ROOT_CONTEXT;

  active(): Context {
    return this.current;
  }

  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(
    context: Context,
    fn: F,
    thisArg?: ThisParameterType<F>,
    ...args: A
  ): ReturnType<F> {
    const previous = this.current;
    this.current = context;
    try {
      return fn.call(thisArg, ...args);
    } finally {
      this.current = previous;
    }
  }

  bind<T>(context: Context, target: T): T {
    if (typeof target !== 'function') return target;
    const run = target as unknown as (...args: unknown[]) => unknown;
    const with_ = this.with.bind(this);
    const bound = function (this: unknown, ...args: unknown[]): unknown {
      return with_(context, () => run.apply(this, args));
    };
    return bound as unknown as T;
  }

  enable(): this {
    return this;
  }

  disable(): this {
    this.current = ROOT_CONTEXT;
    return this;
  }
}
