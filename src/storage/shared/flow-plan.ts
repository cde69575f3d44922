/**
 * The decision of a limited claim, shared by every driver: given the ready candidates a driver
 * read inside its serialized `jobClaimLimited` transaction, the limits, the running counts per
 * concurrency group and the rate state per rate group, which candidates to claim and how the rate
 * state moves. Pure: no SQL, no clock (the driver passes the database's now). Rules in
 * `../flow-rows.ts`.
 * @internal
 */
import type { LimitRow } from '../flow-rows.js';

/** A ready job as the planner needs it. @internal */
export interface FlowCandidate {
  id: string;
  queue: string;
  type: string;
  priority: number;
  runAt: number;
  concurrencyKey: string | null;
  rateKey: string | null;
}

/** A rate group's state to store after the claim. @internal */
export interface RateStateWrite {
  scope: 'type' | 'queue';
  name: string;
  /** The group key ('' for a queue, or a type without a key). */
  key: string;
  tat: number;
}

/** Everything a plan reads. @internal */
export interface FlowPlanInput {
  /** Database now (ms). */
  now: number;
  /** Queue name → most jobs to claim in it. */
  want: ReadonlyMap<string, number>;
  /** Type limit rows by type. */
  typeLimits: ReadonlyMap<string, LimitRow>;
  /** Queue limit rows by queue. */
  queueLimits: ReadonlyMap<string, LimitRow>;
  /** Running jobs per concurrency group ({@link typeGroup} / {@link queueGroup}); absent = 0. */
  running: ReadonlyMap<string, number>;
  /** Stored tat per rate group ({@link typeGroup} / {@link queueGroup}); absent = no row (no constraint). */
  tat: ReadonlyMap<string, number>;
  /** Ready candidates, any order. */
  candidates: readonly FlowCandidate[];
}

/** What a plan decides. @internal */
export interface FlowPlan {
  /** Ids to claim, in claim order. */
  picked: string[];
  /** Rate state rows to upsert. */
  tats: RateStateWrite[];
  /** See `JobClaimLimitedResult.retryInMs`. */
  retryInMs: number | null;
  /** See `JobClaimLimitedResult.saturated`. */
  saturated: boolean;
}

/** Map key of a type group: type and key (null counts as ''). @internal */
export function typeGroup(type: string, key: string | null): string {
  return `t\u0000${type}\u0000${key ?? ''}`;
}

/** Map key of a queue group. @internal */
export function queueGroup(queue: string): string {
  return `q\u0000${queue}`;
}

/** Claim order: priority desc, run_at, id. */
function claimOrder(a: FlowCandidate, b: FlowCandidate): number {
  if (a.priority !== b.priority) return b.priority - a.priority;
  if (a.runAt !== b.runAt) return a.runAt - b.runAt;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** A rate gate: the group, its emission interval, and where its state is written. */
interface Gate {
  group: string;
  interval: number;
  write: Omit<RateStateWrite, 'tat'>;
}

function rateGate(limit: LimitRow | undefined, group: string, write: Omit<RateStateWrite, 'tat'>): Gate | undefined {
  if (!limit || limit.rateLimit === null || limit.ratePeriodMs === null) return undefined;
  return { group, interval: limit.ratePeriodMs / limit.rateLimit, write };
}

/** Most lateness a rate group forgives (ms): see {@link nextTat}. @internal */
export const RATE_CATCH_UP_MAX_MS = 1_000;

/**
 * The rate rule's step (rules in `../flow-rows.ts`): the tat a start at `now` leaves, given the
 * stored tat (undefined: no row) and the emission interval T. A start may come up to
 * c = min(T, {@link RATE_CATCH_UP_MAX_MS}) late without losing its turn: tat' = max(tat, now − c) + T.
 * @internal
 */
export function nextTat(tat: number | undefined, now: number, interval: number): number {
  const c = Math.min(interval, RATE_CATCH_UP_MAX_MS);
  // now + (T − c), not (now − c) + T: exactly now when c = T, whatever the rounding.
  return tat !== undefined && tat > now - c ? tat + interval : now + (interval - c);
}

/**
 * Picks the candidates to claim: per queue in claim order, each job whose every concurrency group
 * has room and every rate group allows a start at `now` (tat <= now) and has not started a job in
 * this claim yet, counting the jobs picked before it. A rate group starts at most one job per
 * claim, so a driver reads at most two ready jobs of a group with a rate limit (the one that
 * starts and the one that reports the wait); a group still allowed after its start (catching up)
 * reports `retryInMs` 1 for its next job. @internal
 */
export function planLimitedClaim(input: FlowPlanInput): FlowPlan {
  const { now } = input;
  const running = new Map(input.running);
  const tat = new Map(input.tat);
  const left = new Map(input.want);
  const written = new Map<string, RateStateWrite>();
  const picked: string[] = [];
  let retryInMs: number | null = null;
  let saturated = false;
  const seen = new Set<string>();
  for (const c of [...input.candidates].sort(claimOrder)) {
    if (seen.has(c.id)) continue;
    seen.add(c.id);
    const room = left.get(c.queue) ?? 0;
    if (room <= 0) continue;
    const typeLimit = input.typeLimits.get(c.type);
    const queueLimit = input.queueLimits.get(c.queue);
    const slots: { group: string; limit: number }[] = [];
    if (typeLimit?.concurrency != null) slots.push({ group: typeGroup(c.type, c.concurrencyKey), limit: typeLimit.concurrency });
    if (queueLimit?.concurrency != null) slots.push({ group: queueGroup(c.queue), limit: queueLimit.concurrency });
    const gates = [
      rateGate(typeLimit, typeGroup(c.type, c.rateKey), { scope: 'type', name: c.type, key: c.rateKey ?? '' }),
      rateGate(queueLimit, queueGroup(c.queue), { scope: 'queue', name: c.queue, key: '' }),
    ].filter((g): g is Gate => g !== undefined);
    const full = slots.some((s) => (running.get(s.group) ?? 0) >= s.limit);
    // Blocked by a rate: a group whose tat is ahead of now, or that started a job in this claim.
    let blocked = false;
    let wait = 0;
    for (const g of gates) {
      const t = tat.get(g.group);
      if (written.has(g.group) || (t !== undefined && t > now)) {
        blocked = true;
        if (t !== undefined) wait = Math.max(wait, t - now);
      }
    }
    if (full) saturated = true;
    if (blocked && !full) {
      const ms = Math.max(1, Math.ceil(wait));
      retryInMs = retryInMs === null ? ms : Math.min(retryInMs, ms);
    }
    if (full || blocked) continue;
    picked.push(c.id);
    left.set(c.queue, room - 1);
    for (const s of slots) running.set(s.group, (running.get(s.group) ?? 0) + 1);
    for (const g of gates) {
      const next = nextTat(tat.get(g.group), now, g.interval);
      tat.set(g.group, next);
      written.set(g.group, { ...g.write, tat: next });
    }
  }
  return { picked, tats: [...written.values()], retryInMs, saturated };
}
