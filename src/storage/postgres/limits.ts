/**
 * Limit rows of the PostgreSQL driver: `limitSet`, `limitDelete`, `limitList`, `limitUsage`.
 * A type limit that appears or disappears re-marks the type's live jobs in the same transaction,
 * after locking `sdj_type_limits` against the inserts that mark jobs from it (see
 * `TYPE_LIMITS_LOCK`); replacing the limits of an existing type row, and every queue-limit
 * change, is one statement.
 * @internal
 */
import type { LimitRow, LimitScope, LimitSetParams, LimitUsageRow } from '../flow-rows.js';
import { withTx } from './connection.js';
import type { PgExec } from './executor.js';
import {
  LIMIT_LIST,
  LIMIT_USAGE,
  QUEUE_LIMIT_DELETE,
  QUEUE_LIMIT_SET,
  TYPE_LIMIT_DELETE,
  TYPE_LIMIT_INSERT,
  TYPE_LIMIT_UPDATE,
  TYPE_LIMITS_LOCK,
} from './queries/limits.js';
import { storedLimit } from '../shared/limit-values.js';
import { pgColumns, toInt } from './rows.js';

/**
 * `Storage.limitSet`: a queue limit is one upsert of its queue row; a type limit is one update
 * when its row exists, else one transaction (lock, upsert, mark the type's live jobs limited).
 */
export async function limitSet(x: PgExec, p: LimitSetParams): Promise<void> {
  const v = storedLimit(p);
  const values = [x.now(), p.name, v.concurrency, v.rateLimit, v.ratePeriodMs];
  if (p.scope === 'queue') {
    await x.rows(QUEUE_LIMIT_SET, values);
    return;
  }
  if ((await x.rows(TYPE_LIMIT_UPDATE, values)).length > 0) return;
  await withTx(x.pool, async (c) => {
    await x.exec(TYPE_LIMITS_LOCK, [], c);
    await x.rows(TYPE_LIMIT_INSERT, values, c);
  });
}

/** `Storage.limitDelete`: one statement for a queue; for a type, one transaction (lock, delete, unmark). */
export async function limitDelete(x: PgExec, p: { scope: LimitScope; name: string }): Promise<boolean> {
  if (p.scope === 'queue') {
    const r = await x.one<{ n: string }>(QUEUE_LIMIT_DELETE, [x.now(), p.name, x.channel]);
    return toInt(r?.n ?? 0) > 0;
  }
  return withTx(x.pool, async (c) => {
    await x.exec(TYPE_LIMITS_LOCK, [], c);
    const r = await x.one<{ n: string }>(TYPE_LIMIT_DELETE, [p.name, x.channel], c);
    return toInt(r?.n ?? 0) > 0;
  });
}

/** A `LIMIT_LIST` row. */
interface LimitDbRow {
  scope: LimitScope;
  name: string;
  concurrency: number | null;
  rate_limit: number | null;
  rate_period_ms: string | null;
  updated_at: string;
}

/** `Storage.limitList`: one statement. */
export async function limitList(x: PgExec): Promise<LimitRow[]> {
  return (await x.rows<LimitDbRow>(LIMIT_LIST)).map((r) => ({
    scope: r.scope,
    name: r.name,
    concurrency: pgColumns.optInt(r.concurrency),
    rateLimit: pgColumns.optInt(r.rate_limit),
    ratePeriodMs: pgColumns.optInt(r.rate_period_ms),
    updatedAt: toInt(r.updated_at),
  }));
}

/** A `LIMIT_USAGE` row. */
interface UsageDbRow {
  scope: LimitScope;
  name: string;
  running: string;
  keys_running: string;
  keys_full: string;
  pending: string;
  next_start_at: string | null;
}

/** `Storage.limitUsage`: one statement. */
export async function limitUsage(x: PgExec): Promise<LimitUsageRow[]> {
  return (await x.rows<UsageDbRow>(LIMIT_USAGE, [x.now()])).map((r) => ({
    scope: r.scope,
    name: r.name,
    running: toInt(r.running),
    keysRunning: toInt(r.keys_running),
    keysFull: toInt(r.keys_full),
    pending: toInt(r.pending),
    nextStartAt: pgColumns.optInt(r.next_start_at),
  }));
}
