/**
 * Flow control in a chaos run: the limited job types (what every worker process registers, and
 * what the audit holds the runs to), the queue with a queue limit, and `chaos_flow`, where each
 * run of a job under a limit records when it held its slot.
 *
 * Types and limits (the keys come from the job's args):
 * - `chaos.conc`: at most 3 running at once, fleet-wide (one group);
 * - `chaos.keyed`: at most 1 running per `ckey` (10 keys, one of them hot);
 * - `chaos.rated`: at most 20 starts per second, fleet-wide;
 * - `chaos.keyrate`: at most 2 running per `ckey` (4 accounts) and 3 starts per 500 ms per
 *   `rkey` (2 regions: the rate groups cut across the concurrency groups);
 * - `chaos.metered`: no type limit; runs on {@link METERED_QUEUE}, whose queue limit (4 running,
 *   12 starts per second) counts every job of the queue, so some `chaos.keyed` and `chaos.rated`
 *   jobs enqueued there count against their type's groups and the queue's at once.
 *
 * A `chaos_flow` row per handler invocation: `db_start` / `db_end` read from the database clock
 * (`storage.clockNow()`) right after the handler began and just before it returns or throws, so
 * on the database clock the interval lies inside the one its job was `running` (claimed before,
 * finished after); `host_start` / `host_end` on the host clock; `claimed_at` the claim instant of
 * the run (the row's `started_at`, database clock: the start the rate limit counts).
 */
import { randomBytes } from 'node:crypto';
import type { Storage } from '../../src/storage/storage.js';
import type { ChaosDb } from './backend.js';

/** The queue with a queue limit. */
export const METERED_QUEUE = 'metered';

/** The queue limit of {@link METERED_QUEUE} (set with `setQueueLimits` by the orchestrator). */
export const METERED_LIMITS = { concurrency: 4, rateLimit: { limit: 12, period: 1000 } } as const;

/** Args of every flow job type. */
export interface FlowArgs {
  k: 'flow';
  n: number;
  /** How long the run works. */
  ms: number;
  /** The first attempt throws a retryable error (the retry must get a slot again). */
  failFirst: boolean;
  /** Concurrency key (types with a keyed concurrency limit). */
  ckey?: string;
  /** Rate key (types with a keyed rate limit). */
  rkey?: string;
}

/** One limited type: its name and the limits it is registered with. */
export interface FlowType {
  type: string;
  concurrency?: { limit: number; keyed: boolean };
  rateLimit?: { limit: number; period: number; keyed: boolean };
}

/** Every flow job type (the unlimited `chaos.metered` included, without limits). */
export const FLOW_TYPES: readonly FlowType[] = [
  { type: 'chaos.conc', concurrency: { limit: 3, keyed: false } },
  { type: 'chaos.keyed', concurrency: { limit: 1, keyed: true } },
  { type: 'chaos.rated', rateLimit: { limit: 20, period: 1000, keyed: false } },
  { type: 'chaos.keyrate', concurrency: { limit: 2, keyed: true }, rateLimit: { limit: 3, period: 500, keyed: true } },
  { type: 'chaos.metered' },
];

/** The keys of `chaos.keyed` (the first is hot; one is not ASCII). */
export const KEYED_KEYS = ['k0', 'k1', 'k2', 'k3', 'k4', 'k5', 'k6', 'k7', 'k8', 'clé-ключ-😀'] as const;
/** The concurrency keys (accounts) and rate keys (regions) of `chaos.keyrate`. */
export const KEYRATE_ACCOUNTS = ['a0', 'a1', 'a2', 'a3'] as const;
export const KEYRATE_REGIONS = ['eu', 'us'] as const;

/** The limit values a worker stores for `t` (all null for a type without limits). */
export function storedLimits(t: FlowType): { concurrency: number | null; rateLimit: number | null; ratePeriodMs: number | null } {
  return { concurrency: t.concurrency?.limit ?? null, rateLimit: t.rateLimit?.limit ?? null, ratePeriodMs: t.rateLimit?.period ?? null };
}

/** The registration options of a flow type, as `queue.register` takes them. */
export function registerOptions(t: FlowType): { concurrency?: { limit: number; key?: (a: FlowArgs) => string }; rateLimit?: { limit: number; period: number; key?: (a: FlowArgs) => string } } {
  const out: ReturnType<typeof registerOptions> = {};
  if (t.concurrency) out.concurrency = { limit: t.concurrency.limit, ...(t.concurrency.keyed ? { key: (a: FlowArgs) => a.ckey ?? '' } : {}) };
  if (t.rateLimit) out.rateLimit = { limit: t.rateLimit.limit, period: t.rateLimit.period, ...(t.rateLimit.keyed ? { key: (a: FlowArgs) => a.rkey ?? '' } : {}) };
  return out;
}

/** Creates `chaos_flow`. */
export async function createFlowTable(db: ChaosDb): Promise<void> {
  await db.run(`CREATE TABLE chaos_flow (
    id VARCHAR(32) NOT NULL PRIMARY KEY,
    job_id VARCHAR(40) NOT NULL,
    type VARCHAR(32) NOT NULL,
    queue VARCHAR(32) NOT NULL,
    ckey VARCHAR(64) NULL,
    rkey VARCHAR(64) NULL,
    run_count INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    worker VARCHAR(32) NOT NULL,
    pid INTEGER NOT NULL,
    claimed_at BIGINT NULL,
    db_start BIGINT NOT NULL,
    host_start BIGINT NOT NULL,
    db_end BIGINT NULL,
    host_end BIGINT NULL,
    how VARCHAR(200) NULL)`);
}

/** One run of a flow job as recorded (the audit's view). */
export interface FlowRun {
  id: string;
  jobId: string;
  type: string;
  queue: string;
  ckey: string | null;
  rkey: string | null;
  runCount: number;
  attempt: number;
  worker: string;
  pid: number;
  claimedAt: number | null;
  dbStart: number;
  hostStart: number;
  dbEnd: number | null;
  hostEnd: number | null;
  how: string | null;
}

/** What a handler knows of its run when it begins. */
export interface FlowRunStart {
  jobId: string;
  type: string;
  queue: string;
  args: FlowArgs;
  runCount: number;
  attempt: number;
  claimedAt: number | null;
}

/** Records the runs of flow jobs of one worker process. */
export class FlowRecorder {
  constructor(
    private readonly db: ChaosDb,
    private readonly storage: Storage,
    readonly worker: string,
    readonly pid: number,
  ) {}

  /** Records the start of a run (database clock read first); resolves with the function that records its end. */
  async begin(s: FlowRunStart): Promise<(how: string) => Promise<void>> {
    // The host instant is taken before the database's: a host-clock duration added to db_start
    // (a killed run's end) then errs late, never early.
    const hostStart = Date.now();
    const dbStart = await this.storage.clockNow();
    const id = randomBytes(12).toString('hex');
    await this.db.run(
      'INSERT INTO chaos_flow (id, job_id, type, queue, ckey, rkey, run_count, attempt, worker, pid, claimed_at, db_start, host_start) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
      [id, s.jobId, s.type, s.queue, s.args.ckey ?? null, s.args.rkey ?? null, s.runCount, s.attempt, this.worker, this.pid, s.claimedAt, dbStart, hostStart],
    );
    return async (how) => {
      const dbEnd = await this.storage.clockNow();
      await this.db.run('UPDATE chaos_flow SET db_end = ?, host_end = ?, how = ? WHERE id = ?', [dbEnd, Date.now(), how.slice(0, 200), id]);
    };
  }
}

/** Reads every `chaos_flow` row. */
export async function readFlow(db: ChaosDb): Promise<FlowRun[]> {
  const rows = await db.all<Record<string, unknown>>(
    'SELECT id, job_id, type, queue, ckey, rkey, run_count, attempt, worker, pid, claimed_at, db_start, host_start, db_end, host_end, how FROM chaos_flow',
  );
  const n = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
  const s = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));
  return rows.map((r) => ({
    id: String(r['id']),
    jobId: String(r['job_id']),
    type: String(r['type']),
    queue: String(r['queue']),
    ckey: s(r['ckey']),
    rkey: s(r['rkey']),
    runCount: Number(r['run_count']),
    attempt: Number(r['attempt']),
    worker: String(r['worker']),
    pid: Number(r['pid']),
    claimedAt: n(r['claimed_at']),
    dbStart: Number(r['db_start']),
    hostStart: Number(r['host_start']),
    dbEnd: n(r['db_end']),
    hostEnd: n(r['host_end']),
    how: s(r['how']),
  }));
}
