/**
 * Fleet events on SQLite: `eventAppendMany`, `eventReadAfter`, `eventPrune` and the subscriber
 * presence operations. Writes are one synchronous `BEGIN IMMEDIATE` transaction each, so appends
 * take their ids from the head counter in commit order (writers serialize on the file lock).
 * @internal
 */
import type { EventAppendManyParams, EventPruneParams, EventReadAfterParams, EventRow, EventSubscriberBeatParams, EventSubscriberBeatResult } from '../storage.js';
import { pruneCutId } from '../shared/event-params.js';
import {
  EVENT_DELETE_UP_TO,
  EVENT_HEAD,
  EVENT_HEAD_TAKE,
  EVENT_INSERT,
  EVENT_NEWEST_BEFORE,
  EVENT_READ_AFTER,
  EVENT_SUBSCRIBER_DELETE_EXPIRED,
  EVENT_SUBSCRIBER_REMOVE,
  EVENT_SUBSCRIBER_UPSERT,
  EVENT_SUBSCRIBERS_ACTIVE,
} from './queries/events.js';
import { int, sqliteColumns } from './rows.js';
import type { SqliteContext, Statements } from './statements.js';

/** A `sdj_events` row as better-sqlite3 returns it. */
interface EventDbRow {
  id: number | bigint;
  at: number | bigint;
  type: string;
  job_id: string | null;
  origin: string;
  payload: string;
}

/** The head counter's value. */
function headOf(c: Statements): number {
  const r = c.st(EVENT_HEAD).get() as { last_id: number | bigint } | undefined;
  return r === undefined ? 0 : int(r.last_id);
}

/** `Storage.eventAppendMany`: one transaction — ids taken from the head, then one insert per event. */
export function eventAppendMany(ctx: SqliteContext, p: EventAppendManyParams): number[] {
  const n = p.events.length;
  return ctx.write((c, now) => {
    const last = int((c.st(EVENT_HEAD_TAKE).get({ n }) as { last_id: number | bigint }).last_id);
    const insert = c.st(EVENT_INSERT);
    const ids: number[] = [];
    p.events.forEach((e, i) => {
      const id = last - n + 1 + i;
      insert.run({ id, at: now, type: e.type, jobId: e.jobId, origin: e.origin, payload: e.payloadJson });
      ids.push(id);
    });
    return ids;
  });
}

/** `Storage.eventReadAfter`. */
export function eventReadAfter(ctx: SqliteContext, p: EventReadAfterParams): EventRow[] {
  const rows = ctx.read((c) => c.st(EVENT_READ_AFTER).all({ afterId: p.afterId, limit: p.limit })) as EventDbRow[];
  return rows.map((r) => ({
    id: int(r.id),
    at: int(r.at),
    type: sqliteColumns.str(r.type),
    jobId: r.job_id === null ? null : sqliteColumns.str(r.job_id),
    origin: sqliteColumns.str(r.origin),
    payloadJson: sqliteColumns.str(r.payload),
  }));
}

/** `Storage.eventPrune`: one transaction — the cut id worked out, then one range delete. */
export function eventPrune(ctx: SqliteContext, p: EventPruneParams): number {
  return ctx.write((c, now) => {
    let tooOld: number | null = null;
    if (p.olderThanMs !== undefined) {
      const r = c.st(EVENT_NEWEST_BEFORE).get({ cutoff: now - p.olderThanMs }) as { id: number | bigint | null };
      tooOld = r.id === null ? null : int(r.id);
    }
    const cut = pruneCutId(headOf(c), p.keep, tooOld);
    return cut > 0 ? c.st(EVENT_DELETE_UP_TO).run({ id: cut }).changes : 0;
  });
}

/** `Storage.eventSubscriberBeat`: one transaction — expired rows of others deleted, this row upserted, the head read. */
export function eventSubscriberBeat(ctx: SqliteContext, p: EventSubscriberBeatParams): EventSubscriberBeatResult {
  return ctx.write((c, now) => {
    c.st(EVENT_SUBSCRIBER_DELETE_EXPIRED).run({ now, id: p.id });
    c.st(EVENT_SUBSCRIBER_UPSERT).run({ id: p.id, expiresAt: now + p.ttlMs });
    return { headId: headOf(c) };
  });
}

/** `Storage.eventSubscribersActive`. */
export function eventSubscribersActive(ctx: SqliteContext): number {
  const now = ctx.now();
  const r = ctx.read((c) => c.st(EVENT_SUBSCRIBERS_ACTIVE).get({ now })) as { n: number | bigint };
  return int(r.n);
}

/** `Storage.eventSubscriberRemove`. */
export function eventSubscriberRemove(ctx: SqliteContext, p: { id: string }): void {
  ctx.write((c) => c.st(EVENT_SUBSCRIBER_REMOVE).run(p.id));
}
