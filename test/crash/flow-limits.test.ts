/**
 * Fleet-wide concurrency limits across real worker processes (flow-control model: see
 * src/storage/flow-rows.ts — a group's running jobs are counted from the rows when a job is
 * claimed, so the limit holds whatever the number of processes and their slots, and a killed
 * worker's jobs keep counting until their lease is reclaimed).
 *
 * Each child handler records its run on the host clock (fixtures/flow-worker.ts); a run is the
 * half-open interval [start, end), and a run cut by a SIGKILL ends when the parent saw the
 * child gone. A handler starts after its claim and ends before its finish frees the slot, so
 * the model bounds the overlap of these intervals by the limit.
 * - 4 processes × 10 slots, type limit 3: never more than 3 at once, every job completes —
 *   also while workers are SIGKILLed mid-run and replaced (short leases: quick reclaim);
 * - limit 1 per key over 20 keys: each key runs serially, the keys run in parallel;
 * - saturated limit: the claim statements each process makes, `jobClaim` and `jobClaimLimited`,
 *   are counted (the storage is wrapped in the child) — no spinning on a full limit: beyond the
 *   ordinary claim's poll (one claim per poll interval, which an idle worker makes with or
 *   without limits), the claim statements that take nothing number less than the slots freed.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Queue } from '../../src/queue/queue.js';
import { sharedStorage } from '../helpers/process-storage.js';
import { storageMatrix } from '../helpers/storages.js';
import {
  claimCounts,
  endCount,
  intervals,
  killChild,
  meanOverlap,
  peakProcesses,
  killChildren,
  peakOverlap,
  records,
  spawnFlowWorker,
  stopChildren,
  waitUntil,
  alive,
  type FlowChild,
} from './fixtures/flow-harness.js';
import { FLOW_TYPE, registerFlowType, type ClaimCounts, type FlowArgs, type FlowMode } from './fixtures/flow-types.js';

/** Lease of every worker (ms): a killed worker's jobs are reclaimed about this long after the kill. */
const LEASE = 1_000;
/** Worker processes, and slots (queue concurrency) of each. */
const PROCESSES = 4;
const SLOTS = 10;

/** Env of a flow worker child with a concurrency limit of `limit` for `mode`. */
function flowEnv(mode: FlowMode, limit: number, extra: Record<string, string> = {}): Record<string, string> {
  return { SDJ_FLOW_MODE: mode, SDJ_FLOW_LIMIT: String(limit), SDJ_CONCURRENCY: String(SLOTS), SDJ_LEASE_MS: String(LEASE), ...extra };
}

/** Job ids whose `start` has no `end` yet in child `c` (its handlers running now, as far as its output says). */
function openRuns(c: FlowChild): string[] {
  const { starts, ends } = records([c]);
  const ended = new Set(ends.map((e) => e.id));
  return starts.filter((s) => !ended.has(s.id)).map((s) => s.id);
}

/** `list` grouped by `key`. */
function groupBy<T>(list: readonly T[], key: (x: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const x of list) m.set(key(x), [...(m.get(key(x)) ?? []), x]);
  return m;
}

/** Every job of `ids` ended (had an `end` record) at least once, in some child. */
function assertAllEnded(children: FlowChild[], ids: readonly string[]): void {
  const ended = new Set(records(children).ends.map((e) => e.id));
  const missing = ids.filter((id) => !ended.has(id));
  assert.deepEqual(missing, [], 'every job ran to its end in some worker');
}

for (const [dialect] of storageMatrix()) {
  describe(`fleet-wide concurrency limits across processes (${dialect})`, () => {
    const all: FlowChild[] = [];
    after(() => killChildren(all));

    /** Spawns a flow worker, tracked for cleanup. */
    const spawn = (env: Record<string, string>, storageEnv: Record<string, string>, name: string): FlowChild => {
      const c = spawnFlowWorker(storageEnv, name, env);
      all.push(c);
      return c;
    };

    it(`${PROCESSES} processes × ${SLOTS} slots under a type limit of 3 never run more than 3 jobs at once, and every job completes`, async (t) => {
      const JOBS = 60;
      const shared = await sharedStorage(dialect);
      const kids: FlowChild[] = [];
      try {
        const queue = new Queue(shared.storage);
        // The backlog is there before any worker: the first worker's limit marks it limited.
        const ids = await queue.enqueueBatch(Array.from({ length: JOBS }, (_, i) => ({ type: FLOW_TYPE.slots, args: { ms: 120 + ((i * 37) % 160) } })));
        const began = Date.now();
        for (let p = 0; p < PROCESSES; p++) kids.push(spawn(flowEnv('slots', 3, { SDJ_COUNT_CLAIMS: '1' }), shared.env, `S${p}`));
        await waitUntil(kids, async () => endCount(kids) >= JOBS && (await queue.stats()).completed === JOBS, { message: `${JOBS} jobs completed` });
        const elapsed = Date.now() - began;
        await stopChildren(kids);

        const runs = intervals(kids);
        const { peak, at } = peakOverlap(runs);
        const perProcess = kids.map((k) => `${k.name}=${records([k]).starts.length}`).join(' ');
        const busy = meanOverlap(runs);
        const counts = kids.map(claimCounts);
        t.diagnostic(
          `${dialect}: ${runs.length} runs in ${elapsed} ms; peak overlap ${peak} (at ${at}), at most ${peakProcesses(runs)} processes running at once; ` +
            `mean overlap ${busy.toFixed(2)} from first start to last end; runs per process ${perProcess}; ` +
            `limited claims that found nothing per process ${counts.map((c) => c.limitedEmpty).join(' ')}`,
        );
        // A worker re-claims the slot it frees at once, so one process may run most jobs; every
        // other one kept asking with 10 free slots and was refused by the fleet-wide count (a
        // per-process limit would have let each of them run 3 at once).
        kids.forEach((k, i) => assert.ok(records([k]).starts.length > 0 || counts[i]!.limitedEmpty > 0, `worker ${k.name} ran jobs or was refused some`));
        assert.ok(peak <= 3, `at most 3 handlers run at once; saw ${peak} at ${at}`);
        assert.equal(peak, 3, 'the limit is used in full (4 × 10 slots for 3 places)');
        assert.equal(runs.length, JOBS, 'each job ran once');
        assertAllEnded(kids, ids);
        const stats = await queue.stats();
        assert.equal(stats.pending + stats.running + stats.failed, 0);
      } finally {
        await killChildren(kids);
        await shared.cleanup();
      }
    });

    it('the limit of 3 holds while workers are SIGKILLed mid-run and replaced; every job completes', async (t) => {
      const JOBS = 80;
      const shared = await sharedStorage(dialect);
      const kids: FlowChild[] = [];
      let next = 0;
      const fresh = (): FlowChild => {
        const c = spawn(flowEnv('slots', 3), shared.env, `K${next++}`);
        kids.push(c);
        return c;
      };
      try {
        const queue = new Queue(shared.storage);
        const ids = await queue.enqueueBatch(
          Array.from({ length: JOBS }, (_, i) => ({ type: FLOW_TYPE.slots, args: { ms: 120 + ((i * 37) % 160) }, options: { retries: 5 } })),
        );
        for (let p = 0; p < PROCESSES; p++) fresh();
        const victimWith = (): FlowChild | undefined => kids.find((c) => alive(c) && !c.ending && openRuns(c).length > 0);

        // Round 1: after 15 jobs ended, kill one worker that is running a job; start a replacement.
        await waitUntil(kids, () => endCount(kids) >= 15, { message: '15 jobs ended' });
        const first = await waitUntil(kids, victimWith, { message: 'a worker running a job' });
        await killChild(first);
        fresh();
        // Round 2: after 40 jobs ended, kill two workers at once (one of them running a job).
        await waitUntil(kids, () => endCount(kids) >= 40, { message: '40 jobs ended' });
        const second = await waitUntil(kids, victimWith, { message: 'a worker running a job' });
        const third = kids.find((c) => alive(c) && c !== second);
        assert.ok(third);
        await Promise.all([killChild(second), killChild(third)]);
        fresh();
        fresh();

        const completed = async (): Promise<boolean> => (await queue.stats()).completed === JOBS;
        await waitUntil(kids, completed, { timeout: 90_000, message: `${JOBS} jobs completed` });
        await stopChildren(kids);

        const runs = intervals(kids);
        const cut = runs.filter((r) => r.killed);
        const { peak, at } = peakOverlap(runs);
        t.diagnostic(`${dialect}: ${runs.length} runs (${cut.length} cut by SIGKILL) over ${kids.length} processes; peak overlap ${peak} (at ${at}), at most ${peakProcesses(runs)} processes running at once; mean overlap ${meanOverlap(runs).toFixed(2)}`);
        assert.ok(peak <= 3, `at most 3 handlers run at once, counting killed runs until their kill; saw ${peak} at ${at}`);
        assert.ok(cut.length >= 1, 'the kills cut running handlers');
        assertAllEnded(kids, ids);
        // A job cut by a kill was reclaimed and run again to completion.
        for (const r of cut) {
          const job = await queue.getJob(r.id);
          assert.equal(job?.status, 'completed', `job ${r.id} cut by a kill`);
          assert.ok(job.attempt >= 2, `job ${r.id} cut by a kill ran again (attempt ${job.attempt})`);
        }
        // Outside kills each job ran once: a second run of a job follows a run cut in a killed process.
        const byJob = groupBy(runs, (r) => r.id);
        for (const [id, rs] of byJob) {
          if (rs.length > 1) assert.ok(rs.some((r) => kids.find((k) => k.proc.pid === r.pid)?.killedAt !== undefined), `job ${id} ran ${rs.length} times without a kill`);
        }
        const stats = await queue.stats();
        assert.equal(stats.pending + stats.running + stats.failed, 0);
      } finally {
        await killChildren(kids);
        await shared.cleanup();
      }
    });

    it('a limit of 1 per key over 20 keys runs each key serially and the keys in parallel', async (t) => {
      const KEYS = 20;
      const PER_KEY = 3;
      const shared = await sharedStorage(dialect);
      const kids: FlowChild[] = [];
      try {
        const queue = new Queue(shared.storage);
        // Registered here too, so the key is computed from the args where the job is enqueued.
        registerFlowType(queue, 'keyed', 1, 1_000, () => {
          throw new Error('no worker runs in the test process');
        });
        // Grouped by key (a key's jobs are next to each other in claim order): a claim must look
        // past the jobs of a full key to reach the other keys.
        const items = Array.from({ length: KEYS * PER_KEY }, (_, i) => ({ type: FLOW_TYPE.keyed, args: { ms: 300, key: `k${Math.floor(i / PER_KEY)}` } satisfies FlowArgs }));
        const ids = await queue.enqueueBatch(items);
        const keyOf = new Map(ids.map((id, i) => [id, items[i]!.args.key]));
        const began = Date.now();
        // The backlog is there before any worker: the first worker's limit marks it limited.
        for (let p = 0; p < PROCESSES; p++) kids.push(spawn(flowEnv('keyed', 1), shared.env, `P${p}`));
        await waitUntil(kids, async () => endCount(kids) >= ids.length && (await queue.stats()).completed === ids.length, { message: `${ids.length} jobs completed` });
        const elapsed = Date.now() - began;
        await stopChildren(kids);

        const runs = intervals(kids);
        assert.equal(runs.length, ids.length, 'each job ran once');
        const byKey = groupBy(runs, (r) => keyOf.get(r.id) ?? '?');
        assert.equal(byKey.size, KEYS);
        for (const [key, rs] of byKey) {
          const { peak, at } = peakOverlap(rs);
          assert.equal(peak, 1, `key ${key} runs one job at a time; saw ${peak} at ${at}`);
        }
        const { peak, at } = peakOverlap(runs);
        t.diagnostic(`${dialect}: ${runs.length} runs of ${KEYS} keys in ${elapsed} ms; peak overlap across keys ${peak} (at ${at}) in up to ${peakProcesses(runs)} processes, mean ${meanOverlap(runs).toFixed(2)}; each key serial`);
        assert.ok(peak >= 10, `the keys run in parallel (${PROCESSES} × ${SLOTS} slots, ${KEYS} keys): peak ${peak}`);
        assert.ok(peak <= KEYS);
      } finally {
        await killChildren(kids);
        await shared.cleanup();
      }
    });

    it('a saturated limit costs less than one claim statement that takes nothing per freed slot (jobClaim and jobClaimLimited counted; no spinning)', async (t) => {
      const JOBS = 60;
      const shared = await sharedStorage(dialect);
      const kids: FlowChild[] = [];
      try {
        const queue = new Queue(shared.storage);
        await queue.enqueueBatch(Array.from({ length: JOBS }, () => ({ type: FLOW_TYPE.slots, args: { ms: 200 } })));
        const began = Date.now();
        // The worker's default poll and maintenance intervals, as users get them: a worker refused
        // by a full limit backs off from the poll interval up to 8 of them, so the short poll of
        // the other tests would count back-off claims the test chose, not the claim loop's.
        const defaults = { SDJ_COUNT_CLAIMS: '1', SDJ_POLL_MS: 'default', SDJ_MAINTENANCE_MS: 'default' };
        for (let p = 0; p < PROCESSES; p++) kids.push(spawn(flowEnv('slots', 3, defaults), shared.env, `C${p}`));
        await waitUntil(kids, async () => endCount(kids) >= JOBS && (await queue.stats()).completed === JOBS, { message: `${JOBS} jobs completed` });
        const elapsed = Date.now() - began;
        await stopChildren(kids);

        const busy = meanOverlap(intervals(kids));
        const per = kids.map((k) => [k.name, claimCounts(k)] as const);
        const sum = (f: keyof ClaimCounts): number => per.reduce((n, [, c]) => n + c[f], 0);
        const total = { limitedClaims: sum('limitedClaims'), limitedEmpty: sum('limitedEmpty'), limitedRows: sum('limitedRows'), claims: sum('claims'), claimedRows: sum('claimedRows') };
        t.diagnostic(
          `${dialect}: ${JOBS} jobs of 200 ms, limit 3, ${PROCESSES} processes × ${SLOTS} slots, ${elapsed} ms (mean overlap ${busy.toFixed(2)}): ` +
            `jobClaimLimited ${total.limitedClaims} calls (${total.limitedEmpty} returned nothing, ${total.limitedRows} rows; ` +
            `${(sum('limitedMs') / Math.max(1, total.limitedClaims)).toFixed(1)} ms each on average, longest ${Math.max(...per.map(([, c]) => c.limitedMaxMs))} ms); ` +
            `jobClaim ${total.claims} calls (${total.claimedRows} rows)`,
        );
        for (const [name, c] of per) t.diagnostic(`${dialect}: ${name} ${JSON.stringify(c)}`);
        // The ordinary claim's own pace: one claim per poll interval over each worker's run, and
        // the one at start. Every ordinary claim here is empty (every job is limited).
        const pollPace = per.reduce((n, [, c]) => n + Math.floor(c.runMs / c.pollMs) + 1, 0);
        const ordinaryBeyondPoll = Math.max(0, total.claims - pollPace);
        const wasted = total.limitedEmpty + ordinaryBeyondPoll;
        t.diagnostic(
          `${dialect}: claim statements ${total.claims + total.limitedClaims} (jobClaim ${total.claims}, the poll's pace ${pollPace}; jobClaimLimited ${total.limitedClaims}, ` +
            `${total.limitedRows - (total.limitedClaims - total.limitedEmpty)} rows beyond one per productive claim); taking nothing beyond the poll: ${wasted} for ${JOBS} freed slots`,
        );
        assert.equal(total.limitedRows, JOBS, 'every job was claimed once, by a limited claim');
        assert.equal(total.claimedRows, 0, 'the ordinary claim never takes a limited job');
        assert.ok(wasted < JOBS, `claim statements that took nothing, beyond the poll (${wasted}), < slots freed (${JOBS})`);
        assert.ok(total.limitedClaims + ordinaryBeyondPoll < 2 * JOBS, `claim statements beyond the poll (${total.limitedClaims + ordinaryBeyondPoll}) < 2 per freed slot (${2 * JOBS})`);
      } finally {
        await killChildren(kids);
        await shared.cleanup();
      }
    });
  });
}
