// Client-side round-trip counting: wraps pg.Client.prototype.query of every copy
// of node-postgres the process can load (the bench's own and the repo root's, which
// our library resolves). Pool.query goes through Client.query, so each network
// round trip (simple query, or parse/bind/execute/sync flight) is counted once.
//
// Round trips are also attributed to the storage operation that made them: a target that
// runs each storage call inside `opContext.run(name, ...)` (see targets/sdj-common.mjs) gets
// them tallied per operation name (`byOp()`).
import { AsyncLocalStorage } from 'node:async_hooks';
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const ROOTS = [path.join(here, '..'), path.join(here, '..', '..')];

let installed;

/** The storage operation running in the current async context (its name), if any. */
export const opContext = new AsyncLocalStorage();

export function installPgCounter() {
  if (installed) return installed;
  let count = 0;
  const byOp = new Map();
  const patched = new Set();
  for (const root of ROOTS) {
    const pkg = path.join(root, 'package.json');
    if (!existsSync(pkg)) continue;
    let pgmod;
    try {
      pgmod = createRequire(pkg)('pg');
    } catch {
      continue;
    }
    const proto = pgmod.Client?.prototype;
    if (!proto || patched.has(proto)) continue;
    patched.add(proto);
    const original = proto.query;
    proto.query = function countedQuery(...args) {
      count++;
      const op = opContext.getStore();
      if (op !== undefined) byOp.set(op, (byOp.get(op) ?? 0) + 1);
      return original.apply(this, args);
    };
  }
  installed = {
    get: () => count,
    /** Round trips per storage operation name, since the last reset. */
    byOp: () => Object.fromEntries(byOp),
    reset: () => {
      count = 0;
      byOp.clear();
    },
    copies: patched.size,
  };
  return installed;
}

/** Storage methods that are not per-job work (connection life, wake-up probes): passed through, not counted. */
const UNCOUNTED = new Set(['migrate', 'close', 'listen', 'dataVersion']);

/** Claim methods whose results are tallied (jobs returned, calls that returned none). */
export const CLAIM_OPS = ['jobClaim', 'jobClaimLimited'];

/** Rows a claim call returned: `jobClaim` returns rows, `jobClaimLimited` `{ rows, ... }`. */
function claimedRows(result) {
  if (Array.isArray(result)) return result.length;
  if (Array.isArray(result?.rows)) return result.rows.length;
  return undefined;
}

/**
 * Wraps a storage (any object implementing the library's public `Storage` interface) so that
 * each method call is counted in `calls[name]` and runs inside `opContext`, which attributes
 * its PostgreSQL round trips to it. Properties and absent optional methods read through.
 * With `claims`, each claim call (CLAIM_OPS) also adds the jobs it returned to
 * `claims[name].rows`, 1 to `claims[name].empty` when it returned none, and its duration (call
 * to result, ms) to `claims[name].ms`.
 */
export function countingStorage(storage, calls, claims) {
  return new Proxy(storage, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (typeof value !== 'function' || typeof prop !== 'string') return value;
      if (UNCOUNTED.has(prop)) return value.bind(target);
      const tally = claims && CLAIM_OPS.includes(prop);
      return (...args) => {
        calls[prop] = (calls[prop] ?? 0) + 1;
        const t0 = performance.now(); // before the call: a synchronous driver (SQLite) does its work in it
        const out = opContext.run(prop, () => value.apply(target, args));
        if (!tally || typeof out?.then !== 'function') return out;
        return out.then((result) => {
          const n = claimedRows(result);
          if (n !== undefined) {
            const c = (claims[prop] ??= { rows: 0, empty: 0, ms: 0 });
            c.rows += n;
            c.ms += performance.now() - t0;
            if (n === 0) c.empty++;
          }
          return result;
        });
      };
    },
  });
}
