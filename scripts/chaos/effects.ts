/**
 * Side-effect records written by the chaos handlers into `chaos_effects`, in the same database
 * as the jobs, so the audit can reconstruct who ran what and when.
 *
 * Kinds:
 * - `run`: one row per handler invocation of a job (inserted when the handler starts). `state`
 *   is `active` while it runs, `suspended` just before a durable call that may suspend
 *   (fan-out, sleep, signal wait; `ended_at` = that instant), `active` again when the call
 *   returned, `ended` when the handler returned or threw (`ended_at` = that instant). `info` is
 *   `not-owner:<worker>` when the job row was not locked by a worker of this process as the
 *   handler began. `owner` is the worker id holding the row then, `claimed_at` the claim instant
 *   (the row's `started_at`, database clock).
 * - `step`: one execution of a workflow step (`step` = its index, `info` = the nonce it returned,
 *   `run_count` = the run of the parent job that executed it).
 * - `resume`: a fan-out parent ran past its decided `fanOut` (`info` = what it saw).
 * - `woke`: a sleeping job ran past its sleep. `tick`: a schedule slot ran (`info` = the slot).
 * - `reclaim`: a worker's maintenance pass reclaimed the job (`info` = the new status).
 * - `gate`: a gated job (see handlers-extra.ts) failed on purpose, or passed (`info`).
 * - `opretry`: the operator is about to call `retryJob` on the job (written first, so a run
 *   after the retry sees it; `worker` = `operator`).
 * - `stopped`: a worker's `stop()` resolved (`job_id` = the worker id, `started_at` = that
 *   instant, `info` = `boot:<point>` for a worker stopped during its start, else `final`).
 * - `zombie`: something of a stopped worker ran after its `stop()` resolved (`job_id` = the
 *   worker id, `info` = what: a storage call, a log line, an open LISTEN, start() not resolving).
 */
import { randomBytes } from 'node:crypto';
import type { ChaosDb } from './backend.js';

/** One row of `chaos_effects` as read back by the audit. */
export interface EffectRow {
  id: string;
  kind: string;
  jobId: string;
  step: number | null;
  worker: string;
  pid: number;
  runCount: number;
  state: string | null;
  info: string | null;
  startedAt: number;
  endedAt: number | null;
  /** `run` rows: the worker id holding the job row as the handler began. */
  owner: string | null;
  /** `run` rows: the claim instant of this run (database clock). */
  claimedAt: number | null;
}

/** A new effect row. */
export interface EffectInsert {
  kind: string;
  jobId: string;
  step?: number | null;
  runCount: number;
  state?: string | null;
  info?: string | null;
  startedAt?: number;
  endedAt?: number | null;
  owner?: string | null;
  claimedAt?: number | null;
}

/** Writes effect rows for one worker process. */
export class Effects {
  constructor(
    private readonly db: ChaosDb,
    readonly worker: string,
    readonly pid: number,
  ) {}

  /** Inserts one effect; resolves with its id once it is stored. */
  async insert(e: EffectInsert): Promise<string> {
    const id = randomBytes(12).toString('hex');
    await this.db.run(
      'INSERT INTO chaos_effects (id, kind, job_id, step, worker, pid, run_count, state, info, started_at, ended_at, owner, claimed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
      [id, e.kind, e.jobId, e.step ?? null, this.worker, this.pid, e.runCount, e.state ?? null, e.info ?? null, e.startedAt ?? Date.now(), e.endedAt ?? null, e.owner ?? null, e.claimedAt ?? null],
    );
    return id;
  }

  /** Whether an effect of this kind was recorded for the job (e.g. the operator's retry mark). */
  async has(kind: string, jobId: string): Promise<boolean> {
    const rows = await this.db.all('SELECT id FROM chaos_effects WHERE job_id = ? AND kind = ?', [jobId, kind]);
    return rows.length > 0;
  }

  /** Updates the state (and end instant) of a `run` row. */
  async setState(id: string, state: 'active' | 'suspended' | 'ended', endedAt: number | null, info?: string): Promise<void> {
    if (info === undefined) await this.db.run('UPDATE chaos_effects SET state = ?, ended_at = ? WHERE id = ?', [state, endedAt, id]);
    else await this.db.run('UPDATE chaos_effects SET state = ?, ended_at = ?, info = ? WHERE id = ?', [state, endedAt, info, id]);
  }
}

/** Reads every effect row (the audit). */
export async function readEffects(db: ChaosDb): Promise<EffectRow[]> {
  const rows = await db.all<Record<string, unknown>>(
    'SELECT id, kind, job_id, step, worker, pid, run_count, state, info, started_at, ended_at, owner, claimed_at FROM chaos_effects',
  );
  return rows.map((r) => ({
    id: String(r['id']),
    kind: String(r['kind']),
    jobId: String(r['job_id']),
    step: r['step'] === null ? null : Number(r['step']),
    worker: String(r['worker']),
    pid: Number(r['pid']),
    runCount: Number(r['run_count']),
    state: r['state'] === null ? null : String(r['state']),
    info: r['info'] === null ? null : String(r['info']),
    startedAt: Number(r['started_at']),
    endedAt: r['ended_at'] === null ? null : Number(r['ended_at']),
    owner: r['owner'] === null ? null : String(r['owner']),
    claimedAt: r['claimed_at'] === null ? null : Number(r['claimed_at']),
  }));
}
