/**
 * SQLite: the retention index (`sdj_jobs_prune`, partial over finished root jobs) serves the
 * prune statement and changes no other statement's plan — the claim, finish, heartbeat,
 * reclaim and wake statements above all. Every statement of the driver's query modules is
 * planned (`EXPLAIN QUERY PLAN`) on the full schema with and without that index, and the plans
 * must be the same except the prune's.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import type BetterSqlite3 from 'better-sqlite3';
import { MIGRATIONS } from '../../src/storage/sqlite/migrations.generated.js';
import * as fanOut from '../../src/storage/sqlite/queries/fan-out.js';
import * as jobs from '../../src/storage/sqlite/queries/jobs.js';
import * as run from '../../src/storage/sqlite/queries/run.js';
import * as schedules from '../../src/storage/sqlite/queries/schedules.js';
import * as workflow from '../../src/storage/sqlite/queries/workflow.js';

const Database = createRequire(import.meta.url)('better-sqlite3') as typeof BetterSqlite3;

/** Every statement constant of the query modules, by name. */
const STATEMENTS = Object.entries({ ...fanOut, ...jobs, ...run, ...schedules, ...workflow }).filter(
  (e): e is [string, string] => typeof e[1] === 'string' && /^\s*(SELECT|INSERT|UPDATE|DELETE|WITH)\b/i.test(e[1]),
);

/** The plan of each statement on a migrated in-memory database, after `extra` DDL. */
function plans(extra: string): Map<string, string> {
  const db = new Database(':memory:');
  try {
    for (const m of MIGRATIONS) db.exec(m.sql);
    db.exec(extra);
    const out = new Map<string, string>();
    for (const [name, sql] of STATEMENTS) {
      let text: string;
      try {
        const st = db.prepare(`EXPLAIN QUERY PLAN ${sql}`);
        const named = [...sql.matchAll(/@(\w+)/g)].map((m) => m[1]!);
        const rows = named.length > 0 ? st.all(Object.fromEntries(named.map((n) => [n, 1]))) : st.all(...Array<number>((sql.match(/\?/g) ?? []).length).fill(1));
        text = (rows as { detail: string }[]).map((r) => r.detail).join(' | ');
      } catch (e) {
        text = `cannot plan: ${(e as Error).message}`;
      }
      out.set(name, text);
    }
    return out;
  } finally {
    db.close();
  }
}

describe('sqlite: the retention index', () => {
  it('serves the prune statement and leaves every other plan as it was', () => {
    const withIndex = plans('');
    assert.match(withIndex.get('JOB_PRUNE_ROOTS') ?? '', /USING INDEX sdj_jobs_prune \(status=\? AND completed_at<\?\)/);
    assert.match(withIndex.get('JOB_CLAIM') ?? '', /sdj_jobs_claim/, 'the claim reads the claim index');
    const without = plans('DROP INDEX sdj_jobs_prune');
    const changed = [...withIndex.keys()].filter((k) => k !== 'JOB_PRUNE_ROOTS' && withIndex.get(k) !== without.get(k));
    assert.deepEqual(changed, [], `plans changed by the index: ${changed.map((k) => `\n${k}: ${without.get(k)} → ${withIndex.get(k)}`).join('')}`);
    assert.ok(STATEMENTS.length > 30, `planned ${STATEMENTS.length} statements`);
    for (const [name, plan] of withIndex) assert.ok(!plan.startsWith('cannot plan') || name === 'JOB_PRUNE_ROOTS', `${name}: ${plan}`);
  });
});
