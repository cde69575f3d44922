/**
 * The state of the model-based test (jobs, fan-outs, runs, paused queues) and the small helpers
 * every command uses. The rules live in `job-model.ts` (jobs) and `fan-out-model.ts`
 * (fan-outs); the comparison with the driver in `model-check.ts`.
 *
 * Time is injected: the driver's clock reads `real.now`, which only the commands move, so lease
 * expiry, deadlines and claim order are deterministic.
 */
import assert from 'node:assert/strict';
import type fc from 'fast-check';
import { isDurableJobsError } from '../../../src/errors.js';
import type { FanOutRow, Fence, JobRow, Storage } from '../../../src/storage/storage.js';

/** Lease length of every claim (ms of the injected clock). */
export const LEASE_MS = 1000;

/** A job as the model sees it. */
export interface MJob {
  id: string;
  queue: string;
  priority: number;
  maxRetries: number;
  uniqueKey: string | null;
  status: JobRow['status'];
  attempt: number;
  runCount: number;
  runAt: number;
  lockedBy: string | null;
  leaseExpiresAt: number | null;
  completedAt: number | null;
  /** When a `waiting` job wakes by itself (its fan-out's deadline). */
  wakeAt: number | null;
  parentId: string | null;
  fanOutId: string | null;
  fanOutIndex: number | null;
  /** Exact last error (a reclaim writes the contract's lease-expiry text). */
  lastError: string | null;
}

/**
 * A fan-out as the model sees it. Its counters are not stored: the contract says they equal
 * the children's current terminal states, so the model derives them from the children.
 */
export interface MFanOut {
  id: string;
  parentId: string;
  stepIndex: number;
  strategy: FanOutRow['strategy'];
  threshold: number | null;
  total: number;
  status: FanOutRow['status'];
  deadlineAt: number | null;
  createdAt: number;
  decidedAt: number | null;
}

/** The model of one run. */
export interface Model {
  now: number;
  queues: readonly [string, string];
  keys: readonly [string, string];
  jobs: MJob[];
  /** Fan-outs that exist (a retry of their parent or an ancestor drops them). */
  fanOuts: MFanOut[];
  /** Every run ever claimed (most still valid are the recent ones). */
  fences: Fence[];
  paused: Set<string>;
  /** Jobs that ever held checkpoints, so their (possibly dropped) steps are compared. */
  stepped: Set<string>;
  /** What the model's rules did during the current command (moved to the run report after it). */
  notes: Tally;
}

/** The system under test. */
export interface Real {
  s: Storage;
  now: number;
  tally: Tally;
}

/** How often each kind of command and outcome happened (a run report, not an assertion). */
export type Tally = Record<string, number>;

/** One command of the model. */
export type Cmd = fc.AsyncCommand<Model, Real>;

/** The terminal statuses. */
export const TERMINAL: ReadonlySet<string> = new Set(['completed', 'failed', 'cancelled']);
/** The non-terminal statuses. */
export const NON_TERMINAL: ReadonlySet<string> = new Set(['pending', 'running', 'waiting', 'paused']);
/** The worker ids that claim. */
export const WORKERS = ['worker-a', 'worker-b'] as const;

/** A fresh model for a run over two queues and two unique keys. */
export function newModel(now: number, tag: string): Model {
  return { now, queues: [`mq_${tag}_a`, `mq_${tag}_b`], keys: [`mk_${tag}_1`, `mk_${tag}_2`], jobs: [], fanOuts: [], fences: [], paused: new Set(), stepped: new Set(), notes: {} };
}

/** A new pending job's model state. */
export function pendingJob(m: Model, j: Pick<MJob, 'id' | 'queue' | 'priority' | 'maxRetries' | 'uniqueKey'> & Partial<MJob>): MJob {
  return { status: 'pending', attempt: 0, runCount: 0, runAt: m.now, lockedBy: null, leaseExpiresAt: null, completedAt: null, wakeAt: null, parentId: null, fanOutId: null, fanOutIndex: null, lastError: null, ...j };
}

/** Claim order: priority desc, run_at asc, id asc. */
export function claimOrder(a: MJob, b: MJob): number {
  return b.priority - a.priority || a.runAt - b.runAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/** Whether the run `f` still owns job `j` (its fence holds). */
export function holds(j: MJob | undefined, f: Fence): boolean {
  return j !== undefined && j.status === 'running' && j.lockedBy === f.workerId && j.runCount === f.runCount;
}

/** The model's job of that id (undefined once dropped by a retry of an ancestor). */
export function jobOf(m: Model, id: string): MJob | undefined {
  return m.jobs.find((j) => j.id === id);
}

/** The runs whose fence holds now, oldest first. */
export function liveRuns(m: Model): Fence[] {
  return m.fences.filter((f) => holds(jobOf(m, f.jobId), f));
}

/** Moves both clocks forward. */
export function tick(m: Model, r: Real, ms = 1): void {
  m.now += ms;
  r.now = m.now;
}

/** Asserts that `p` rejects with the library error of that code. */
export async function expectCode(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => isDurableJobsError(e, code as never), `expected ${code}`);
}

/** Adds `n` to a tally entry. */
export function count(t: Tally, key: string, n = 1): void {
  t[key] = (t[key] ?? 0) + n;
}

/** Picks a job by index (any status). */
export const pickJob = (m: Model, i: number): MJob | undefined => m.jobs[i % Math.max(1, m.jobs.length)];
/** Picks a job by index among those matching `ok`. */
export const pickWhere = (m: Model, i: number, ok: (j: MJob) => boolean): MJob | undefined => {
  const js = m.jobs.filter(ok);
  return js[i % Math.max(1, js.length)];
};
/** Recent fences are picked most often (small numbers are generated most): they are the ones still valid. */
export const pickFence = (m: Model, i: number): Fence | undefined => m.fences[m.fences.length - 1 - (i % Math.max(1, m.fences.length))];
/** Picks a run whose fence holds. */
export const pickLive = (m: Model, i: number): Fence | undefined => {
  const runs = liveRuns(m);
  return runs[i % Math.max(1, runs.length)];
};

/** Sorted copy of ids, for order-free comparisons. */
export const sorted = (ids: Iterable<string>): string[] => [...ids].sort();
