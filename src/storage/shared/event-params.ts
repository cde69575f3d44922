/**
 * What every driver's fleet-event operations share: the checks of their params, done once in the
 * facade before any driver sees them (bad input is refused with `InvalidArgumentError` and nothing
 * is written), and the SQL-free arithmetic of a prune.
 * @internal
 */
import { InvalidArgumentError } from '../../errors.js';
import type { EventAppendItem, EventPruneParams, EventReadAfterParams, EventSubscriberBeatParams } from '../event-rows.js';

/** Most events one `eventReadAfter` returns. @internal */
export const EVENT_READ_MAX = 10_000;
/** Longest presence a beat may ask for (one day, ms). @internal */
export const EVENT_TTL_MAX = 86_400_000;
/** Longest event type. @internal */
const TYPE_MAX = 64;
/** Longest origin, subscriber id or job id. @internal */
const NAME_MAX = 255;

function isCount(v: unknown, max = Number.MAX_SAFE_INTEGER): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= max;
}

function isName(v: unknown, max: number): v is string {
  return typeof v === 'string' && v.length >= 1 && v.length <= max && !v.includes('\u0000');
}

/** The error for the first item no driver may store, if any. @internal */
export function checkEventAppend(items: readonly EventAppendItem[]): InvalidArgumentError | undefined {
  for (let i = 0; i < items.length; i++) {
    const it = items[i]!;
    if (!isName(it.type, TYPE_MAX)) return new InvalidArgumentError(`eventAppendMany: the type of item ${i} must be 1 to ${TYPE_MAX} characters without NUL`);
    if (!isName(it.origin, NAME_MAX)) return new InvalidArgumentError(`eventAppendMany: the origin of item ${i} must be 1 to ${NAME_MAX} characters without NUL`);
    if (it.jobId !== null && !isName(it.jobId, NAME_MAX)) return new InvalidArgumentError(`eventAppendMany: the jobId of item ${i} must be null or 1 to ${NAME_MAX} characters without NUL`);
    if (typeof it.payloadJson !== 'string' || it.payloadJson.includes('\u0000')) {
      return new InvalidArgumentError(`eventAppendMany: the payloadJson of item ${i} must be JSON text (NUL escaped)`);
    }
  }
  return undefined;
}

/** The error of bad `eventReadAfter` params, if any. @internal */
export function checkEventRead(p: EventReadAfterParams): InvalidArgumentError | undefined {
  if (!isCount(p.afterId)) return new InvalidArgumentError(`eventReadAfter: afterId must be a non-negative integer, got ${String(p.afterId)}`);
  if (!isCount(p.limit, EVENT_READ_MAX) || p.limit < 1) return new InvalidArgumentError(`eventReadAfter: limit must be an integer from 1 to ${EVENT_READ_MAX}, got ${String(p.limit)}`);
  return undefined;
}

/** The error of bad `eventPrune` params, if any. @internal */
export function checkEventPrune(p: EventPruneParams): InvalidArgumentError | undefined {
  if (p.olderThanMs === undefined && p.keep === undefined) return new InvalidArgumentError('eventPrune: give olderThanMs, keep, or both');
  if (p.olderThanMs !== undefined && !isCount(p.olderThanMs)) return new InvalidArgumentError(`eventPrune: olderThanMs must be a non-negative integer, got ${String(p.olderThanMs)}`);
  if (p.keep !== undefined && !isCount(p.keep)) return new InvalidArgumentError(`eventPrune: keep must be a non-negative integer, got ${String(p.keep)}`);
  return undefined;
}

/** The error of bad `eventSubscriberBeat` params, if any. @internal */
export function checkEventBeat(p: EventSubscriberBeatParams): InvalidArgumentError | undefined {
  if (!isName(p.id, NAME_MAX)) return new InvalidArgumentError(`eventSubscriberBeat: id must be 1 to ${NAME_MAX} characters without NUL`);
  if (!isCount(p.ttlMs, EVENT_TTL_MAX) || p.ttlMs < 1) return new InvalidArgumentError(`eventSubscriberBeat: ttlMs must be an integer from 1 to ${EVENT_TTL_MAX}, got ${String(p.ttlMs)}`);
  return undefined;
}

/** The error of a bad subscriber id, if any. @internal */
export function checkEventSubscriberId(id: unknown): InvalidArgumentError | undefined {
  return isName(id, NAME_MAX) ? undefined : new InvalidArgumentError(`eventSubscriberRemove: id must be 1 to ${NAME_MAX} characters without NUL`);
}

/**
 * The highest id a prune deletes up to: the greater of `head - keep` and the newest id stored
 * before the age cutoff (either absent counts as 0). @internal
 */
export function pruneCutId(headId: number, keep: number | undefined, newestTooOld: number | null): number {
  const byCount = keep === undefined ? 0 : headId - keep;
  return Math.max(0, byCount, newestTooOld ?? 0);
}
