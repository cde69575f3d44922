/**
 * Fleet events on MySQL/MariaDB: `eventAppendMany` (one short transaction: ids taken from the
 * head row, then one multi-row insert), `eventReadAfter`, `eventPrune` and the subscriber presence
 * operations.
 * @internal
 */
import type { EventAppendManyParams, EventPruneParams, EventReadAfterParams, EventRow, EventSubscriberBeatParams, EventSubscriberBeatResult } from '../storage.js';
import { pruneCutId } from '../shared/event-params.js';
import { type MysqlResultHeader, run, select, write } from './connection.js';
import type { DriverContext } from './driver-context.js';
import {
  EVENT_DELETE_UP_TO,
  EVENT_HEAD,
  EVENT_HEAD_TAKE,
  EVENT_NEWEST_BEFORE,
  EVENT_READ_AFTER,
  EVENT_SUBSCRIBER_DELETE_EXPIRED,
  EVENT_SUBSCRIBER_REMOVE,
  EVENT_SUBSCRIBER_UPSERT,
  EVENT_SUBSCRIBERS_ACTIVE,
  eventInsertSql,
} from './queries/events.js';
import { num, numOrNull, str, strOrNull } from './rows.js';

/**
 * `Storage.eventAppendMany`: one transaction of two statements — the head row updated (its lock
 * serializes appends until commit), then every event inserted with the ids taken.
 */
export async function eventAppendMany(ctx: DriverContext, p: EventAppendManyParams): Promise<number[]> {
  const ev = p.events;
  const now = ctx.now();
  return ctx.db.tx(async (ex) => {
    const head = (await run(ex, EVENT_HEAD_TAKE, [ev.length])) as MysqlResultHeader;
    const last = num(head.insertId);
    const ids = ev.map((_, i) => last - ev.length + 1 + i);
    const values: unknown[] = [];
    ev.forEach((e, i) => values.push(ids[i], now, e.type, e.jobId, e.origin, e.payloadJson));
    await write(ex, eventInsertSql(ev.length), values);
    return ids;
  });
}

/** `Storage.eventReadAfter`. */
export async function eventReadAfter(ctx: DriverContext, p: EventReadAfterParams): Promise<EventRow[]> {
  const rows = await select(ctx.db.pool, EVENT_READ_AFTER, [p.afterId, p.limit]);
  return rows.map((r) => ({
    id: num(r['id']),
    at: num(r['at']),
    type: str(r['type']),
    jobId: strOrNull(r['job_id']),
    origin: str(r['origin']),
    payloadJson: str(r['payload']),
  }));
}

/** `Storage.eventPrune`: the cut id worked out (head and the age index), then one range delete. */
export async function eventPrune(ctx: DriverContext, p: EventPruneParams): Promise<number> {
  const now = ctx.now();
  return ctx.db.autocommit(async (ex) => {
    const head = num((await select(ex, EVENT_HEAD))[0]?.['last_id'] ?? 0);
    const tooOld = p.olderThanMs === undefined ? null : numOrNull((await select(ex, EVENT_NEWEST_BEFORE, [now, p.olderThanMs]))[0]?.['id'] ?? null);
    const cut = pruneCutId(head, p.keep, tooOld);
    return cut > 0 ? write(ex, EVENT_DELETE_UP_TO, [cut]) : 0;
  });
}

/** `Storage.eventSubscriberBeat`: autocommitted statements on one connection — expired rows deleted, this row upserted, the head read. */
export async function eventSubscriberBeat(ctx: DriverContext, p: EventSubscriberBeatParams): Promise<EventSubscriberBeatResult> {
  const now = ctx.now();
  return ctx.db.autocommit(async (ex) => {
    await write(ex, EVENT_SUBSCRIBER_DELETE_EXPIRED, [now, p.id]);
    await write(ex, EVENT_SUBSCRIBER_UPSERT, [p.id, p.ttlMs, now]);
    return { headId: num((await select(ex, EVENT_HEAD))[0]?.['last_id'] ?? 0) };
  });
}

/** `Storage.eventSubscribersActive`. */
export async function eventSubscribersActive(ctx: DriverContext): Promise<number> {
  return num((await select(ctx.db.pool, EVENT_SUBSCRIBERS_ACTIVE, [ctx.now()]))[0]?.['n'] ?? 0);
}

/** `Storage.eventSubscriberRemove`. */
export async function eventSubscriberRemove(ctx: DriverContext, p: { id: string }): Promise<void> {
  await ctx.db.autocommit((ex) => write(ex, EVENT_SUBSCRIBER_REMOVE, [p.id]));
}
