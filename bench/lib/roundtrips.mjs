// Client-side round-trip counting: wraps pg.Client.prototype.query of every copy
// of node-postgres the process can load (the bench's own and the repo root's, which
// our library resolves). Pool.query goes through Client.query, so each network
// round trip (simple query, or parse/bind/execute/sync flight) is counted once.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const ROOTS = [path.join(here, '..'), path.join(here, '..', '..')];

let installed;

export function installPgCounter() {
  if (installed) return installed;
  let count = 0;
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
      return original.apply(this, args);
    };
  }
  installed = {
    get: () => count,
    reset: () => {
      count = 0;
    },
    copies: patched.size,
  };
  return installed;
}
