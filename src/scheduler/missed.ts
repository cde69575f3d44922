/**
 * The missed-slot policy: given a schedule's stored `next_run_at` and the current time,
 * which slots to fire now and where the schedule goes next. Pure functions; no storage.
 *
 * The "due" slots of a tick are the stored `next_run_at` itself plus every slot of the
 * schedule in `(next_run_at, now]`. Normally that is exactly one slot, fired a few ms late.
 * After downtime (no scheduler running) it may be many; the policy decides:
 * - `'latest'` (default): fire exactly one — the most recent due slot.
 * - `'skip'`: fire none of the missed slots and move on to the next future slot. A slot is
 *   missed when it is older than the grace period (default {@link DEFAULT_MISSED_GRACE_MS});
 *   the most recent due slot still within grace (the one a running scheduler is simply
 *   firing on time) does fire.
 * - `'all'`: fire every due slot, oldest first, capped at the most recent
 *   {@link MAX_CATCH_UP_FIRES}; older ones are dropped.
 *
 * Whatever the policy, the schedule's new `next_run_at` is the first slot strictly after now.
 * @module
 */
import { InvalidScheduleError } from '../errors.js';
import { show } from './cron.js';
import type { Schedule } from './schedules.js';

/** What to do with slots that came due while no scheduler was running. */
export type MissedPolicy = 'skip' | 'latest' | 'all';

/** The policy used when a schedule does not name one. */
export const DEFAULT_MISSED_POLICY: MissedPolicy = 'latest';

/** The most slots `'all'` fires in one catch-up; older missed slots are dropped. */
export const MAX_CATCH_UP_FIRES = 1000;

/** How late a slot may be fired and still count as on time under `'skip'`: one minute. */
export const DEFAULT_MISSED_GRACE_MS = 60_000;

const POLICIES: readonly MissedPolicy[] = ['skip', 'latest', 'all'];

/** `planFires` parameters. */
export interface PlanFiresParams {
  /** The schedule whose slots are considered. */
  schedule: Schedule;
  /** The stored `next_run_at` (ms): the first slot not yet handled. */
  nextRunAt: number;
  /** The current time (ms), on the clock the storage compares `next_run_at` against. */
  now: number;
  /** @default 'latest' */
  missed?: MissedPolicy;
  /** `'skip'` fires the latest due slot only if `now - slot < graceMs`. @default 60000 */
  graceMs?: number;
  /** Cap of `'all'`. @default 1000 */
  maxFires?: number;
}

/** What a tick does with one schedule. */
export interface FirePlan {
  /** Slot instants (ms) to fire now, oldest first; empty when nothing is due or all are skipped. */
  readonly slots: number[];
  /** The latest due slot (ms), fired or skipped — recorded as `last_run_at`; `undefined` when nothing is due. */
  readonly slotAt: number | undefined;
  /** The new `next_run_at` (ms): the first slot strictly after `now` (unchanged when nothing is due). */
  readonly nextRunAt: number;
  /** True when at least one due slot is not fired (skipped, or beyond the `'all'` cap). */
  readonly dropped: boolean;
}

/**
 * Decides which due slots of one schedule to fire at `now` under its missed policy.
 * @example
 * // an hourly schedule whose 10:00 slot is stored; the scheduler was down until 13:20
 * planFires({ schedule: cron('0 * * * *'), nextRunAt: at('10:00'), now: at('13:20') })
 * // → { slots: [13:00], slotAt: 13:00, nextRunAt: 14:00, dropped: true }   ('latest')
 * // 'all' → slots [10:00, 11:00, 12:00, 13:00]; 'skip' → slots [] (13:00 is 20 min late)
 * @throws InvalidScheduleError on an unknown policy; InvalidArgumentError on non-finite times
 */
export function planFires(p: PlanFiresParams): FirePlan {
  const missed = p.missed === undefined ? DEFAULT_MISSED_POLICY : checkMissedPolicy(p.missed);
  const { schedule, nextRunAt, now } = p;
  if (nextRunAt > now) return { slots: [], slotAt: undefined, nextRunAt, dropped: false };
  const limit = missed === 'all' ? Math.max(1, Math.floor(p.maxFires ?? MAX_CATCH_UP_FIRES)) : 1;

  // Walk back from now over the schedule's slots newer than nextRunAt, newest first.
  const newestFirst: number[] = [];
  let cursor = now;
  while (newestFirst.length < limit) {
    const s = schedule.latest(new Date(cursor));
    if (s === undefined || s.getTime() <= nextRunAt) break;
    newestFirst.push(s.getTime());
    cursor = s.getTime() - 1;
  }
  let dropped = false;
  // The stored next_run_at is itself a due slot (even if the spec changed since it was set).
  if (newestFirst.length < limit) newestFirst.push(nextRunAt);
  else dropped = true;

  const slotAt = newestFirst[0] ?? nextRunAt;
  const next = schedule.next(new Date(now)).getTime();
  if (missed === 'skip') {
    const grace = p.graceMs ?? DEFAULT_MISSED_GRACE_MS;
    const onTime = now - slotAt < grace;
    return { slots: onTime ? [slotAt] : [], slotAt, nextRunAt: next, dropped: dropped || !onTime };
  }
  return { slots: newestFirst.reverse(), slotAt, nextRunAt: next, dropped };
}

/**
 * True when `value` is a missed-slot policy name.
 * @example isMissedPolicy('latest') // true
 */
export function isMissedPolicy(value: unknown): value is MissedPolicy {
  return typeof value === 'string' && (POLICIES as readonly string[]).includes(value);
}

/**
 * Returns `value` when it is a missed-slot policy.
 * @example checkMissedPolicy(options.missed ?? 'latest')
 * @throws InvalidScheduleError otherwise, naming the accepted values
 */
export function checkMissedPolicy(value: unknown): MissedPolicy {
  if (!isMissedPolicy(value)) throw new InvalidScheduleError(`missed must be "skip", "latest" or "all", got ${show(value)}`);
  return value;
}

/**
 * Reads the `missed` field of a stored schedule's options JSON (`ScheduleRow.optionsJson`).
 * Absent → {@link DEFAULT_MISSED_POLICY}.
 * @example missedPolicyOf('{"missed":"all"}') // 'all'
 * @throws InvalidScheduleError when the text is not a JSON object or `missed` is not a policy
 */
export function missedPolicyOf(optionsJson: string | null | undefined): MissedPolicy {
  if (optionsJson === null || optionsJson === undefined || optionsJson === '') return DEFAULT_MISSED_POLICY;
  let o: unknown;
  try {
    o = JSON.parse(optionsJson);
  } catch (e) {
    throw new InvalidScheduleError(`schedule options are not valid JSON: ${show(optionsJson)}`, { cause: e });
  }
  if (o === null) return DEFAULT_MISSED_POLICY;
  if (typeof o !== 'object' || Array.isArray(o)) throw new InvalidScheduleError(`schedule options must be a JSON object, got ${show(optionsJson)}`);
  const m = (o as Record<string, unknown>)['missed'];
  return m === undefined ? DEFAULT_MISSED_POLICY : checkMissedPolicy(m);
}
