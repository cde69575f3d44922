/**
 * The fan-out settle decision as pure functions: given a fan-out's counters and status and what
 * just happened to one of its children (or to its deadline), the new counters and status, and
 * what the driver must touch in the same transaction — the parent to resume (`waiting` →
 * `pending`, on the deciding transition only) and, on a failed decision, the unfinished
 * children to cancel (each of which comes back here as a `cancelled` child, on its own fan-out).
 * Drivers keep only the SQL and the lock order; the rule ({@link decideFanOut}) and the cascade's
 * bookkeeping live here once.
 *
 * Internal to the storage layer: every export carries the JSDoc internal tag (so it is
 * stripped from the published declaration files), and none is exported from the package.
 */
import { decideFanOut, type FanOutCounts } from '../fan-out-rules.js';
import type { FanOutRow } from '../storage.js';

/** How a child ended, as its fan-out counts it. @internal */
export type ChildOutcome = 'succeeded' | 'failed' | 'cancelled';

/** Counter increments (or, for a retried child, the counts it takes back). @internal */
export interface FanOutCounters {
  succeeded: number;
  failed: number;
  cancelled: number;
}

/** What the decision reads and writes of a fan-out. @internal */
export type FanOutState = FanOutCounts & Pick<FanOutRow, 'status'>;

/** What happened to a fan-out. @internal */
export type FanOutEvent =
  /** A child reached a terminal status (`completed` counts as succeeded). */
  | { kind: 'child-ended'; outcome: ChildOutcome }
  /** A failed or cancelled child was retried (`jobRetry`): its old outcome is taken back out. */
  | { kind: 'child-retried'; previous: 'failed' | 'cancelled' }
  /** The fan-out's deadline passed (`fanOutExpire`). */
  | { kind: 'deadline-passed' };

/** What a driver writes after an event. @internal */
export interface FanOutSettlement {
  /** The fan-out's counters and status after the event. */
  next: FanOutState;
  /** The decision this event made (the deciding transition), or null when none. */
  decided: 'succeeded' | 'failed' | null;
  /** Turn the parent from `waiting` to `pending`: exactly on the deciding transition. */
  resumeParent: boolean;
  /** Cancel the fan-out's unfinished children (and their subtrees): on a failed decision. */
  cancelUnfinishedChildren: boolean;
}

/** Zero counters. @internal */
export function noCounters(): FanOutCounters {
  return { succeeded: 0, failed: 0, cancelled: 0 };
}

/** The counter a child in terminal job status `status` adds to. @internal */
export function childOutcomeOf(status: 'completed' | 'failed' | 'cancelled'): ChildOutcome {
  return status === 'completed' ? 'succeeded' : status;
}

/** Adds one child outcome to the pending increments of `fanOutId` (batched per transaction). @internal */
export function addChildOutcome(deltas: Map<string, FanOutCounters>, fanOutId: string, outcome: ChildOutcome): void {
  let d = deltas.get(fanOutId);
  if (d === undefined) {
    d = noCounters();
    deltas.set(fanOutId, d);
  }
  d[outcome]++;
}

/**
 * Adds increments to a fan-out and decides it when still `running` and its strategy allows.
 * Counters always move (they keep equalling the children's terminal statuses, also after a
 * decision); a decision is made once and never reopened.
 * @internal
 */
export function settleFanOutCounts(f: FanOutState, delta: FanOutCounters): FanOutSettlement {
  const next: FanOutState = {
    strategy: f.strategy,
    threshold: f.threshold,
    total: f.total,
    succeeded: f.succeeded + delta.succeeded,
    failed: f.failed + delta.failed,
    cancelled: f.cancelled + delta.cancelled,
    status: f.status,
  };
  if (f.status !== 'running') return unchanged(next);
  const decision = decideFanOut(next);
  if (decision === 'running') return unchanged(next);
  next.status = decision;
  return { next, decided: decision, resumeParent: true, cancelUnfinishedChildren: decision === 'failed' };
}

/**
 * The decision on a fan-out whose counters a statement already advanced in this transaction
 * (the row it returned): {@link settleFanOutCounts} with nothing more to add.
 * @internal
 */
export function settleCountedFanOut(f: FanOutState): FanOutSettlement {
  return settleFanOutCounts(f, noCounters());
}

/**
 * True when `fanOutExpire` applies at `now`: the fan-out is still `running` and has a deadline
 * at or before `now` (the `deadline-passed` event of {@link settleFanOut}).
 * @internal
 */
export function fanOutDeadlinePassed(f: Pick<FanOutRow, 'status' | 'deadlineAt'>, now: number): boolean {
  return f.status === 'running' && f.deadlineAt !== null && now >= f.deadlineAt;
}

/** Applies one event to a fan-out (see {@link FanOutEvent}). @internal */
export function settleFanOut(f: FanOutState, e: FanOutEvent): FanOutSettlement {
  switch (e.kind) {
    case 'child-ended': {
      const delta = noCounters();
      delta[e.outcome] = 1;
      return settleFanOutCounts(f, delta);
    }
    case 'child-retried': {
      // Taking an outcome back never decides: the rule is monotone in every counter.
      const next = { ...f, [e.previous]: Math.max(0, f[e.previous] - 1) };
      return unchanged(next);
    }
    case 'deadline-passed': {
      if (f.status !== 'running') return unchanged({ ...f });
      return { next: { ...f, status: 'failed' }, decided: 'failed', resumeParent: true, cancelUnfinishedChildren: true };
    }
  }
}

function unchanged(next: FanOutState): FanOutSettlement {
  return { next, decided: null, resumeParent: false, cancelUnfinishedChildren: false };
}
