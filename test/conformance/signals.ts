/**
 * Conformance: signals and timers — buffering, FIFO consumption, waits with deadlines, wake-ups
 * by signal and by time (`jobWakeDue`), typed errors.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidStateError, JobNotFoundError } from '../../src/errors.js';
import { DEFAULT_MAX_PAYLOAD_BYTES } from '../../src/storage/codec.js';
import { cannotSignalMessage, SIGNAL_WAIT_TIMED_OUT, stepAlreadyFinishedMessage } from '../../src/storage/shared/contract-messages.js';
import type { Fence, Storage } from '../../src/storage/storage.js';
import type { StorageMaker } from '../helpers/storages.js';
import {
  bigJson,
  cancelledJob,
  claimOne,
  completedJob,
  failedJob,
  fenceOf,
  insertJob,
  instances,
  mustGet,
  newId,
  pausedJob,
  runningJob,
  stepRow,
  uniqueName,
  expectWakeAt,
  waitingJob,
} from '../helpers/factories.js';
import { waitFor } from '../helpers/wait-for.js';
import { useStorage } from './context.js';

/** `signalConsumeOrWait` with defaults: step name `wait-<index>`, no deadline. */
function consume(s: Storage, fence: Fence, stepIndex: number, signalName: string, deadlineAt: number | null = null) {
  return s.signalConsumeOrWait({ fence, stepIndex, stepName: `wait-${stepIndex}`, signalName, deadlineAt });
}

/** Registers the signal and timer tests. */
export function describeSignals(make: StorageMaker): void {
  describe('signals and timers', () => {
    const ctx = useStorage(make, 'conformance-signals');

    it('buffers a signal sent before the wait; the wait consumes it and checkpoints it together', async () => {
      const s = ctx.s;
      const { fence } = await runningJob(s);
      await s.signalSend({ jobId: fence.jobId, name: 'approve', payloadJson: '{"by": "alice", "é": "😀"}' });
      assert.equal((await mustGet(s, fence.jobId)).status, 'running', 'a signal does not disturb a running job');
      assert.deepEqual(await consume(s, fence, 0, 'approve'), { kind: 'consumed', payloadJson: '{"by": "alice", "é": "😀"}' });
      assert.deepEqual(await s.stepList({ jobId: fence.jobId }), [
        stepRow(fence.jobId, 0, { stepName: 'wait-0', status: 'completed', outputJson: '{"by": "alice", "é": "😀"}' }),
      ]);
      const row = await mustGet(s, fence.jobId);
      assert.equal(row.status, 'running');
      assert.equal(row.attempt, 1);
    });

    it('consumes signals of one name first-in first-out, each exactly once', async () => {
      const s = ctx.s;
      const { fence } = await runningJob(s);
      for (const p of ['"a"', '"b"', null, '"c"']) await s.signalSend({ jobId: fence.jobId, name: 'tick', payloadJson: p });
      await s.signalSend({ jobId: fence.jobId, name: 'other', payloadJson: '"o"' });
      const got = [];
      for (let i = 0; i < 4; i++) got.push(await consume(s, fence, i, 'tick'));
      assert.deepEqual(got, [
        { kind: 'consumed', payloadJson: '"a"' },
        { kind: 'consumed', payloadJson: '"b"' },
        { kind: 'consumed', payloadJson: null },
        { kind: 'consumed', payloadJson: '"c"' },
      ]);
      assert.deepEqual(await consume(s, fence, 4, 'tick'), { kind: 'suspended' }, 'every tick was consumed');
    });

    it('keeps signals per job: a signal to one job is not seen by another', async () => {
      const s = ctx.s;
      const a = await runningJob(s);
      const b = await runningJob(s);
      await s.signalSend({ jobId: a.fence.jobId, name: 'go', payloadJson: '"for-a"' });
      assert.deepEqual(await consume(s, b.fence, 0, 'go'), { kind: 'suspended' });
      assert.deepEqual(await consume(s, a.fence, 0, 'go'), { kind: 'consumed', payloadJson: '"for-a"' });
    });

    it('carries a 1 MiB signal payload', async () => {
      const s = ctx.s;
      const { fence } = await runningJob(s);
      const big = bigJson(DEFAULT_MAX_PAYLOAD_BYTES);
      await s.signalSend({ jobId: fence.jobId, name: 'big', payloadJson: big });
      const res = await consume(s, fence, 0, 'big');
      assert.ok(res.kind === 'consumed' && res.payloadJson === big, 'big payload changed in the round trip');
    });

    it('suspends a wait with no signal: waiting for the name, attempt back, waiting step', async () => {
      const s = ctx.s;
      const { fence } = await runningJob(s);
      assert.deepEqual(await consume(s, fence, 0, 'approve'), { kind: 'suspended' });
      const row = await mustGet(s, fence.jobId);
      assert.equal(row.status, 'waiting');
      assert.equal(row.waitSignal, 'approve');
      assert.equal(row.wakeAt, null);
      assert.equal(row.attempt, 0, 'waiting for a signal does not consume an attempt');
      assert.deepEqual(await s.stepList({ jobId: fence.jobId }), [stepRow(fence.jobId, 0, { stepName: 'wait-0', status: 'waiting', outputJson: 'null' })]);
      assert.deepEqual(await s.jobHeartbeat({ workerId: fence.workerId, runs: [{ jobId: fence.jobId, runCount: 1 }], leaseMs: 1_000 }), []);
      assert.deepEqual(await consume(s, fence, 0, 'approve'), { kind: 'lost' }, 'the suspended run lost its fence');
    });

    it('a signal of another name neither wakes nor satisfies the wait; the right one does, once', async () => {
      const s = ctx.s;
      const { fence } = await runningJob(s);
      assert.deepEqual(await consume(s, fence, 0, 'approve'), { kind: 'suspended' });
      await s.signalSend({ jobId: fence.jobId, name: 'reject', payloadJson: '"no"' });
      assert.equal((await mustGet(s, fence.jobId)).status, 'waiting');
      assert.ok(!(await s.jobWakeDue({ limit: 1000 })).includes(fence.jobId));
      await s.signalSend({ jobId: fence.jobId, name: 'approve', payloadJson: '"yes"' });
      const woken = await mustGet(s, fence.jobId);
      assert.equal(woken.status, 'pending');
      assert.equal(woken.attempt, 0);
      await s.signalSend({ jobId: fence.jobId, name: 'approve', payloadJson: '"again"' });
      assert.equal((await mustGet(s, fence.jobId)).status, 'pending');
      // The resumed run consumes the first approval at the same step, replacing the waiting row.
      const run2 = fenceOf(await claimOne(s, woken.queue, fence.jobId));
      assert.equal(run2.runCount, 2);
      assert.deepEqual(await consume(s, run2, 0, 'approve'), { kind: 'consumed', payloadJson: '"yes"' });
      const steps = await s.stepList({ jobId: fence.jobId });
      assert.deepEqual(steps, [stepRow(fence.jobId, 0, { stepName: 'wait-0', status: 'completed', outputJson: '"yes"' })]);
      assert.deepEqual(await consume(s, run2, 1, 'reject'), { kind: 'consumed', payloadJson: '"no"' });
      assert.deepEqual(await consume(s, run2, 2, 'approve'), { kind: 'consumed', payloadJson: '"again"' });
    });

    it('a signal racing the wait is never lost: consumed, or the suspended job is woken', async () => {
      const s = ctx.s;
      const [other] = await instances(ctx.ts, 1);
      for (let round = 0; round < 8; round++) {
        const { fence } = await runningJob(s);
        const [, res] = await Promise.all([
          other!.signalSend({ jobId: fence.jobId, name: 'race', payloadJson: String(round) }),
          consume(s, fence, 0, 'race'),
        ]);
        const row = await mustGet(s, fence.jobId);
        if (res.kind === 'consumed') {
          assert.equal(res.payloadJson, String(round));
          assert.equal(row.status, 'running');
        } else {
          assert.deepEqual(res, { kind: 'suspended' });
          assert.equal(row.status, 'pending', `round ${round}: the signal arrived but the job still ${row.status}`);
        }
      }
    });

    it('a wait with a deadline suspends until it: wake_at = deadline', async () => {
      const s = ctx.s;
      const { fence } = await runningJob(s);
      const deadline = (await s.clockNow()) + 60_000;
      assert.deepEqual(await consume(s, fence, 0, 'approve', deadline), { kind: 'suspended' });
      const row = await mustGet(s, fence.jobId);
      assert.equal(row.status, 'waiting');
      assert.equal(row.wakeAt, deadline);
      assert.equal(row.waitSignal, 'approve');
      assert.equal(row.attempt, 0);
      assert.deepEqual(await s.stepList({ jobId: fence.jobId }), [
        stepRow(fence.jobId, 0, { stepName: 'wait-0', status: 'waiting', outputJson: JSON.stringify(deadline) }),
      ]);
    });

    it('a wait at or past its deadline times out and checkpoints that; a buffered signal still wins', async () => {
      const s = ctx.s;
      const { fence } = await runningJob(s);
      const past = (await s.clockNow()) - 1;
      const exact = await runningJob(s);
      const nowish = await s.clockNow();
      assert.deepEqual(await consume(s, exact.fence, 0, 'approve', nowish), { kind: 'timed-out' }, 'now >= deadline times out');
      assert.deepEqual(await consume(s, fence, 0, 'approve', past), { kind: 'timed-out' });
      const row = await mustGet(s, fence.jobId);
      assert.equal(row.status, 'running', 'a timed-out wait does not suspend');
      const steps = await s.stepList({ jobId: fence.jobId });
      assert.deepEqual(steps, [stepRow(fence.jobId, 0, { stepName: 'wait-0', status: 'failed', outputJson: null, error: SIGNAL_WAIT_TIMED_OUT })]);
      // A signal that arrives later does not rewrite the time-out.
      await s.signalSend({ jobId: fence.jobId, name: 'approve', payloadJson: '"late"' });
      assert.deepEqual(await s.stepList({ jobId: fence.jobId }), steps);

      const other = await runningJob(s);
      await s.signalSend({ jobId: other.fence.jobId, name: 'approve', payloadJson: '"early"' });
      assert.deepEqual(await consume(s, other.fence, 0, 'approve', past), { kind: 'consumed', payloadJson: '"early"' });
    });

    it('a signal wait wakes at its deadline and the resumed run times out', async () => {
      const s = ctx.s;
      const { fence } = await runningJob(s);
      const deadline = (await s.clockNow()) + 150;
      assert.deepEqual(await consume(s, fence, 0, 'approve', deadline), { kind: 'suspended' });
      await expectWakeAt(s, fence.jobId, deadline);
      const row = await mustGet(s, fence.jobId);
      assert.equal(row.status, 'pending');
      assert.equal(row.wakeAt, null);
      assert.equal(row.waitSignal, null);
      assert.ok((await s.clockNow()) >= deadline, 'woken before the deadline');
      const run2 = fenceOf(await claimOne(s, row.queue, fence.jobId));
      assert.deepEqual(await consume(s, run2, 0, 'approve', deadline), { kind: 'timed-out' });
      assert.deepEqual(await s.stepList({ jobId: fence.jobId }), [
        stepRow(fence.jobId, 0, { stepName: 'wait-0', status: 'failed', outputJson: null, error: SIGNAL_WAIT_TIMED_OUT }),
      ]);
    });

    it('jobWakeDue wakes a sleeping job at wake_at, once, without consuming an attempt', async () => {
      const s = ctx.s;
      const wakeAt = (await s.clockNow()) + 150;
      const { row } = await waitingJob(s, {}, { wakeAt, step: null });
      assert.equal(row.wakeAt, wakeAt);
      await expectWakeAt(s, row.id, wakeAt);
      const after = await mustGet(s, row.id);
      assert.equal(after.status, 'pending');
      assert.equal(after.wakeAt, null);
      assert.equal(after.attempt, 0);
      const run2 = await claimOne(s, row.queue, row.id);
      assert.equal(run2.attempt, 1);
    });

    it('jobWakeDue honours its limit', async () => {
      const s = ctx.s;
      const wakeAt = (await s.clockNow()) + 20;
      const ids = [];
      for (let i = 0; i < 3; i++) ids.push((await waitingJob(s, {}, { wakeAt })).row.id);
      const seen = new Set<string>();
      await wakeUntilLimited(s, ids, seen);
      assert.equal(seen.size, 3);
    });

    it('a signal does not wake a sleeping job that waits for no signal', async () => {
      const s = ctx.s;
      const { row } = await waitingJob(s, {}, { wakeAt: (await s.clockNow()) + 3_600_000 });
      await s.signalSend({ jobId: row.id, name: 'anything', payloadJson: null });
      assert.equal((await mustGet(s, row.id)).status, 'waiting');
    });

    it('a wait over a step already recorded as finished throws InvalidStateError and consumes nothing', async () => {
      const s = ctx.s;
      const { fence } = await runningJob(s);
      const done = stepRow(fence.jobId, 0, { stepName: 'wait-0', outputJson: '"done"' });
      assert.equal(await s.stepRecord({ fence, step: done }), true);
      await s.signalSend({ jobId: fence.jobId, name: 'go', payloadJson: '1' });
      const finished = (e: unknown): boolean => e instanceof InvalidStateError && e.message === stepAlreadyFinishedMessage(fence.jobId, 0);
      await assert.rejects(consume(s, fence, 0, 'go'), finished, 'a buffered signal over a finished step');
      await assert.rejects(consume(s, fence, 0, 'none', 1), finished, 'a timeout over a finished step');
      assert.deepEqual(await s.stepList({ jobId: fence.jobId }), [done], 'the finished step is kept');
      assert.equal((await mustGet(s, fence.jobId)).status, 'running');
      // The signal was not consumed: the next wait gets it.
      assert.deepEqual(await consume(s, fence, 1, 'go'), { kind: 'consumed', payloadJson: '1' });
    });

    it('signalSend to an unknown job throws JobNotFoundError, to a terminal job InvalidStateError', async () => {
      const s = ctx.s;
      const unknown = newId();
      await assert.rejects(s.signalSend({ jobId: unknown, name: 'x', payloadJson: null }), (e) => e instanceof JobNotFoundError && e.jobId === unknown);
      for (const job of [await completedJob(s), await failedJob(s), await cancelledJob(s)]) {
        await assert.rejects(
          s.signalSend({ jobId: job.id, name: 'x', payloadJson: null }),
          (e) => e instanceof InvalidStateError && e.message === cannotSignalMessage(job.id, job.status),
          `signal to a ${job.status} job: InvalidStateError "${cannotSignalMessage(job.id, job.status)}"`,
        );
      }
      // Pending and paused jobs accept signals (buffered for later).
      const q = uniqueName('q');
      const pending = await insertJob(s, { queue: q });
      await s.signalSend({ jobId: pending, name: 'x', payloadJson: '1' });
      const paused = await pausedJob(s);
      await s.signalSend({ jobId: paused.id, name: 'x', payloadJson: '2' });
      assert.equal((await mustGet(s, paused.id)).status, 'paused');
      const run = fenceOf(await claimOne(s, q, pending));
      assert.deepEqual(await consume(s, run, 0, 'x'), { kind: 'consumed', payloadJson: '1' });
    });

    it('signalList gives the signals of one job oldest first, consumed ones with their time, at most limit', async () => {
      const s = ctx.s;
      const { fence } = await runningJob(s);
      const other = await runningJob(s);
      await s.signalSend({ jobId: other.fence.jobId, name: 'a', payloadJson: '"theirs"' });
      for (const [name, p] of [['b', '"1"'], ['a', null], ['b', '{"x": "\\u0000 é"}']] as const) await s.signalSend({ jobId: fence.jobId, name, payloadJson: p });
      assert.deepEqual(await consume(s, fence, 0, 'b'), { kind: 'consumed', payloadJson: '"1"' });
      const rows = await s.signalList({ jobId: fence.jobId, limit: 10 });
      assert.deepEqual(
        rows.map((r) => [r.name, r.payloadJson, r.consumedAt !== null]),
        [
          ['b', '"1"', true],
          ['a', null, false],
          ['b', '{"x": "\\u0000 é"}', false],
        ],
      );
      assert.ok(rows[0]!.seq < rows[1]!.seq && rows[1]!.seq < rows[2]!.seq, 'ordered by seq');
      for (const r of rows) assert.ok(Number.isInteger(r.createdAt) && r.createdAt > 0);
      assert.ok(rows[0]!.consumedAt! >= rows[0]!.createdAt);
      assert.deepEqual((await s.signalList({ jobId: fence.jobId, limit: 2 })).map((r) => r.seq), [rows[0]!.seq, rows[1]!.seq]);
      assert.deepEqual(await s.signalList({ jobId: newId(), limit: 10 }), [], 'an unknown job has none');
    });
  });
}

/** Calls `jobWakeDue({ limit: 2 })` until every id was woken, checking the limit each time. */
async function wakeUntilLimited(s: Storage, ids: string[], seen: Set<string>): Promise<void> {
  await waitFor(
    async () => {
      const batch = await s.jobWakeDue({ limit: 2 });
      assert.ok(batch.length <= 2, `woke ${batch.length} > limit 2`);
      for (const id of batch) if (ids.includes(id)) seen.add(id);
      return seen.size === ids.length;
    },
    { timeout: 5_000, message: 'jobs woken' },
  );
}
