/**
 * Values that are either ready or promised, chained without leaving the synchronous path when
 * they are ready. SQLite's `better-sqlite3` runs a transaction as one synchronous function, so a
 * shared algorithm that must also drive the asynchronous PostgreSQL and MySQL clients is written
 * once over {@link MaybePromise} and stays synchronous when every step is.
 *
 * Internal to the storage layer (not exported from the package entry points). `MaybePromise`
 * has no JSDoc internal tag: `BaseStorage`, which public driver classes extend, names it.
 */

/** A value now, or a promise of it. */
export type MaybePromise<T> = T | PromiseLike<T>;

/** True when `v` is a promise (or any thenable). @internal */
export function isPromiseLike<T>(v: MaybePromise<T>): v is PromiseLike<T> {
  return typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';
}

/** `f(v)` now when `v` is ready, else once it resolves. @internal */
export function chain<T, U>(v: MaybePromise<T>, f: (value: T) => MaybePromise<U>): MaybePromise<U> {
  return isPromiseLike(v) ? Promise.resolve(v).then(f) : f(v);
}
