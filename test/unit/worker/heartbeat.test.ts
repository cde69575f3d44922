/**
 * `Heartbeat` over a fake `jobHeartbeat`/`jobGetMany`, with a mocked clock and timers: one call
 * extends every lease held, each renewed from the moment the heartbeat was SENT; runs the
 * storage no longer reports are aborted (`JobCancelledError` for a cancelled job, read in one
 * call; `LeaseLostError` otherwise); an older run of a job claimed again is aborted and not
 * renewed; when heartbeats fail, a run is abandoned just before its lease can have run out
 * (lease minus a margin), whether the heartbeat fails fast or hangs; driven by the worker's
 * interval service, it renews on every interval; leases that run out are logged as one
 * warning naming their jobs.
 */
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import assert from 'node:assert/strict';
import { JobCancelledError, LeaseLostError } from '../../../src/errors.js';
import { deferred } from '../../../src/internal/deferred.js';
import { IntervalService } from '../../../src/internal/service.js';
import type { JobHeartbeatParams, JobRow, Storage } from '../../../src/storage/storage.js';
import { JobRun } from '../../../src/worker/executor.js';
import { Heartbeat } from '../../../src/worker/heartbeat.js';
import { fakeCore, fakeStorage, flush, jobRow } from './fakes.js';

const LEASE_MS = 10_000;
/** The margin the heartbeat gives up early: 10% of the lease, at most 1 s. */
const MARGIN_MS = 1_000;
const T0 = 1_000_000;

/** A fake storage whose heartbeat holds the ids in `held` (or fails/hangs as the test says). */
function leases() {
  const state = {
    held: new Set<string>(),
    cancelled: new Set<string>(),
    beats: [] as JobHeartbeatParams[],
    reads: [] as string[][],
    /** Replaces the heartbeat's answer once. */
    next: undefined as (() => Promise<string[]>) | undefined,
  };
  const storage: Storage = fakeStorage({
    jobHeartbeat: async (p) => {
      state.beats.push(structuredClone(p));
      const next = state.next;
      state.next = undefined;
      if (next) return next();
      return p.runs.filter((r) => state.held.has(r.jobId)).map((r) => r.jobId);
    },
    jobGetMany: async ({ ids }) => {
      state.reads.push([...ids]);
      return ids.map((id): JobRow => jobRow({ id, status: state.cancelled.has(id) ? 'cancelled' : 'running' }));
    },
  });
  return { state, storage };
}

/** `n` runs claimed now, held by the storage. */
function claimRuns(storage: Storage, held: Set<string>, n: number, over: Partial<JobRow> = {}): JobRun[] {
  const core = fakeCore(storage);
  return Array.from({ length: n }, () => {
    const run = new JobRun(jobRow(over), 'w', core, { leaseMs: LEASE_MS });
    held.add(run.row.id);
    return run;
  });
}

async function advance(ms: number): Promise<void> {
  mock.timers.tick(ms);
  await flush();
}

describe('Heartbeat', () => {
  beforeEach(() => mock.timers.enable({ apis: ['setTimeout', 'Date'], now: T0 }));
  afterEach(() => mock.timers.reset());

  it('extends every lease held in one call, renewing each from the moment the heartbeat was sent', async () => {
    const { state, storage } = leases();
    const runs = claimRuns(storage, state.held, 3);
    const hb = new Heartbeat(storage, 'w', LEASE_MS, () => runs);
    await advance(4_000);
    const reply = deferred<string[]>();
    state.next = () => reply.promise;
    const beat = hb.beat();
    await advance(2_000); // the reply takes 2 s
    reply.resolve(runs.map((r) => r.row.id));
    await beat;
    assert.equal(state.beats.length, 1);
    assert.deepEqual(state.beats[0], { workerId: 'w', leaseMs: LEASE_MS, runs: runs.map((r) => ({ jobId: r.row.id, runCount: 1 })) });
    for (const r of runs) {
      assert.equal(r.leaseFrom, T0 + 4_000, 'renewed from the send time, not the reply time');
      assert.equal(r.leaseHeld, true);
      assert.equal(r.signal.aborted, false);
    }
  });

  it('makes no call when no run holds a lease', async () => {
    const { state, storage } = leases();
    await new Heartbeat(storage, 'w', LEASE_MS, () => []).beat();
    const [gone] = claimRuns(storage, state.held, 1);
    gone!.abandon(new Error('given up'));
    await new Heartbeat(storage, 'w', LEASE_MS, () => [gone!]).beat();
    assert.equal(state.beats.length, 0);
  });

  it('aborts the runs no longer held, reading their status once: cancelled vs lease lost', async () => {
    const { state, storage } = leases();
    const [kept, cancelled, reclaimed] = claimRuns(storage, state.held, 3);
    state.held.delete(cancelled!.row.id);
    state.held.delete(reclaimed!.row.id);
    state.cancelled.add(cancelled!.row.id);
    await new Heartbeat(storage, 'w', LEASE_MS, () => [kept!, cancelled!, reclaimed!]).beat();
    assert.deepEqual(state.reads, [[cancelled!.row.id, reclaimed!.row.id]], 'one read of every lost run');
    assert.equal(kept!.signal.aborted, false);
    assert.ok(cancelled!.signal.reason instanceof JobCancelledError, 'a cancel reaches the handler as JobCancelledError');
    assert.ok(reclaimed!.signal.reason instanceof LeaseLostError, 'a reclaimed job aborts its handler with LeaseLostError');
    assert.deepEqual([kept!.leaseHeld, cancelled!.leaseHeld, reclaimed!.leaseHeld], [true, false, false]);
    assert.deepEqual(await reclaimed!.outcome, { kind: 'abandoned' });
  });

  it('aborts the older run of a job claimed again by this worker and renews only the newest', async () => {
    const { state, storage } = leases();
    const [old] = claimRuns(storage, state.held, 1);
    const again = new JobRun({ ...old!.row, runCount: 2 }, 'w', fakeCore(storage), { leaseMs: LEASE_MS });
    await new Heartbeat(storage, 'w', LEASE_MS, () => [old!, again]).beat();
    assert.deepEqual(state.beats[0]?.runs, [{ jobId: old!.row.id, runCount: 2 }]);
    assert.ok(old!.signal.reason instanceof LeaseLostError, 'the older run is aborted with LeaseLostError');
    assert.match((old!.signal.reason as Error).message, /claimed again/);
    assert.equal(again.leaseHeld, true);
    assert.deepEqual(state.reads, [], 'no status read: the old run was told apart locally');
  });

  it('heartbeats failing: a run is abandoned at lease minus margin after its last renewal, not before', async () => {
    const { state, storage } = leases();
    const runs = claimRuns(storage, state.held, 2);
    const hb = new Heartbeat(storage, 'w', LEASE_MS, () => runs);
    await advance(3_000);
    await hb.beat(); // renewed from T0 + 3 s
    for (let t = 0; t < 3; t++) {
      await advance(1_000);
      state.next = () => Promise.reject(new Error('database down'));
      await assert.rejects(hb.beat(), /database down/);
    }
    // Now T0 + 6 s; the lease renewed at T0 + 3 s runs out at T0 + 13 s; abandoned at T0 + 12 s.
    await advance(LEASE_MS - MARGIN_MS - 3_000 - 1);
    assert.ok(runs.every((r) => r.leaseHeld && !r.signal.aborted), 'still held one ms before lease minus margin');
    await advance(1);
    for (const r of runs) {
      assert.ok(r.signal.reason instanceof LeaseLostError, 'abandoned by the watch timer, without a heartbeat');
      assert.match((r.signal.reason as Error).message, /ran out/);
    }
    const calls = state.beats.length;
    await hb.beat();
    assert.equal(state.beats.length, calls, 'abandoned runs are not renewed any more');
  });

  it('a heartbeat that hangs does not keep a run past its lease', async () => {
    const { state, storage } = leases();
    const runs = claimRuns(storage, state.held, 1);
    const hb = new Heartbeat(storage, 'w', LEASE_MS, () => runs);
    state.next = () => new Promise<string[]>(() => {});
    void hb.beat();
    await advance(LEASE_MS - MARGIN_MS - 1);
    assert.equal(runs[0]!.signal.aborted, false);
    await advance(1);
    assert.ok(runs[0]!.signal.reason instanceof LeaseLostError, 'abandoned while the heartbeat still hangs');
  });

  it('leases that run out are logged as one warning naming their jobs; renewed ones are not', async () => {
    const { state, storage } = leases();
    const runs = claimRuns(storage, state.held, 3);
    const warnings: { message: string; fields: Record<string, unknown> | undefined }[] = [];
    const logger = { debug: () => {}, info: () => {}, error: () => {}, warn: (message: string, fields?: Record<string, unknown>) => void warnings.push({ message, fields }) };
    const hb = new Heartbeat(storage, 'w', LEASE_MS, () => runs, logger);
    await advance(1_000);
    await hb.beat();
    assert.equal(warnings.length, 0, 'a renewal logs nothing');
    state.next = () => new Promise<string[]>(() => {});
    void hb.beat();
    await advance(LEASE_MS - MARGIN_MS);
    assert.equal(warnings.length, 1, 'one warning for the runs that ran out together');
    assert.match(warnings[0]!.message, /job leases ran out/);
    assert.deepEqual(warnings[0]!.fields?.['jobIds'], runs.map((r) => r.row.id));
    assert.equal(warnings[0]!.fields?.['count'], 3);
    await advance(LEASE_MS);
    assert.equal(warnings.length, 1, 'runs already given up are not reported again');
  });

  it('a run whose lease ran out before the beat is abandoned and not sent', async () => {
    const { state, storage } = leases();
    const [late, fresh] = claimRuns(storage, state.held, 2);
    late!.leaseFrom = T0 - LEASE_MS;
    await new Heartbeat(storage, 'w', LEASE_MS, () => [late!, fresh!]).beat();
    assert.deepEqual(state.beats[0]?.runs, [{ jobId: fresh!.row.id, runCount: 1 }]);
    assert.ok(late!.signal.reason instanceof LeaseLostError, 'the run whose lease ran out is aborted');
  });

  it("driven by the worker's interval service, it renews every interval and the leases never run out", async () => {
    const { state, storage } = leases();
    const runs = claimRuns(storage, state.held, 2);
    const hb = new Heartbeat(storage, 'w', LEASE_MS, () => runs);
    const errors: unknown[] = [];
    const service = new IntervalService(3_000, () => hb.beat(), (e) => void errors.push(e));
    service.start();
    // The interval has ±10% jitter: each beat comes within 2.7 s to 3.3 s of the previous one.
    for (let i = 1; i <= 10; i++) {
      for (let waited = 0; state.beats.length < i; waited += 100) {
        assert.ok(waited <= 3_300, `beat ${i} within 3.3 s of the previous one`);
        await advance(100);
      }
    }
    await service.stop();
    assert.deepEqual(errors, []);
    assert.ok(Date.now() - T0 <= 10 * 3_300 + 100, `ten beats in ${Date.now() - T0} ms`);
    for (const r of runs) {
      assert.equal(r.signal.aborted, false, 'held through many leases');
      assert.ok(r.leaseFrom >= Date.now() - 3_400, 'renewed at the last beat');
    }
  });
});
