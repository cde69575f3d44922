/**
 * Limit rows of the SQLite driver: `limitSet`, `limitDelete`, `limitList`, `limitUsage`. Each
 * write is one `BEGIN IMMEDIATE` transaction: a type limit row that appears or disappears
 * re-marks the type's live jobs in it, and no insert (which reads the limits under the same
 * write lock) can fall between the two.
 * @internal
 */
import type { LimitRow, LimitScope, LimitSetParams, LimitUsageRow } from '../flow-rows.js';
import {
  LIMIT_LIST,
  LIMIT_USAGE,
  QUEUE_LIMIT_CLEAR,
  QUEUE_LIMIT_SET,
  RATE_STATE_CAP,
  RATE_STATE_DELETE,
  TYPE_JOBS_MARK,
  TYPE_JOBS_UNMARK,
  TYPE_LIMIT_DELETE,
  TYPE_LIMIT_EXISTS,
  TYPE_LIMIT_SET,
} from './queries/limits.js';
import { storedLimit } from '../shared/limit-values.js';
import { int, sqliteColumns } from './rows.js';
import type { SqliteContext } from './statements.js';

/**
 * `Storage.limitSet`: a queue limit is one upsert of its queue row; a type limit an upsert of
 * its row, and when the row is new, the marking of the type's live jobs `limited`. The limit's
 * rate state is brought within the new interval (or deleted with the rate), so a faster rate
 * applies at once.
 */
export function limitSet(ctx: SqliteContext, p: LimitSetParams): void {
  const values = storedLimit(p);
  ctx.write((c, now) => {
    if (values.rateLimit === null || values.ratePeriodMs === null) c.st(RATE_STATE_DELETE).run(p.scope, p.name);
    else c.st(RATE_STATE_CAP).run({ scope: p.scope, name: p.name, now, interval: values.ratePeriodMs / values.rateLimit });
    if (p.scope === 'queue') {
      c.st(QUEUE_LIMIT_SET).run({ name: p.name, now, ...values });
      return;
    }
    const existed = c.st(TYPE_LIMIT_EXISTS).get(p.name) !== undefined;
    c.st(TYPE_LIMIT_SET).run({ type: p.name, now, ...values });
    if (!existed) c.st(TYPE_JOBS_MARK).run({ type: p.name });
  });
}

/**
 * `Storage.limitDelete`: clears a queue's limits (its row kept) or deletes a type's row and
 * marks its live jobs not `limited` (any left marked, whether or not the row existed); the
 * limit's rate state goes too. Returns whether a limit existed.
 */
export function limitDelete(ctx: SqliteContext, p: { scope: LimitScope; name: string }): boolean {
  return ctx.write((c, now) => {
    c.st(RATE_STATE_DELETE).run(p.scope, p.name);
    if (p.scope === 'queue') return c.st(QUEUE_LIMIT_CLEAR).run({ name: p.name, now }).changes > 0;
    const existed = c.st(TYPE_LIMIT_DELETE).run(p.name).changes > 0;
    c.st(TYPE_JOBS_UNMARK).run({ type: p.name });
    return existed;
  });
}

/** A `LIMIT_LIST` row. */
interface LimitDbRow {
  scope: LimitScope;
  name: string;
  concurrency: number | bigint | null;
  rate_limit: number | bigint | null;
  rate_period_ms: number | bigint | null;
  updated_at: number | bigint;
}

/** `Storage.limitList`: one statement. */
export function limitList(ctx: SqliteContext): LimitRow[] {
  return (ctx.read((c) => c.st(LIMIT_LIST).all()) as LimitDbRow[]).map((r) => ({
    scope: r.scope,
    name: r.name,
    concurrency: sqliteColumns.optInt(r.concurrency),
    rateLimit: sqliteColumns.optInt(r.rate_limit),
    ratePeriodMs: sqliteColumns.optInt(r.rate_period_ms),
    updatedAt: int(r.updated_at),
  }));
}

/** A `LIMIT_USAGE` row. */
interface UsageDbRow {
  scope: LimitScope;
  name: string;
  running: number | bigint;
  keys_running: number | bigint;
  keys_full: number | bigint;
  pending: number | bigint;
  next_tat: number | null;
}

/** `Storage.limitUsage`: one statement (one read snapshot) on the clock's now. */
export function limitUsage(ctx: SqliteContext): LimitUsageRow[] {
  return (ctx.read((c) => c.st(LIMIT_USAGE).all({ now: ctx.now() })) as UsageDbRow[]).map((r) => ({
    scope: r.scope,
    name: r.name,
    running: int(r.running),
    keysRunning: int(r.keys_running),
    keysFull: int(r.keys_full),
    pending: int(r.pending),
    nextStartAt: r.next_tat === null ? null : Math.ceil(r.next_tat),
  }));
}
