/**
 * MySQL/MariaDB statements of the bulk actions by id (`bulk-ops.ts`): reads and row locks by
 * id, the unique keys live jobs hold, subtree walks and subtree deletion.
 * @internal
 */
import { PRUNE_DELETE_JOBS, PRUNE_DELETE_SIGNALS, PRUNE_DELETE_STEPS, pruneDeleteSql } from './jobs.js';

/** Jobs' fan-outs, without locks (planning which fan-outs to lock first). Params: ids[]. Result: `{ id, fan_out_id }[]`. */
export const JOB_PEEK_MANY = 'SELECT id, fan_out_id FROM sdj_jobs WHERE id IN (?)';

/**
 * Locks jobs by id, in id order (after the fan-outs they may count on: fan-outs before jobs),
 * through the primary key only, and reads what the bulk actions decide on.
 * Params: ids[]. Result: `{ id, status, parent_id, fan_out_id, unique_key }[]`.
 */
export const JOB_LOCK_MANY =
  'SELECT id, status, parent_id, fan_out_id, unique_key FROM sdj_jobs FORCE INDEX (PRIMARY) WHERE id IN (?) ORDER BY id FOR UPDATE';

/** The status of jobs by id, without locks. Params: ids[]. Result: `{ id, status }[]`. */
export const JOB_STATUS_MANY = 'SELECT id, status FROM sdj_jobs WHERE id IN (?)';

/**
 * Which of the given unique keys a live job holds (`sdj_jobs_unique_active`, byte-exact).
 * Params: keys[]. Result: `{ unique_key }[]`.
 */
export const JOB_UNIQUE_KEYS_HELD = 'SELECT unique_key FROM sdj_jobs WHERE unique_active IN (?)';

/**
 * Every job below the given ones, with its parent, so each given job's own subtree can be told
 * apart (a job under two given jobs may come twice). No locks. Params: rootIds[]. Result: `{ id, parent_id }[]`.
 */
export const JOB_SUBTREE_EDGES =
  'WITH RECURSIVE sub (id, parent_id) AS (SELECT id, parent_id FROM sdj_jobs WHERE parent_id IN (?) ' +
  'UNION ALL SELECT c.id, c.parent_id FROM sdj_jobs c JOIN sub ON c.parent_id = sub.id) SELECT id, parent_id FROM sub';

/** Deletes the checkpoints of deleted jobs. Params: JSON array of job ids. */
export const BULK_DELETE_STEPS = PRUNE_DELETE_STEPS;

/** Deletes the signals of deleted jobs. Params: JSON array of job ids. */
export const BULK_DELETE_SIGNALS = PRUNE_DELETE_SIGNALS;

/** Deletes the fan-outs of deleted jobs (as parents), through `sdj_fan_outs_parent`. Params: JSON array of job ids. */
export const BULK_DELETE_FAN_OUTS = pruneDeleteSql('sdj_fan_outs', 'parent_id', 'sdj_fan_outs_parent');

/** Deletes jobs. Params: JSON array of job ids. */
export const BULK_DELETE_JOBS = PRUNE_DELETE_JOBS;
