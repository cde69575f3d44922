/**
 * SQLite statements of the bulk actions by id (`bulk-ops.ts`). The ids go as one JSON array
 * parameter, so no list is too long for SQLite's parameter limit. Deleting reuses the
 * statements retention uses (`JOB_DELETE_MANY`, `STEP_DELETE_FOR_JOBS`, ...).
 * @internal
 */

/**
 * The jobs of the given ids (ids not found left out). Params: JSON array of ids.
 * Result: `{ id, status, parent_id }[]`.
 */
export const JOB_STATES_MANY = 'SELECT id, status, parent_id FROM sdj_jobs WHERE id IN (SELECT value FROM json_each(?))';

/**
 * Every job below the given ones (over parent_id, `sdj_jobs_parent`), each with its parent and
 * status; a job below two given ones comes once. Params: JSON array of ids.
 * Result: `{ id, parent_id, status }[]`.
 */
export const JOB_SUBTREE_STATES = `
WITH RECURSIVE sub(id, parent_id, status) AS (
  SELECT id, parent_id, status FROM sdj_jobs WHERE parent_id IN (SELECT value FROM json_each(?))
  UNION
  SELECT j.id, j.parent_id, j.status FROM sdj_jobs j JOIN sub ON j.parent_id = sub.id)
SELECT id, parent_id, status FROM sub`;
