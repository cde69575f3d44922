/**
 * Retention of the PostgreSQL driver: `jobPrune`, one prune per schema across the fleet.
 * @internal
 */
import { createHash } from 'node:crypto';
import { checkPruneParams } from '../shared/prune-params.js';
import type { JobPruneParams, JobPruneResult } from '../storage.js';
import { withTx } from './connection.js';
import type { PgExec } from './executor.js';
import { PRUNE_LOCK } from './queries/admin.js';
import { JOB_PRUNE } from './queries/jobs.js';
import { toInt } from './rows.js';

/** The advisory lock key of a schema's prune (a signed 64-bit integer, as text): one pruner per schema. */
export function pruneLockKey(schema: string): string {
  const h = createHash('sha1').update(`simple-durable-jobs:prune:${schema}`).digest();
  return h.readBigInt64BE(0).toString();
}

/**
 * `Storage.jobPrune`: one transaction of three statements (four round trips with BEGIN and
 * COMMIT): the prune lock — `pg_try_advisory_xact_lock` on a key derived from the schema, with
 * JIT compilation turned off for the transaction — then, when it was free, {@link JOB_PRUNE},
 * which picks, locks (skipping rows held elsewhere) and deletes the due workflows (finished roots
 * whose every job, the root included, has passed its own status's age) in one statement. The
 * snapshot of that statement is taken after the lock, so it sees everything a previous prune
 * deleted. When the lock is taken, nothing is read: `busy: true`.
 * @throws InvalidArgumentError on an age or limit `checkPruneParams` refuses
 */
export async function jobPrune(x: PgExec, p: JobPruneParams): Promise<JobPruneResult> {
  const { ages, limit, nothing } = checkPruneParams(p);
  if (nothing) return { deleted: 0, roots: 0, busy: false };
  return withTx(x.pool, async (c) => {
    const lock = await x.one<{ got: boolean }>(PRUNE_LOCK, [pruneLockKey(x.schema)], c);
    if (lock?.got !== true) return { deleted: 0, roots: 0, busy: true };
    const r = await x.one<{ deleted: string; roots: string }>(JOB_PRUNE, [x.now(), ages.completed, ages.failed, ages.cancelled, limit], c);
    return { deleted: toInt(r?.deleted ?? 0), roots: toInt(r?.roots ?? 0), busy: false };
  });
}
