/**
 * What the retention tests of every driver share (`test/storage/*-retention-adversarial.test.ts`):
 * - {@link ALL0}, the ages that make every finished job due as soon as it finished;
 * - {@link finishedRoots}, many completed roots made through the storage contract;
 * - {@link finishedWorkflow}, a root with a checkpoint, a signal and a completed child;
 * - {@link pruneWideRoot}, a root with thousands of descendants pruned in worker-sized batches;
 * - {@link settle}, a promise turned into a value a test can inspect after the fact.
 * Nothing here knows SQL: each test writes its raw rows with its own driver.
 */
import type { JobPruneParams, JobPruneResult, Storage } from '../../src/storage/storage.js';
import { claim, fenceOf, jobInsert, runningJob, stepRow, uniqueName, waitForClockPast } from './factories.js';

/** Every finished status due as soon as it finished (strictly before now). */
export const ALL0: JobPruneParams['olderThanMs'] = { completed: 0, failed: 0, cancelled: 0 };

/** `n` completed roots on a queue of their own, finished in batches; returns their ids and the latest completion time. */
export async function finishedRoots(s: Storage, n: number): Promise<{ ids: string[]; completedAt: number }> {
  const queue = uniqueName('q');
  const ids: string[] = [];
  for (let i = 0; i < n; i += 500) {
    const jobs = Array.from({ length: Math.min(500, n - i) }, () => jobInsert({ queue }));
    await s.jobInsertMany({ jobs });
    ids.push(...jobs.map((j) => j.id));
  }
  let last = 0;
  for (;;) {
    const claimed = await claim(s, queue, 500);
    if (claimed.length === 0) break;
    const stored = await s.jobFinishMany({ items: claimed.map((r) => ({ ...fenceOf(r), outcome: 'completed' as const, resultJson: null })) });
    last = Math.max(last, ...stored.map((t) => t ?? 0));
  }
  return { ids, completedAt: last };
}

/** A finished workflow of two jobs made by {@link finishedWorkflow}: what each write answered. */
export interface FinishedWorkflow {
  /** The root's id. */
  id: string;
  /** What `stepRecord` answered for the root's checkpoint (true: recorded). */
  recorded: boolean;
  /** What `jobFinishMany` answered for the child, then the root. */
  stored: (number | null)[];
}

/**
 * A running root with a checkpoint and a buffered signal, and a child run under it; the child,
 * then the root, completes. Waits until the database clock has passed both completions, so a
 * prune with {@link ALL0} finds the workflow due.
 */
export async function finishedWorkflow(s: Storage): Promise<FinishedWorkflow> {
  const { fence } = await runningJob(s);
  const id = fence.jobId;
  const recorded = await s.stepRecord({ fence, step: stepRow(id, 0) });
  await s.signalSend({ jobId: id, name: 'poke', payloadJson: '1' });
  const kid = await runningJob(s, { parentId: id });
  const stored = await s.jobFinishMany({
    items: [
      { ...kid.fence, outcome: 'completed', resultJson: null },
      { ...fence, outcome: 'completed', resultJson: null },
    ],
  });
  await waitForClockPast(s, Math.max(...stored.map((x) => x ?? 0)));
  return { id, recorded, stored };
}

/** What {@link pruneWideRoot} saw. */
export interface WidePrune {
  /** The first batch. */
  first: JobPruneResult;
  /** How long the first batch took (ms, rounded). */
  ms: number;
  /** Jobs deleted by every batch, the first included. */
  total: number;
}

/**
 * A running root whose descendants `writeKids` writes straight into the database (claims and
 * finishes of thousands of jobs would only slow a test), completed beside `others` completed
 * roots; once all are due, one timed prune of `limit` roots, then further batches until one
 * deletes fewer than `limit` roots.
 */
export async function pruneWideRoot(s: Storage, others: number, limit: number, writeKids: (rootId: string) => void | Promise<void>): Promise<WidePrune> {
  const root = await runningJob(s);
  await writeKids(root.fence.jobId);
  const stored = await s.jobFinishMany({ items: [{ ...root.fence, outcome: 'completed', resultJson: null }] });
  const done = await finishedRoots(s, others);
  await waitForClockPast(s, Math.max(stored[0] ?? 0, done.completedAt));
  const started = performance.now();
  const first = await s.jobPrune({ olderThanMs: ALL0, limit });
  const ms = Math.round(performance.now() - started);
  let total = first.deleted;
  let last = first;
  while (last.roots >= limit) {
    last = await s.jobPrune({ olderThanMs: ALL0, limit });
    total += last.deleted;
  }
  return { first, ms, total };
}

/** `p` settled: `{ r }` with its value, or `{ e }` with the reason it rejected. */
export function settle<T>(p: Promise<T>): Promise<{ r: T } | { e: unknown }> {
  return p.then(
    (r) => ({ r }),
    (e: unknown) => ({ e }),
  );
}
