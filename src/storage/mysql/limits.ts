/**
 * Limit rows of the MySQL/MariaDB driver: `limitSet`, `limitDelete`, `limitList`, `limitUsage`.
 * Every change runs in one transaction that takes flow lock row 1 (`FLOW_LOCK`), so it is ordered
 * with the limited claims around it. A type limit that appears or disappears first takes flow
 * lock row 2 exclusively — it waits for the inserts in flight, which share-lock that row while
 * reading `sdj_type_limits`, and holds off the next ones until it commits — then row 1, then
 * re-marks the type's live jobs (always row 2 before row 1: limited claims never wait behind an
 * insert). Replacing the limits of an existing type row, and every queue-limit change, writes
 * one row, and the limit's rate state (brought within the new interval, or deleted with the
 * rate). Taking row 1 moves its generation on: a limited claim that read before reads the state again under the lock.
 * @internal
 */
import type { LimitRow, LimitScope, LimitSetParams, LimitUsageRow } from '../flow-rows.js';
import { type Executor, select, write } from './connection.js';
import type { DriverContext } from './driver-context.js';
import { FLOW_LOCK, FLOW_LOCK_TYPE_LIMITS } from './queries/flow.js';
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
  TYPE_LIMIT_GET,
  TYPE_LIMIT_UPDATE,
  TYPE_LIMIT_UPSERT,
} from './queries/limits.js';
import { storedLimit } from '../shared/limit-values.js';
import { type DbRow, num, numOrNull, str } from './rows.js';

/** The stored values of a limit: concurrency, rate limit, period (null without a rate limit). */
function storedLimits(p: LimitSetParams): [number | null, number | null, number | null] {
  const v = storedLimit(p);
  return [v.concurrency, v.rateLimit, v.ratePeriodMs];
}

/** Takes flow lock row 1 on the transaction's connection (moving its generation on: see `FLOW_LOCK`). */
async function flowLock(ex: Executor): Promise<void> {
  await write(ex, FLOW_LOCK);
}

/**
 * After a limit's row was written (flow lock row 1 held): its rate state brought within the new
 * emission interval, or deleted with the rate (see `RATE_STATE_CAP`).
 */
async function fitRateState(ex: Executor, now: number | null, p: LimitSetParams, rate: number | null, period: number | null): Promise<void> {
  if (rate === null || period === null) await write(ex, RATE_STATE_DELETE, [p.scope, p.name]);
  else await write(ex, RATE_STATE_CAP, [now, period / rate, p.scope, p.name, now, period / rate]);
}

/**
 * `Storage.limitSet`: upserts the row; a new type row marks the type's live jobs limited. The
 * limit's rate state is brought within the new interval (or deleted with the rate), so a faster
 * rate applies at once.
 */
export async function limitSet(ctx: DriverContext, p: LimitSetParams): Promise<void> {
  const [concurrency, rate, period] = storedLimits(p);
  const now = ctx.now();
  await ctx.db.tx(async (ex) => {
    if (p.scope === 'queue') {
      await flowLock(ex);
      await write(ex, QUEUE_LIMIT_SET, [p.name, concurrency, rate, period, now, now]);
      return fitRateState(ex, now, p, rate, period);
    }
    if ((await select(ex, TYPE_LIMIT_GET, [p.name])).length > 0) {
      await flowLock(ex);
      if ((await write(ex, TYPE_LIMIT_UPDATE, [concurrency, rate, period, now, p.name])) > 0) return fitRateState(ex, now, p, rate, period);
    }
    // A new row (or one deleted meanwhile): row 2, row 1, the row, the marks.
    await select(ex, FLOW_LOCK_TYPE_LIMITS);
    await flowLock(ex);
    await write(ex, TYPE_LIMIT_UPSERT, [p.name, concurrency, rate, period, now]);
    await write(ex, TYPE_JOBS_MARK, [p.name, p.name]);
    return fitRateState(ex, now, p, rate, period);
  });
}

/**
 * `Storage.limitDelete`: clears the limit and its rate state; for a type whose row existed, its
 * live jobs are marked not limited. Returns whether a limit existed.
 */
export async function limitDelete(ctx: DriverContext, p: { scope: LimitScope; name: string }): Promise<boolean> {
  const now = ctx.now();
  return ctx.db.tx(async (ex) => {
    if (p.scope === 'type') await select(ex, FLOW_LOCK_TYPE_LIMITS);
    await flowLock(ex);
    const existed = p.scope === 'queue' ? (await write(ex, QUEUE_LIMIT_CLEAR, [now, p.name])) > 0 : (await write(ex, TYPE_LIMIT_DELETE, [p.name])) > 0;
    if (!existed) return false;
    await write(ex, RATE_STATE_DELETE, [p.scope, p.name]);
    if (p.scope === 'type') await write(ex, TYPE_JOBS_UNMARK, [p.name, p.name]);
    return true;
  });
}

/** A `LIMIT_LIST` row as a `LimitRow`. */
function toLimitRow(r: DbRow): LimitRow {
  return {
    scope: str(r['scope']) as LimitScope,
    name: str(r['name']),
    concurrency: numOrNull(r['concurrency']),
    rateLimit: numOrNull(r['rate_limit']),
    ratePeriodMs: numOrNull(r['rate_period_ms']),
    updatedAt: num(r['updated_at']),
  };
}

/** `Storage.limitList`: one statement. */
export async function limitList(ctx: DriverContext): Promise<LimitRow[]> {
  return (await select(ctx.db.pool, LIMIT_LIST)).map(toLimitRow);
}

/** List order: type rows first, then by the bytes of the name. */
function listOrder(a: { scope: string; name: string }, b: { scope: string; name: string }): number {
  if (a.scope !== b.scope) return a.scope === 'type' ? -1 : 1;
  return Buffer.compare(Buffer.from(a.name, 'utf8'), Buffer.from(b.name, 'utf8'));
}

/** Adds `n` to a counter. */
function add(m: Map<string, number>, k: string, n: number): void {
  m.set(k, (m.get(k) ?? 0) + n);
}

/** `Storage.limitUsage`: one statement (see `LIMIT_USAGE`), added up here. */
export async function limitUsage(ctx: DriverContext): Promise<LimitUsageRow[]> {
  const now = ctx.now();
  const rows = await select(ctx.db.pool, LIMIT_USAGE, [now]);
  const limits: { scope: LimitScope; name: string; concurrency: number | null }[] = [];
  const runningByType = new Map<string, Map<string, number>>();
  const runningByQueue = new Map<string, number>();
  const pendingByType = new Map<string, number>();
  const pendingByQueue = new Map<string, number>();
  const nextTat = new Map<string, number>();
  for (const r of rows) {
    const kind = str(r['kind']);
    if (kind === 'l') limits.push({ scope: str(r['scope']) as LimitScope, name: str(r['name']), concurrency: numOrNull(r['n']) });
    else if (kind === 'r') {
      const type = str(r['name']);
      const keys = runningByType.get(type) ?? new Map<string, number>();
      runningByType.set(type, keys);
      add(keys, str(r['k1']), num(r['n']));
      add(runningByQueue, str(r['k2']), num(r['n']));
    } else if (kind === 'p') add(pendingByType, str(r['name']), num(r['n']));
    else if (kind === 'q') add(pendingByQueue, str(r['k2']), num(r['n']));
    else if (kind === 's') nextTat.set(`${str(r['scope'])}\u0000${str(r['name'])}`, Number(r['tat']));
  }
  return limits.sort(listOrder).map((l) => {
    const tat = nextTat.get(`${l.scope}\u0000${l.name}`);
    const nextStartAt = tat === undefined ? null : Math.ceil(tat);
    if (l.scope === 'queue') {
      const running = runningByQueue.get(l.name) ?? 0;
      const full = l.concurrency !== null && running >= l.concurrency ? 1 : 0;
      return { scope: l.scope, name: l.name, running, keysRunning: running > 0 ? 1 : 0, keysFull: full, pending: pendingByQueue.get(l.name) ?? 0, nextStartAt };
    }
    const keys = [...(runningByType.get(l.name)?.values() ?? [])];
    const running = keys.reduce((a, b) => a + b, 0);
    const keysFull = l.concurrency === null ? 0 : keys.filter((n) => n >= l.concurrency!).length;
    return { scope: l.scope, name: l.name, running, keysRunning: keys.length, keysFull, pending: pendingByType.get(l.name) ?? 0, nextStartAt };
  });
}
