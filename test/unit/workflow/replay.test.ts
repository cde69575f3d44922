/**
 * `Replay`, the step cursor of one run, over a fake storage (`stepList`, `stepRecord`) and a
 * fake coalescing writer: positions are handed out in order; a first run never reads
 * checkpoints, a later run reads them once however many steps ask at the same time; a recorded
 * step is returned as stored, and a different name at its position is a `DeterminismError`
 * that sticks to the run; a checkpoint write that does not apply loses the lease; one that
 * reports "not applied" after its reply may have been lost is checked against the stored row; a
 * failed write is retried while the lease holds (mocked timers) and given up when it goes; a
 * closed run refuses durable work; in-flight writes are tracked until they settle.
 */
import { afterEach, describe, it, mock } from 'node:test';
import assert from 'node:assert/strict';
import { DeterminismError, LeaseLostError } from '../../../src/errors.js';
import { BatchWriteError } from '../../../src/internal/batcher.js';
import { deferred } from '../../../src/internal/deferred.js';
import type { Applied } from '../../../src/internal/write-retry.js';
import type { Fence, StepRecordParams, StepRow } from '../../../src/storage/storage.js';
import { Replay, type RunLease } from '../../../src/workflow/replay.js';
import { fakeStorage, flush } from '../worker/fakes.js';

const fence = (runCount: number): Fence => ({ jobId: 'job-1', workerId: 'w', runCount });

function step(stepIndex: number, stepName: string, over: Partial<StepRow> = {}): StepRow {
  return { jobId: 'job-1', stepIndex, stepName, status: 'completed', outputJson: JSON.stringify(stepName), error: null, ...over };
}

/** A storage holding `history` as the job's checkpoints, counting reads. */
function history(rows: StepRow[]) {
  const state = { reads: 0, rows: [...rows], solo: [] as StepRecordParams[] };
  const storage = fakeStorage({
    stepList: async () => {
      state.reads++;
      return state.rows.map((r) => ({ ...r }));
    },
    stepRecord: async (p) => {
      state.solo.push(p);
      return true;
    },
  });
  return { state, storage };
}

/** A writer that records each write and answers with `answer`. */
function writer(answer: (p: StepRecordParams, n: number) => Applied | Promise<Applied>) {
  const writes: StepRecordParams[] = [];
  return {
    writes,
    write: async (p: StepRecordParams): Promise<Applied> => {
      writes.push(p);
      return answer(p, writes.length);
    },
  };
}

function lease(over: Partial<RunLease> = {}): RunLease {
  return { held: () => true, probe: async () => true, signal: new AbortController().signal, ...over };
}

describe('Replay', () => {
  afterEach(() => mock.timers.reset());

  it('hands out step positions in order', () => {
    const r = new Replay(fakeStorage({}), fence(1));
    assert.deepEqual([r.take(), r.take(), r.take()], [0, 1, 2]);
  });

  it('a first run never reads checkpoints', async () => {
    const r = new Replay(fakeStorage({}), fence(1));
    assert.equal(await r.recorded(0, 'a'), undefined);
    assert.equal(await r.recorded(1, 'b'), undefined);
  });

  it('a later run reads the checkpoints once, also when steps ask at the same time, and gets each as stored', async () => {
    const h = history([step(0, 'a'), step(1, 'b', { status: 'failed', outputJson: null, error: 'nope' })]);
    const r = new Replay(h.storage, fence(2));
    const [a, b, c] = await Promise.all([r.recorded(0, 'a'), r.recorded(1, 'b'), r.recorded(2, 'c')]);
    assert.deepEqual(a, step(0, 'a'));
    assert.deepEqual(b, step(1, 'b', { status: 'failed', outputJson: null, error: 'nope' }));
    assert.equal(c, undefined, 'past the history: a new step');
    await r.recorded(0, 'a');
    assert.equal(h.state.reads, 1);
  });

  it('another name at a recorded position is a DeterminismError that sticks to the run', async () => {
    const h = history([step(0, 'charge'), step(1, 'ship')]);
    const r = new Replay(h.storage, fence(3));
    assert.deepEqual(await r.recorded(0, 'charge'), step(0, 'charge'));
    assert.equal(r.diverged, undefined);
    const err = await r.recorded(1, 'refund').then(
      () => assert.fail('a renamed step was replayed'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof DeterminismError, 'a DeterminismError');
    assert.match(err.message, /step 1: the history has "ship" but the code now asks for "refund"/);
    assert.equal(r.diverged, err);
    await assert.rejects(r.recorded(0, 'charge'), (e) => e === err, 'later operations throw the same divergence');
    await assert.rejects(r.recorded(5, 'anything'), (e) => e === err);
  });

  it('records a fenced checkpoint (error text made storable) and replays it without reading again', async () => {
    const h = history([]);
    const w = writer(() => true);
    const r = new Replay(h.storage, fence(2), w.write);
    assert.equal(await r.recorded(0, 'a'), undefined);
    await r.record({ stepIndex: 0, stepName: 'a', status: 'failed', outputJson: null, error: 'bad\u0000byte' });
    assert.equal(w.writes.length, 1);
    assert.deepEqual(w.writes[0]?.fence, fence(2));
    assert.equal(w.writes[0]?.step.jobId, 'job-1');
    assert.ok(!w.writes[0]?.step.error?.includes('\u0000'), 'no NUL reaches the database');
    assert.equal((await r.recorded(0, 'a'))?.status, 'failed');
    assert.equal(h.state.reads, 1);
  });

  it('a checkpoint write that does not apply means the run lost the job', async () => {
    const r = new Replay(history([]).storage, fence(1), writer(() => false).write);
    await assert.rejects(r.record(step(0, 'a')), LeaseLostError);
  });

  it('"not applied" after a possibly lost reply is checked against the stored row', async () => {
    const stored = history([step(0, 'a')]);
    const ok = new Replay(stored.storage, fence(1), writer(() => 'unsure').write);
    await ok.record(step(0, 'a'));
    assert.equal(stored.state.reads, 1, 'the stored row was read to decide');

    const other = history([step(0, 'a', { outputJson: '"someone else"' })]);
    const lost = new Replay(other.storage, fence(1), writer(() => 'unsure').write);
    await assert.rejects(lost.record(step(0, 'a')), LeaseLostError, 'a different stored checkpoint is not ours');
  });

  it('a failed write is retried while the lease holds, and given up when it goes', async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    const h = history([]);
    const w = writer((_, n) => {
      if (n === 1) throw new BatchWriteError(new Error('connection reset'), false);
      return true;
    });
    const r = new Replay(h.storage, fence(1), w.write, lease());
    let done = false;
    const writing = r.record(step(0, 'a')).then(() => (done = true));
    await flush();
    assert.equal(r.busy, true, 'the write is in flight (waiting to retry)');
    assert.equal(done, false);
    mock.timers.tick(100);
    await writing;
    assert.equal(w.writes.length, 2, 'retried once');
    assert.equal(r.busy, false);

    let held = true;
    const failing = writer(() => {
      throw new BatchWriteError(new Error('connection reset'), false);
    });
    const gone = new Replay(h.storage, fence(1), failing.write, lease({ held: () => held }));
    const attempt = gone.record(step(0, 'b'));
    await flush();
    mock.timers.tick(100);
    await flush();
    held = false;
    mock.timers.tick(1_000);
    await assert.rejects(attempt, LeaseLostError);
    const tries = failing.writes.length;
    mock.timers.tick(10_000);
    await flush();
    assert.equal(failing.writes.length, tries, 'no retry once the lease is gone');
  });

  it('a checkpoint that alone keeps failing while the lease is confirmed fails the step with the storage error', async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    const refused = new Error('value too long for column');
    const failing = writer(() => {
      throw new BatchWriteError(refused, true);
    });
    const storage = fakeStorage({
      stepRecord: async () => {
        throw refused;
      },
    });
    const r = new Replay(storage, fence(1), failing.write, lease());
    let result: unknown;
    void r.record(step(0, 'a')).catch((e: unknown) => (result = e));
    for (let i = 0; i < 50 && result === undefined; i++) {
      mock.timers.tick(2_500);
      await flush();
    }
    assert.equal(result, refused);
  });

  it('a closed run refuses durable work; settle() waits for writes in flight', async () => {
    const reply = deferred<Applied>();
    const w = writer(() => reply.promise);
    const r = new Replay(history([]).storage, fence(1), w.write);
    let written = false;
    const writing = r.record(step(0, 'a')).then(() => (written = true));
    assert.equal(r.busy, true);
    let settled = false;
    const settling = r.settle().then(() => (settled = true));
    await flush();
    assert.equal(settled, false, 'settle waits for the write in flight');
    reply.resolve(true);
    await settling;
    assert.equal(written, true);
    await writing;
    r.close();
    await assert.rejects(r.recorded(1, 'b'), LeaseLostError);
    await assert.rejects(r.record(step(1, 'b')), LeaseLostError);
    assert.throws(() => r.assertOpen(), LeaseLostError);
    assert.equal(w.writes.length, 1, 'nothing written after close');
  });

  it("remember() adds a checkpoint the storage wrote itself (a timer's) to the replay", async () => {
    const r = new Replay(history([]).storage, fence(2));
    await r.recorded(0, 'x');
    r.remember({ stepIndex: 3, stepName: 'sleep', status: 'completed', outputJson: '123', error: null });
    assert.deepEqual(await r.recorded(3, 'sleep'), { jobId: 'job-1', stepIndex: 3, stepName: 'sleep', status: 'completed', outputJson: '123', error: null });
    await assert.rejects(r.recorded(3, 'call'), DeterminismError);
  });
});
