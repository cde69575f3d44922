/**
 * Helpers of the flow-control conformance suites (flow-limits, flow-claim, flow-insert): limit
 * rows with defaults, a limited claim of one or several queues, finishing claimed rows, and
 * several storage instances on one isolated database sharing a clock the test sets.
 */
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import type { JobClaimLimitedResult, JobRow, LimitRow, LimitSetParams, LimitUsageRow, Storage } from '../../src/storage/storage.js';
import { applied, fenceOf, LONG_LEASE_MS } from '../helpers/factories.js';
import { clockedDb, type ClockedDb } from '../helpers/schedule-helpers.js';
import type { SuiteStorage } from './context.js';

/** The worker id the flow suites claim as, unless a test says otherwise. */
export const FLOW_WORKER = 'flow-worker';

/** The limits of one row (each null unless given). */
export interface Limits {
  concurrency?: number | null;
  rateLimit?: number | null;
  ratePeriodMs?: number | null;
}

/** `limitSet` parameters with every limit null unless given. */
function limitParams(scope: LimitSetParams['scope'], name: string, l: Limits): LimitSetParams {
  return { scope, name, concurrency: l.concurrency ?? null, rateLimit: l.rateLimit ?? null, ratePeriodMs: l.ratePeriodMs ?? null };
}

/** Stores a type limit. */
export async function setTypeLimit(s: Storage, type: string, l: Limits): Promise<void> {
  await s.limitSet(limitParams('type', type, l));
}

/** Stores a queue limit. */
export async function setQueueLimit(s: Storage, queue: string, l: Limits): Promise<void> {
  await s.limitSet(limitParams('queue', queue, l));
}

/** Queues of a limited claim: one name (with `limit`) or explicit entries. */
export type ClaimQueues = string | { name: string; limit: number }[];

/** Options of {@link claimLimited}. */
export interface LimitedClaimOpts {
  workerId?: string;
  leaseMs?: number;
}

/** `jobClaimLimited` of one queue (at most `limit`) or of several; checks the result's shape. */
export async function claimLimited(s: Storage, queues: ClaimQueues, limit = 10, opts: LimitedClaimOpts = {}): Promise<JobClaimLimitedResult> {
  const list = typeof queues === 'string' ? [{ name: queues, limit }] : queues;
  const r = await s.jobClaimLimited({ workerId: opts.workerId ?? FLOW_WORKER, queues: list, leaseMs: opts.leaseMs ?? LONG_LEASE_MS });
  assert.equal(typeof r.saturated, 'boolean', 'saturated is a boolean');
  assert.ok(r.retryInMs === null || (Number.isSafeInteger(r.retryInMs) && r.retryInMs >= 1), `retryInMs is null or a whole number >= 1, got ${String(r.retryInMs)}`);
  for (const q of list) {
    const n = r.rows.filter((row) => row.queue === q.name).length;
    assert.ok(n <= q.limit, `at most ${q.limit} claimed from ${q.name}, got ${n}`);
  }
  for (const row of r.rows) assert.equal(row.status, 'running', `claimed job ${row.id} is running`);
  return r;
}

/** Ids of rows, in order. */
export function idsOf(rows: readonly { id: string }[]): string[] {
  return rows.map((r) => r.id);
}

/** Completes claimed rows (asserts every finish applied). */
export async function completeRows(s: Storage, rows: readonly JobRow[]): Promise<void> {
  if (rows.length === 0) return;
  const items = rows.map((r) => ({ ...fenceOf(r), outcome: 'completed' as const, resultJson: null }));
  assert.deepEqual(applied(await s.jobFinishMany({ items })), rows.map(() => true), 'every finish applied');
}

/** The limit rows among `names` of one scope, in list order. */
export async function listedLimits(s: Storage, scope: LimitRow['scope'], names: readonly string[]): Promise<LimitRow[]> {
  return (await s.limitList()).filter((r) => r.scope === scope && names.includes(r.name));
}

/** The usage row of one limit; fails when it is not listed exactly once. */
export async function usageOf(s: Storage, scope: LimitRow['scope'], name: string): Promise<LimitUsageRow> {
  const rows = (await s.limitUsage()).filter((r) => r.scope === scope && r.name === name);
  assert.equal(rows.length, 1, `limit ${scope} ${name} has one usage row`);
  return rows[0]!;
}

/** Several storages on one isolated database, each reading the same settable clock. */
export interface SharedClock {
  /** The instances (separate connections / pools / handles on one database). */
  readonly all: Storage[];
  /** The current instant (ms) every instance reads. */
  now: number;
}

/**
 * Registers hooks that open, for the block, `n` storages on a fresh isolated database, all
 * reading the returned clock (starting at a whole second near now); the getter throws before
 * the hook ran.
 */
export function useSharedClock(ctx: SuiteStorage, label: string, n: number): () => SharedClock {
  let db: ClockedDb | undefined;
  let shared: SharedClock | undefined;
  before(async () => {
    db = await clockedDb(ctx.s.dialect, label);
    const state = { now: Math.floor(Date.now() / 1000) * 1000 };
    const all: Storage[] = [];
    for (let i = 0; i < n; i++) all.push(await db.open(() => state.now));
    shared = Object.assign(state, { all });
  });
  after(async () => {
    await db?.cleanup();
  });
  return () => {
    if (!shared) throw new Error('shared clock storages are not ready');
    return shared;
  };
}
