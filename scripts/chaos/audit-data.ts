/**
 * What the audit reads after a chaos run: the library's tables (straight SQL, not through the
 * engine under test), the record of every deleted job row (prune-archive.ts), the effects the
 * handlers recorded, the life of every worker process, and the reconstructed handler runs with
 * the interval each one owned its job.
 */
import type { ChaosDb } from './backend.js';
import { attachPruned, buildDeletions, type Deletion, type StrayDeletion } from './audit-deletions.js';
import { readEffects, type EffectRow } from './effects.js';
import type { ProcLife } from './fleet.js';
import type { Plan } from './load.js';
import type { OperatorLog } from './operator.js';
import type { Backend, RetentionAges } from './options.js';
import { readDeleted } from './prune-archive.js';

/** A row of `sdj_jobs` (the columns the audit needs). */
export interface JobRec {
  id: string;
  type: string;
  queue: string;
  status: string;
  attempt: number;
  maxRetries: number;
  runCount: number;
  args: string | null;
  /** The stored result; not loaded for `chaos.big` jobs (the audit reads those one at a time). */
  result: string | null;
  meta: string | null;
  lastError: string | null;
  parentId: string | null;
  fanOutId: string | null;
  fanOutIndex: number | null;
  completedAt: number | null;
}

/** A row of `sdj_steps` (or of a pruned job: as it was when pruned). */
export interface StepRec {
  jobId: string;
  stepIndex: number;
  stepName: string;
  status: string;
  output: string | null;
  error: string | null;
  pruned: boolean;
}

/** A row of `sdj_fan_outs`. */
export interface FanOutRec {
  id: string;
  parentId: string;
  strategy: string;
  threshold: number | null;
  total: number;
  succeeded: number;
  failed: number;
  cancelled: number;
  status: string;
  createdAt: number;
  decidedAt: number | null;
  pruned: boolean;
}

/** A row of `sdj_signals`. */
export interface SignalRec {
  jobId: string;
  name: string;
  payload: string | null;
  consumedAt: number | null;
  pruned: boolean;
}

/** One handler invocation of a job and the interval it owned the job. */
export interface Run {
  jobId: string;
  runCount: number;
  worker: string;
  start: number;
  /** Recorded end, the process's exit when it died mid-run, or Infinity when unknown. */
  end: number;
  state: string;
  info: string | null;
  /** The process died (SIGKILL) while this run was active. */
  interrupted: boolean;
  /** The worker id that held the job row as the handler began. */
  owner: string | null;
  /** The claim instant of this run (database clock), when recorded. */
  claimedAt: number | null;
}

/** The orchestrator's last `queue.prune()`, after every other process stopped. */
export interface FinalPrune {
  /** The database clock just before the call. */
  before: number;
  deleted: number;
  error: string | null;
}

/** How the run was set up, as far as the audit needs it. */
export interface AuditSetup {
  backend: Backend;
  retention: RetentionAges | null;
  finalPrune: FinalPrune | null;
}

/** Everything the invariants look at. */
export interface AuditInput extends AuditSetup {
  /** The jobs still in `sdj_jobs`. */
  jobs: Map<string, JobRec>;
  children: Map<string, JobRec[]>;
  /** Every job that ended: those in `jobs`, and the pruned ones as they were when pruned. */
  all: Map<string, JobRec>;
  /** Children by parent id, over `all`. */
  allChildren: Map<string, JobRec[]>;
  /** Every deleted job row, in deletion order (prunes, retries' moves and drops, anything else). */
  deletions: Deletion[];
  /** The pruned jobs: their (first) deletion by a prune, by id. */
  pruned: Map<string, Deletion>;
  /** Checkpoints, fan-outs and signals: those in the database, and those pruned with their job. */
  steps: StepRec[];
  fanOuts: FanOutRec[];
  signals: SignalRec[];
  /** Checkpoints, fan-outs and signals a prune deleted without pruning their job with them. */
  strays: StrayDeletion[];
  effects: EffectRow[];
  runs: Map<string, Run[]>;
  lives: Map<string, ProcLife>;
  plans: Map<string, Plan>;
  /** What the operator did during the run. */
  ops: OperatorLog;
}

const num = (v: unknown): number => Number(v);
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
const strOrNull = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));

/** A job row (of `sdj_jobs` or of the deletion archive) as the audit sees it. */
export function toJobRec(r: Record<string, unknown>): JobRec {
  return {
    id: String(r['id']),
    type: String(r['type']),
    queue: String(r['queue']),
    status: String(r['status']),
    attempt: num(r['attempt']),
    maxRetries: num(r['max_retries']),
    runCount: num(r['run_count']),
    args: strOrNull(r['args']),
    result: strOrNull(r['result']),
    meta: strOrNull(r['meta']),
    lastError: strOrNull(r['last_error']),
    parentId: strOrNull(r['parent_id']),
    fanOutId: strOrNull(r['fan_out_id']),
    fanOutIndex: numOrNull(r['fan_out_index']),
    completedAt: numOrNull(r['completed_at']),
  };
}

/** Groups jobs by parent id. */
function byParent(jobs: Iterable<JobRec>): Map<string, JobRec[]> {
  const out = new Map<string, JobRec[]>();
  for (const j of jobs) if (j.parentId !== null) out.set(j.parentId, [...(out.get(j.parentId) ?? []), j]);
  return out;
}

/** Reads the database and builds the audit input. */
export async function loadAudit(db: ChaosDb, lives: readonly ProcLife[], plans: Map<string, Plan>, ops: OperatorLog, setup: AuditSetup): Promise<AuditInput> {
  const jobRows = await db.all<Record<string, unknown>>(
    "SELECT id, type, queue, status, attempt, max_retries, run_count, args, CASE WHEN type = 'chaos.big' THEN NULL ELSE result END AS result, meta, last_error, parent_id, fan_out_id, fan_out_index, completed_at FROM sdj_jobs",
  );
  const jobs = new Map<string, JobRec>();
  for (const r of jobRows) {
    const j = toJobRec(r);
    jobs.set(j.id, j);
  }
  const children = byParent(jobs.values());
  const deletions = buildDeletions(await readDeleted(db, 'jobs'), setup.backend, toJobRec);
  const pruned = new Map<string, Deletion>();
  for (const d of deletions) if (d.inPrune && !pruned.has(d.job.id)) pruned.set(d.job.id, d);
  const all = new Map(jobs);
  for (const [id, d] of pruned) if (!all.has(id)) all.set(id, d.job);
  const toStep = (pruned: boolean) => (r: Record<string, unknown>): StepRec => ({
    jobId: String(r['job_id']),
    stepIndex: num(r['step_index']),
    stepName: String(r['step_name']),
    status: String(r['status']),
    output: strOrNull(r['output']),
    error: strOrNull(r['error']),
    pruned,
  });
  const toFanOut = (pruned: boolean) => (r: Record<string, unknown>): FanOutRec => ({
    id: String(r['id']),
    parentId: String(r['parent_id']),
    strategy: String(r['strategy']),
    threshold: numOrNull(r['threshold']),
    total: num(r['total']),
    succeeded: num(r['succeeded']),
    failed: num(r['failed']),
    cancelled: num(r['cancelled']),
    status: String(r['status']),
    createdAt: num(r['created_at']),
    decidedAt: numOrNull(r['decided_at']),
    pruned,
  });
  const toSignal = (pruned: boolean) => (r: Record<string, unknown>): SignalRec => ({
    jobId: String(r['job_id']),
    name: String(r['name']),
    payload: strOrNull(r['payload']),
    consumedAt: numOrNull(r['consumed_at']),
    pruned,
  });
  const gone = attachPruned(
    setup.backend,
    pruned,
    { steps: await readDeleted(db, 'steps'), fanOuts: await readDeleted(db, 'fan_outs'), signals: await readDeleted(db, 'signals') },
    { step: toStep(true), fanOut: toFanOut(true), signal: toSignal(true) },
  );
  const steps = (await db.all<Record<string, unknown>>('SELECT job_id, step_index, step_name, status, output, error FROM sdj_steps')).map(toStep(false));
  const fanOuts = (
    await db.all<Record<string, unknown>>('SELECT id, parent_id, strategy, threshold, total, succeeded, failed, cancelled, status, created_at, decided_at FROM sdj_fan_outs')
  ).map(toFanOut(false));
  const signals = (await db.all<Record<string, unknown>>('SELECT job_id, name, payload, consumed_at FROM sdj_signals')).map(toSignal(false));
  const effects = await readEffects(db);
  const lifeByName = new Map(lives.map((l) => [l.name, l]));
  const allChildren = byParent(all.values());
  return {
    ...setup,
    jobs,
    children,
    all,
    allChildren,
    deletions,
    pruned,
    steps: [...steps, ...gone.steps],
    fanOuts: [...fanOuts, ...gone.fanOuts],
    signals: [...signals, ...gone.signals],
    strays: gone.strays,
    effects,
    runs: buildRuns(effects, lifeByName),
    lives: lifeByName,
    plans,
    ops,
  };
}

/** Reconstructs the runs of every job from the `run` effects and the process lives. */
function buildRuns(effects: readonly EffectRow[], lives: Map<string, ProcLife>): Map<string, Run[]> {
  const runs = new Map<string, Run[]>();
  for (const e of effects) {
    if (e.kind !== 'run') continue;
    const life = lives.get(e.worker);
    let end: number;
    let interrupted = false;
    if ((e.state === 'ended' || e.state === 'suspended') && e.endedAt !== null) end = e.endedAt;
    else if (life?.exitedAt != null) {
      // Active when its process went away: it owned the job until the process was gone.
      end = life.exitedAt;
      interrupted = life.killedAt !== null;
    } else end = Infinity;
    const run: Run = { jobId: e.jobId, runCount: e.runCount, worker: e.worker, start: e.startedAt, end, state: e.state ?? '?', info: e.info, interrupted, owner: e.owner, claimedAt: e.claimedAt };
    runs.set(e.jobId, [...(runs.get(e.jobId) ?? []), run]);
  }
  for (const list of runs.values()) list.sort((a, b) => a.runCount - b.runCount || a.start - b.start);
  return runs;
}

/**
 * Whether a run's outcome may have been lost to a SIGKILL without any fault of the engine: its
 * process was killed after the run ended and before the job's next run began, and had not
 * reported the outcome committed (the write was still in flight: a flush of large results can
 * take seconds on a loaded machine).
 */
export function outcomeInFlightAtKill(a: Pick<AuditInput, 'lives'>, r: Run, next: Run | undefined): boolean {
  const life = a.lives.get(r.worker);
  if (life?.killedAt == null || next === undefined) return false;
  // An outcome reported stored before this run began belongs to an earlier run of the job.
  const storedThisRun = (life.stored.get(r.jobId) ?? -Infinity) >= r.start;
  return life.killedAt >= r.end && life.killedAt <= next.start && !storedThisRun;
}

/**
 * Whether the worker of run `r` logged `r`'s lease as run out (its heartbeats did not renew it
 * in time) after `r` began, and — when the next run is on the same worker, which was then alive
 * and claiming — before that run began; never after the run after next began.
 */
export function leaseRanOut(a: Pick<AuditInput, 'lives'>, r: Run, next: Run, afterNext?: Run): boolean {
  const at = a.lives.get(r.worker)?.leaseRanOut.get(r.jobId);
  if (at === undefined || at < r.start) return false;
  if (next.worker === r.worker && at > next.start) return false;
  return afterNext === undefined || at < afterNext.start;
}

/** Every descendant of a job (children, grandchildren, ...), among the jobs still present and the pruned ones. */
export function descendantsOf(input: AuditInput, id: string): JobRec[] {
  const out: JobRec[] = [];
  const stack = [...(input.allChildren.get(id) ?? [])];
  while (stack.length > 0) {
    const j = stack.pop()!;
    out.push(j);
    stack.push(...(input.allChildren.get(j.id) ?? []));
  }
  return out;
}

/** Parses JSON text, or undefined. */
export function parse(text: string | null): unknown {
  if (text === null) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
