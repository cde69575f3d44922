/**
 * Fault injection for tests: a `Storage` that forwards every call to a real driver and fails
 * the calls a test picks — by method name, optionally by a predicate on the params — once or
 * N times, BEFORE the real call (nothing written) or AFTER it committed (the reply is lost,
 * the write is not: the case fenced writes must survive), with errors shaped like the ones the
 * drivers raise (a connection reset, a deadlock, an oversize packet). It can also answer a call
 * itself instead of forwarding it (a heartbeat that claims success while the database is not
 * told). Every call is counted per method.
 *
 * The wrapper is a `Proxy`, so methods added to `Storage` later are forwarded (and countable)
 * without touching this file; optional methods exist on the wrapper exactly when the driver
 * has them.
 * @example
 * const faulty = new FaultyStorage(ts.storage);
 * faulty.fail({ method: 'jobFinishMany', error: 'connection-reset' });   // the next call fails
 * const queue = new Queue(faulty.storage);
 */
import { StorageError } from '../../src/errors.js';
import type { Storage } from '../../src/storage/storage.js';

/** Error shapes of real driver failures (as the drivers translate them: `StorageError` with a cause). */
export type FaultKind = 'connection-reset' | 'deadlock' | 'packet-too-large';

/** The names of the storage's methods. */
export type StorageMethod = { [K in keyof Storage]-?: NonNullable<Storage[K]> extends (...a: never[]) => unknown ? K : never }[keyof Storage];

/** The params object (first argument) of a storage method. */
export type ParamsOf<M extends StorageMethod> = Parameters<NonNullable<Storage[M]>>[0];

/** Which calls to fail, how often, when and with what. */
export interface FaultRule<M extends StorageMethod = StorageMethod> {
  /** The storage method to fail, e.g. `'jobFinishMany'`. */
  method: M;
  /** Only calls whose params pass this are affected. @default every call */
  when?: (params: ParamsOf<M>) => boolean;
  /** How many matching calls to affect; `Infinity` for all of them. @default 1 */
  times?: number;
  /**
   * `'before'`: fail without calling the driver (nothing is written). `'after'`: call the driver,
   * let it commit, then throw instead of returning its result (a lost reply).
   * @default 'before'
   */
  phase?: 'before' | 'after';
  /** The error to throw: a named kind or a factory. @default 'connection-reset' */
  error?: FaultKind | (() => Error);
  /** Answer the call with this (no driver call, no error) instead of failing it. */
  respond?: (params: ParamsOf<M>) => unknown;
}

/** A rule once installed: how often it fired so far. */
export interface FaultHandle {
  /** Matching calls it affected so far. */
  readonly fired: number;
  /** Stops affecting calls. */
  remove(): void;
}

interface ActiveRule {
  rule: FaultRule<StorageMethod>;
  left: number;
  fired: number;
  removed: boolean;
}

/** Builds the error a driver would raise for `kind`. */
export function faultError(kind: FaultKind): Error {
  switch (kind) {
    case 'connection-reset': {
      const cause = Object.assign(new Error('read ECONNRESET (injected)'), { code: 'ECONNRESET', errno: -104 });
      return new StorageError('injected: Connection terminated unexpectedly (ECONNRESET)', { cause, transient: true });
    }
    case 'deadlock': {
      const cause = Object.assign(new Error('deadlock detected (injected)'), { code: '40P01' });
      return new StorageError('injected: deadlock detected, retry budget spent (40P01)', { cause, transient: true });
    }
    case 'packet-too-large': {
      const cause = Object.assign(new Error("Got a packet bigger than 'max_allowed_packet' bytes (injected)"), { code: 'ER_NET_PACKET_TOO_LARGE', errno: 1153 });
      return new StorageError("injected: Got a packet bigger than 'max_allowed_packet' bytes (ER_NET_PACKET_TOO_LARGE)", { cause });
    }
  }
}

/** A storage wrapper that fails chosen calls. See the module docs. */
export class FaultyStorage {
  /** The wrapped storage to hand to a `Queue`, a worker or a scheduler. */
  readonly storage: Storage;
  readonly #rules: ActiveRule[] = [];
  readonly #calls = new Map<string, number>();

  /** @param inner the real driver; it is not closed by this wrapper */
  constructor(readonly inner: Storage) {
    const wrapped = new Map<PropertyKey, unknown>();
    this.storage = new Proxy(inner, {
      get: (target, prop) => {
        // Getters and methods run on the driver itself (its private fields are not on the proxy).
        const value: unknown = Reflect.get(target, prop, target);
        if (typeof value !== 'function' || typeof prop !== 'string') return value;
        let fn = wrapped.get(prop);
        if (fn === undefined) {
          fn = (...args: unknown[]) => this.#call(prop, (value as (...a: unknown[]) => unknown).bind(target), args);
          wrapped.set(prop, fn);
        }
        return fn;
      },
    });
  }

  /** Installs a rule; rules are checked in the order they were added (the first match applies). */
  fail<M extends StorageMethod>(rule: FaultRule<M>): FaultHandle {
    const r: ActiveRule = { rule: rule as unknown as FaultRule<StorageMethod>, left: rule.times ?? 1, fired: 0, removed: false };
    this.#rules.push(r);
    return {
      get fired() {
        return r.fired;
      },
      remove: () => {
        r.removed = true;
      },
    };
  }

  /** Removes every rule. */
  clear(): void {
    for (const r of this.#rules.splice(0)) r.removed = true;
  }

  /** Calls made to `method` through the wrapper so far (failed ones included). */
  calls(method: StorageMethod): number {
    return this.#calls.get(method) ?? 0;
  }

  #match(method: string, params: unknown): ActiveRule | undefined {
    for (const r of this.#rules) {
      if (r.removed || r.left <= 0 || r.rule.method !== method) continue;
      if (r.rule.when && !r.rule.when(params as never)) continue;
      r.left--;
      r.fired++;
      return r;
    }
    return undefined;
  }

  async #call(method: string, real: (...a: unknown[]) => unknown, args: unknown[]): Promise<unknown> {
    this.#calls.set(method, (this.#calls.get(method) ?? 0) + 1);
    const hit = this.#match(method, args[0]);
    if (hit === undefined) return real(...args);
    const { rule } = hit;
    if (rule.respond) return rule.respond(args[0] as never);
    const error = (): Error => (typeof rule.error === 'function' ? rule.error() : faultError(rule.error ?? 'connection-reset'));
    if ((rule.phase ?? 'before') === 'before') throw error();
    await real(...args);
    throw error();
  }
}
