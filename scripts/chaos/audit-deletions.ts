/**
 * The deleted rows of a run (prune-archive.ts), as the audit sees them: each job deletion with
 * the job as it was, the database time, and which prune transaction it belongs to; and the
 * checkpoints, fan-outs and signals a prune deleted, matched with the pruned job they belong to.
 *
 * One prune transaction is recognised exactly on PostgreSQL (transaction id) and SQLite (the
 * token of the `jobPrune` call). On MySQL a trigger can read no transaction id: job deletions
 * belong to one prune when one connection holding the prune lock made them with no other
 * connection's prune in between (two prunes of one connection back to back count as one), and a
 * checkpoint, fan-out or signal goes with its job when the same connection deleted both within
 * {@link MYSQL_SAME_PRUNE_MS}.
 */
import type { FanOutRec, JobRec, SignalRec, StepRec } from './audit-data.js';
import type { Backend } from './options.js';
import type { DeletedRow } from './prune-archive.js';

/** MySQL: the longest time between deleting a job's rows and the job in one prune. */
const MYSQL_SAME_PRUNE_MS = 10_000;

/** One deleted job row. */
export interface Deletion {
  seq: number;
  /** The row as it was when deleted. */
  job: JobRec;
  /** Database clock (ms). */
  deletedAt: number;
  /** MySQL: the deleting statement's start (µs). */
  stmtAt: number | null;
  /** PostgreSQL: transaction id; MySQL: connection id; SQLite: the token of the `jobPrune` call. */
  tx: string | null;
  /** Deleted by a transaction holding the fleet's prune lock (SQLite: inside a `jobPrune` call). */
  inPrune: boolean;
  /** Which trigger saw it (`history`, `live`: PostgreSQL's jobs; `table`: the others). */
  source: string;
  /** The prune transaction it belongs to (see the module header); null when not in a prune. */
  txKey: string | null;
}

/** Builds the job deletions from the archive rows (in deletion order). */
export function buildDeletions(rows: readonly DeletedRow[], backend: Backend, toJob: (r: Record<string, unknown>) => JobRec): Deletion[] {
  let group = 0;
  let lastConn: string | null = null;
  return rows.map((r) => {
    let txKey: string | null = null;
    if (r.inPrune) {
      if (backend === 'mysql') {
        if (r.tx !== lastConn) group++;
        lastConn = r.tx;
        txKey = `conn ${String(r.tx)} #${group}`;
      } else txKey = `${backend === 'postgres' ? 'txid' : 'call'} ${String(r.tx)}`;
    }
    return { seq: r.seq, job: toJob(r.row), deletedAt: r.deletedAt, stmtAt: r.stmtAt, tx: r.tx, inPrune: r.inPrune, source: r.source, txKey };
  });
}

/** A deletion in words, for violation texts. */
export function describeDeletion(d: Deletion): string {
  const where = d.txKey ?? `${d.tx === null ? '' : `tx ${d.tx}, `}no prune lock`;
  return `${d.job.type} ${d.job.id} (${d.job.status}${d.job.parentId === null ? ', root' : `, parent ${d.job.parentId}`}) deleted at ${d.deletedAt} [${where}, ${d.source}]`;
}

/** A checkpoint, fan-out or signal row a prune deleted whose job was not pruned with it. */
export interface StrayDeletion {
  what: string;
  owner: string;
  deletedAt: number;
  tx: string | null;
}

/** The rows of pruned workflows: checkpoints, fan-outs and signals, as they were when pruned. */
export interface PrunedRows {
  steps: StepRec[];
  fanOuts: FanOutRec[];
  signals: SignalRec[];
  /** Rows deleted by a prune that did not prune their job in the same transaction. */
  strays: StrayDeletion[];
}

/**
 * Keeps the archived checkpoints, fan-outs and signals deleted by a prune together with the
 * pruned job they belong to (rows deleted otherwise, by retries, are left out).
 */
export function attachPruned(
  backend: Backend,
  pruned: ReadonlyMap<string, Deletion>,
  rows: { steps: readonly DeletedRow[]; fanOuts: readonly DeletedRow[]; signals: readonly DeletedRow[] },
  map: { step: (r: Record<string, unknown>) => StepRec; fanOut: (r: Record<string, unknown>) => FanOutRec; signal: (r: Record<string, unknown>) => SignalRec },
): PrunedRows {
  const out: PrunedRows = { steps: [], fanOuts: [], signals: [], strays: [] };
  const withJob = (r: DeletedRow, owner: string): boolean => {
    const d = pruned.get(owner);
    if (d === undefined || d.tx !== r.tx) return false;
    return backend !== 'mysql' || Math.abs(d.deletedAt - r.deletedAt) <= MYSQL_SAME_PRUNE_MS;
  };
  const take = <T>(list: readonly DeletedRow[], ownerCol: string, label: (r: Record<string, unknown>) => string, into: T[], to: (r: Record<string, unknown>) => T): void => {
    for (const r of list) {
      if (!r.inPrune) continue;
      const owner = String(r.row[ownerCol]);
      if (withJob(r, owner)) into.push(to(r.row));
      else out.strays.push({ what: label(r.row), owner, deletedAt: r.deletedAt, tx: r.tx });
    }
  };
  take(rows.steps, 'job_id', (r) => `step ${String(r['step_index'])} (${String(r['step_name'])})`, out.steps, map.step);
  take(rows.fanOuts, 'parent_id', (r) => `fan-out ${String(r['id'])}`, out.fanOuts, map.fanOut);
  take(rows.signals, 'job_id', (r) => `signal ${String(r['name'])}`, out.signals, map.signal);
  return out;
}
