/**
 * What the audit reads after a chaos run: the library's tables (straight SQL, not through the
 * engine under test), the effects the handlers recorded, the life of every worker process,
 * and the reconstructed handler runs with the interval each one owned its job.
 */
import type { ChaosDb } from './backend.js';
import { readEffects, type EffectRow } from './effects.js';
import type { ProcLife } from './fleet.js';
import type { Plan } from './load.js';
import type { OperatorLog } from './operator.js';

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

/** A row of `sdj_steps`. */
export interface StepRec {
  jobId: string;
  stepIndex: number;
  stepName: string;
  status: string;
  output: string | null;
  error: string | null;
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
}

/** A row of `sdj_signals`. */
export interface SignalRec {
  jobId: string;
  name: string;
  payload: string | null;
  consumedAt: number | null;
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

/** Everything the invariants look at. */
export interface AuditInput {
  jobs: Map<string, JobRec>;
  children: Map<string, JobRec[]>;
  steps: StepRec[];
  fanOuts: FanOutRec[];
  signals: SignalRec[];
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

/** Reads the database and builds the audit input. */
export async function loadAudit(db: ChaosDb, lives: readonly ProcLife[], plans: Map<string, Plan>, ops: OperatorLog): Promise<AuditInput> {
  const jobRows = await db.all<Record<string, unknown>>(
    "SELECT id, type, queue, status, attempt, max_retries, run_count, args, CASE WHEN type = 'chaos.big' THEN NULL ELSE result END AS result, meta, last_error, parent_id, fan_out_id, fan_out_index, completed_at FROM sdj_jobs",
  );
  const jobs = new Map<string, JobRec>();
  const children = new Map<string, JobRec[]>();
  for (const r of jobRows) {
    const j: JobRec = {
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
    jobs.set(j.id, j);
    if (j.parentId !== null) children.set(j.parentId, [...(children.get(j.parentId) ?? []), j]);
  }
  const steps = (await db.all<Record<string, unknown>>('SELECT job_id, step_index, step_name, status, output, error FROM sdj_steps')).map((r) => ({
    jobId: String(r['job_id']),
    stepIndex: num(r['step_index']),
    stepName: String(r['step_name']),
    status: String(r['status']),
    output: strOrNull(r['output']),
    error: strOrNull(r['error']),
  }));
  const fanOuts = (
    await db.all<Record<string, unknown>>('SELECT id, parent_id, strategy, threshold, total, succeeded, failed, cancelled, status, created_at, decided_at FROM sdj_fan_outs')
  ).map((r) => ({
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
  }));
  const signals = (await db.all<Record<string, unknown>>('SELECT job_id, name, payload, consumed_at FROM sdj_signals')).map((r) => ({
    jobId: String(r['job_id']),
    name: String(r['name']),
    payload: strOrNull(r['payload']),
    consumedAt: numOrNull(r['consumed_at']),
  }));
  const effects = await readEffects(db);
  const lifeByName = new Map(lives.map((l) => [l.name, l]));
  return { jobs, children, steps, fanOuts, signals, effects, runs: buildRuns(effects, lifeByName), lives: lifeByName, plans, ops };
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

/** Every descendant of a job (children, grandchildren, ...). */
export function descendantsOf(input: AuditInput, id: string): JobRec[] {
  const out: JobRec[] = [];
  const stack = [...(input.children.get(id) ?? [])];
  while (stack.length > 0) {
    const j = stack.pop()!;
    out.push(j);
    stack.push(...(input.children.get(j.id) ?? []));
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
