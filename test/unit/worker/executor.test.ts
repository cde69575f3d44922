/**
 * `executeJob` with fake collaborators (a completer that records outcomes, a fake storage for
 * checkpoints), with mocked timers where time matters: a handler's result, sync or async,
 * becomes a `completed` outcome; a throw a `retry` with the backoff's delay while attempts
 * remain and a `failed` one after the last; `noRetry` fails at once; `retryAfter` sets the delay
 * without asking the backoff; a timeout aborts the handler with `JobTimeoutError` and fails the
 * attempt; a run abandoned (lost lease, shutdown) writes no outcome; an unknown type, a corrupt
 * payload and an unstorable result fail without a retry; a replay divergence the handler caught
 * still fails the run; the slot is freed before the outcome is written; events carry the time
 * the database stored the outcome.
 */
import { afterEach, describe, it, mock } from 'node:test';
import assert from 'node:assert/strict';
import { DeterminismError, JobTimeoutError, LeaseLostError, noRetry, retryAfter } from '../../../src/errors.js';
import type { JobRow, StepRow, Storage } from '../../../src/storage/storage.js';
import type { JobEvent } from '../../../src/types.js';
import { executeJob, JobRun } from '../../../src/worker/executor.js';
import type { JobContext } from '../../../src/workflow/job-context.js';
import { fakeCompleter, fakeCore, fakeStorage, flush, jobRow } from './fakes.js';

type TestHandler = (args: unknown, ctx: JobContext<unknown>) => unknown;

/** Runs one job of type `t` (row overrides in `row`) to its recorded outcome. */
async function run(handler: TestHandler | undefined, row: Partial<JobRow> = {}, opts: { storage?: Storage; stored?: boolean } = {}) {
  const storage = opts.storage ?? fakeStorage({});
  const core = fakeCore(storage, handler ? { t: handler } : {});
  const events: JobEvent[] = [];
  const stream = core.hub.stream();
  const watching = (async () => {
    for await (const e of stream) events.push(e);
  })();
  const { completer, calls } = fakeCompleter(opts.stored === false ? () => undefined : undefined);
  const order: string[] = [];
  const backoffCalls: [number, unknown][] = [];
  const jobRun = new JobRun(jobRow({ argsJson: '{"n":2}', ...row }), 'w', core);
  const done = executeJob(
    {
      core,
      completer: { finish: (item, r) => (order.push('finish'), completer.finish(item, r)) } as typeof completer,
      backoff: (attempt, err) => (backoffCalls.push([attempt, err]), 777),
      onSettled: () => void order.push('settled'),
    },
    jobRun,
  );
  return {
    run: jobRun,
    calls,
    order,
    backoffCalls,
    /** Waits for the run to be recorded; returns its events. */
    async done(): Promise<JobEvent[]> {
      await done;
      await stream.return?.();
      await watching;
      return events;
    },
  };
}

describe('executeJob', () => {
  afterEach(() => mock.timers.reset());

  it('a returned value (sync or async) is a completed outcome; the slot is freed before it is written', async () => {
    for (const handler of [(a: unknown) => ({ doubled: (a as { n: number }).n * 2 }), async (a: unknown) => ({ doubled: (a as { n: number }).n * 2 })]) {
      const r = await run(handler);
      const events = await r.done();
      assert.equal(r.calls.length, 1);
      const { item } = r.calls[0]!;
      assert.deepEqual(item, { jobId: r.run.row.id, workerId: 'w', runCount: 1, outcome: 'completed', resultJson: '{"doubled":4}' });
      assert.deepEqual(r.order, ['settled', 'finish']);
      const completed = events.find((e) => e.type === 'job.completed');
      assert.ok(completed && completed.type === 'job.completed', 'a job.completed event');
      assert.equal(completed.at.getTime(), 5_000, 'the event carries the stored time, not the host clock');
      assert.deepEqual(completed.job.result, { doubled: 4 });
      assert.equal(completed.job.status, 'completed');
    }
  });

  it('a throw with attempts left is a retry after the backoff delay; on the last attempt it fails', async () => {
    const boom = new Error('boom');
    const first = await run(() => {
      throw boom;
    }, { attempt: 1, maxRetries: 2 });
    const events = await first.done();
    assert.deepEqual(first.backoffCalls, [[1, boom]]);
    assert.deepEqual(first.calls[0]?.item, { jobId: first.run.row.id, workerId: 'w', runCount: 1, outcome: 'retry', error: 'boom', delayMs: 777 });
    const retrying = events.find((e) => e.type === 'job.retrying');
    assert.ok(retrying && retrying.type === 'job.retrying', 'a job.retrying event');
    assert.equal(retrying.retryAt.getTime(), 5_000 + 777, 'retry time = stored time + delay');

    const last = await run(async () => Promise.reject(new Error('still broken')), { attempt: 3, maxRetries: 2 });
    await last.done();
    assert.deepEqual(last.calls[0]?.item, { jobId: last.run.row.id, workerId: 'w', runCount: 1, outcome: 'failed', error: 'still broken' });
    assert.deepEqual(last.backoffCalls, [], 'no backoff asked for a final failure');
  });

  it('noRetry fails at once; retryAfter sets the delay without asking the backoff', async () => {
    const permanent = await run(() => {
      throw noRetry(new Error('bad input'));
    }, { attempt: 1, maxRetries: 5 });
    await permanent.done();
    assert.equal(permanent.calls[0]?.item.outcome, 'failed');
    assert.match((permanent.calls[0]?.item as { error: string }).error, /bad input/);

    const later = await run(async () => {
      throw retryAfter(60_000, new Error('rate limited'));
    });
    await later.done();
    assert.equal(later.calls[0]?.item.outcome, 'retry');
    assert.equal((later.calls[0]?.item as { delayMs: number }).delayMs, 60_000);
    assert.deepEqual(later.backoffCalls, []);
  });

  it('a timeout aborts the handler with JobTimeoutError and fails the attempt; a handler done in time is not aborted', async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    let signal: AbortSignal | undefined;
    const slow = await run((_, ctx) => {
      signal = ctx.abortSignal;
      return new Promise(() => {});
    }, { timeoutMs: 500 });
    mock.timers.tick(499);
    await flush();
    assert.equal(signal?.aborted, false, 'not aborted before the timeout');
    assert.equal(slow.calls.length, 0);
    mock.timers.tick(1);
    await slow.done();
    assert.ok(signal?.reason instanceof JobTimeoutError, 'the handler sees JobTimeoutError');
    assert.equal(slow.calls[0]?.item.outcome, 'retry');
    assert.match((slow.calls[0]?.item as { error: string }).error, /timed out after 500 ms/);

    let fastSignal: AbortSignal | undefined;
    const fast = await run(async (_, ctx) => {
      fastSignal = ctx.abortSignal;
      return 'quick';
    }, { timeoutMs: 500 });
    await fast.done();
    mock.timers.tick(1_000);
    assert.equal(fastSignal?.aborted, false, 'the timeout was cleared');
    assert.equal(fast.calls[0]?.item.outcome, 'completed');
  });

  it('a run abandoned while its handler runs (lost lease, shutdown) writes no outcome and aborts the handler', async () => {
    let signal: AbortSignal | undefined;
    const r = await run((_, ctx) => {
      signal = ctx.abortSignal;
      return new Promise(() => {});
    });
    await flush();
    const reason = new LeaseLostError('the job lease was lost');
    r.run.leaseLost(reason);
    const events = await r.done();
    assert.equal(signal?.reason, reason);
    assert.deepEqual(r.calls, [], 'no outcome written');
    assert.deepEqual(r.order, ['settled'], 'the slot is freed');
    assert.deepEqual(
      events.map((e) => e.type),
      ['job.started'],
    );
  });

  it('an unknown type, a corrupt payload and an unstorable result fail the run without a retry', async () => {
    const unknown = await run(undefined, { attempt: 1, maxRetries: 5 });
    await unknown.done();
    assert.deepEqual(unknown.calls[0]?.item, { jobId: unknown.run.row.id, workerId: 'w', runCount: 1, outcome: 'failed', error: 'no handler registered for job type "t"' });

    let ran = false;
    const corrupt = await run(() => void (ran = true), { argsJson: '{not json', maxRetries: 5 });
    await corrupt.done();
    assert.equal(ran, false, 'the handler never sees a payload it cannot decode');
    assert.equal(corrupt.calls[0]?.item.outcome, 'failed');
    assert.match((corrupt.calls[0]?.item as { error: string }).error, /cannot decode job payload/);

    const unstorable = await run(() => ({ big: 10n }), { maxRetries: 5 });
    await unstorable.done();
    assert.equal(unstorable.calls.length, 1, 'one outcome written');
    assert.equal(unstorable.calls[0]?.item.outcome, 'failed');
  });

  it('an outcome the run could not store (it no longer owned the job) emits no event', async () => {
    const r = await run(() => 'done', {}, { stored: false });
    const events = await r.done();
    assert.equal(r.calls.length, 1);
    assert.deepEqual(
      events.map((e) => e.type),
      ['job.started'],
    );
  });

  it('a replay divergence fails the run even when the handler caught the DeterminismError', async () => {
    const history: StepRow[] = [{ jobId: 'x', stepIndex: 0, stepName: 'charge', status: 'completed', outputJson: '1', error: null }];
    const storage = fakeStorage({ stepList: async () => history });
    let caught: unknown;
    const r = await run(
      async (_, ctx) => {
        try {
          await ctx.call('refund');
        } catch (err) {
          caught = err;
        }
        return 'carried on';
      },
      { runCount: 2, attempt: 2, maxRetries: 5 },
      { storage },
    );
    await r.done();
    assert.ok(caught instanceof DeterminismError, 'the handler saw the DeterminismError');
    assert.equal(r.calls[0]?.item.outcome, 'failed', 'a determinism error is never retried');
    assert.match((r.calls[0]?.item as { error: string }).error, /diverged at step 0/);
  });
});
