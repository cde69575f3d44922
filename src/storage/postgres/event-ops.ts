/**
 * Fleet events on PostgreSQL: `eventAppendMany` (one statement that takes ids from the head row,
 * inserts and notifies), `eventReadAfter`, `eventPrune` and the subscriber presence operations,
 * each one statement on the pool; and the events channel that `eventListen` listens on.
 * @internal
 */
import { createHash } from 'node:crypto';
import type { EventAppendManyParams, EventPruneParams, EventReadAfterParams, EventRow, EventSubscriberBeatParams, EventSubscriberBeatResult } from '../storage.js';
import type { PgExec } from './executor.js';
import { EVENT_APPEND, EVENT_PRUNE, EVENT_READ_AFTER, EVENT_SUBSCRIBER_BEAT, EVENT_SUBSCRIBER_REMOVE, EVENT_SUBSCRIBERS_ACTIVE } from './queries/events.js';
import { toInt } from './rows.js';

/**
 * The NOTIFY channel of a schema's fleet events: `sdjev_<schema>`, or a hashed form when that
 * would exceed PostgreSQL's 63-byte identifier limit. Never equal to a wake-up channel (those
 * start with `sdj_`).
 */
export function eventChannelFor(schema: string): string {
  const plain = `sdjev_${schema}`;
  if (plain.length <= 63) return plain;
  return `sdjev_${schema.slice(0, 38)}_${createHash('sha1').update(schema).digest('hex').slice(0, 16)}`;
}

/** A `sdj_events` row as `pg` returns it (bigint columns as text). */
interface EventDbRow {
  id: string;
  at: string;
  type: string;
  job_id: string | null;
  origin: string;
  payload: string;
}

/** `Storage.eventAppendMany`: one statement; the ids given are the last `n` ids taken. */
export async function eventAppendMany(x: PgExec, p: EventAppendManyParams): Promise<number[]> {
  const ev = p.events;
  const r = await x.one<{ last_id: string }>(EVENT_APPEND, [
    x.now(),
    ev.map((e) => e.type),
    ev.map((e) => e.jobId),
    ev.map((e) => e.origin),
    ev.map((e) => e.payloadJson),
    eventChannelFor(x.schema),
  ]);
  const last = toInt(r!.last_id);
  return ev.map((_, i) => last - ev.length + 1 + i);
}

/** `Storage.eventReadAfter`. */
export async function eventReadAfter(x: PgExec, p: EventReadAfterParams): Promise<EventRow[]> {
  const rows = await x.rows<EventDbRow>(EVENT_READ_AFTER, [p.afterId, p.limit]);
  return rows.map((r) => ({ id: toInt(r.id), at: toInt(r.at), type: r.type, jobId: r.job_id, origin: r.origin, payloadJson: r.payload }));
}

/** `Storage.eventPrune`: one statement. */
export async function eventPrune(x: PgExec, p: EventPruneParams): Promise<number> {
  const r = await x.one<{ n: string }>(EVENT_PRUNE, [x.now(), p.keep ?? null, p.olderThanMs ?? null]);
  return toInt(r!.n);
}

/** `Storage.eventSubscriberBeat`: one statement. */
export async function eventSubscriberBeat(x: PgExec, p: EventSubscriberBeatParams): Promise<EventSubscriberBeatResult> {
  const r = await x.one<{ head: string | null }>(EVENT_SUBSCRIBER_BEAT, [x.now(), p.id, p.ttlMs]);
  return { headId: r?.head == null ? 0 : toInt(r.head) };
}

/** `Storage.eventSubscribersActive`. */
export async function eventSubscribersActive(x: PgExec): Promise<number> {
  const r = await x.one<{ n: string }>(EVENT_SUBSCRIBERS_ACTIVE, [x.now()]);
  return toInt(r!.n);
}

/** `Storage.eventSubscriberRemove`. */
export async function eventSubscriberRemove(x: PgExec, p: { id: string }): Promise<void> {
  await x.rows(EVENT_SUBSCRIBER_REMOVE, [p.id]);
}
