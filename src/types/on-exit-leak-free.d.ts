/** Exit hooks that hold their object weakly (pino's own, for its destinations); the package ships no types. */
declare module 'on-exit-leak-free' {
  export function register<T extends object>(obj: T, fn: (obj: T, event: 'exit' | 'beforeExit') => void): void;
  export function unregister(obj: object): void;
}
