/**
 * `BaseStorage`, the facade every driver shares, over a fake driver whose operations record
 * their calls: the closed check, the empty-batch short-circuits (no operation runs), error
 * translation and its debug log, and that it adds no microtask to an operation's result.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { type DurableJobsError, JobNotFoundError, StorageClosedError, StorageError } from '../../../src/errors.js';
import type { Dialect, Fence, JobRow } from '../../../src/storage/storage.js';
import { BaseStorage, type StorageOpName, type StorageOps } from '../../../src/storage/shared/base-storage.js';
import { STORAGE_OPERATION_FAILED } from '../../../src/storage/shared/contract-messages.js';
import type { MaybePromise } from '../../../src/storage/shared/maybe-async.js';
import type { Logger } from '../../../src/types.js';

interface Ctx {
  calls: { op: string; p: unknown }[];
}

/** A driver error as a client would raise it. */
class FakeDriverError extends Error {
  constructor(readonly driverCode: string) {
    super(`driver says ${driverCode}`);
  }
}

const NAMES: StorageOpName[] = [
  'migrate', 'clockNow', 'jobInsertMany', 'jobGet', 'jobGetMany', 'jobList', 'jobCountByStatus', 'jobClaim', 'jobFinishMany', 'jobHeartbeat',
  'jobRelease', 'jobReclaimExpired', 'jobWakeDue', 'jobCancel', 'jobPause', 'jobResume', 'jobRetry', 'queueSetPaused',
  'stepList', 'stepRecord', 'stepRecordMany', 'jobSuspendFanOut', 'jobSuspend', 'jobSuspendUntil', 'fanOutGet', 'fanOutExpire', 'fanOutCollect', 'signalSend',
  'signalConsumeOrWait', 'scheduleUpsert', 'scheduleDelete', 'scheduleList', 'scheduleListDue', 'scheduleFire',
];

/** Operations that record the call and answer `answer(op)`; `jobGet` may be replaced per test. */
function recordingOps(answer: (op: string, p: unknown) => unknown): StorageOps<Ctx> {
  const table: Record<string, (ctx: Ctx, p: unknown) => unknown> = {};
  for (const op of NAMES) {
    table[op] = (ctx, p) => {
      ctx.calls.push({ op, p });
      return answer(op, p);
    };
  }
  return table as unknown as StorageOps<Ctx>;
}

class FakeStorage extends BaseStorage<Ctx> {
  readonly dialect: Dialect = 'sqlite';
  closes = 0;

  constructor(
    readonly ctx: Ctx,
    ops: StorageOps<Ctx>,
    logger: Logger,
    readonly translate: (e: unknown) => MaybePromise<DurableJobsError> = (e) => new StorageError('translated', { cause: e }),
  ) {
    super(ops, ctx, logger);
  }

  protected override translateError(e: unknown): MaybePromise<DurableJobsError> {
    return this.translate(e);
  }

  protected override async closeResources(): Promise<void> {
    this.closes++;
  }
}

function make(answer: (op: string, p: unknown) => unknown = () => 'ok', translate?: (e: unknown) => MaybePromise<DurableJobsError>) {
  const ctx: Ctx = { calls: [] };
  const logs: { message: string; fields: Record<string, unknown> | undefined }[] = [];
  const logger: Logger = { debug: (message, fields) => logs.push({ message, fields }), info: () => {}, warn: () => {}, error: () => {} };
  const storage = new FakeStorage(ctx, recordingOps(answer), logger, translate);
  return { storage, ctx, logs };
}

const fence: Fence = { jobId: 'j', workerId: 'w', runCount: 1 };

/** Every call whose params leave nothing to do, with its empty answer. */
const EMPTY_CALLS: [string, (s: FakeStorage) => Promise<unknown>, unknown][] = [
  ['jobInsertMany', (s) => s.jobInsertMany({ jobs: [] }), { inserted: [], ids: [] }],
  ['jobGetMany', (s) => s.jobGetMany({ ids: [] }), []],
  ['jobClaim', (s) => s.jobClaim({ workerId: 'w', queues: [], leaseMs: 1000 }), []],
  ['jobClaimLimited', (s) => s.jobClaimLimited({ workerId: 'w', queues: [], leaseMs: 1000 }), { rows: [], retryInMs: null, saturated: false }],
  ['jobFinishMany', (s) => s.jobFinishMany({ items: [] }), []],
  ['jobHeartbeat', (s) => s.jobHeartbeat({ workerId: 'w', runs: [], leaseMs: 1000 }), []],
  ['jobRelease', (s) => s.jobRelease({ runs: [] }), []],
  ['jobReclaimExpired', (s) => s.jobReclaimExpired({ limit: 0 }), []],
  ['jobWakeDue', (s) => s.jobWakeDue({ limit: 0 }), []],
  ['stepRecordMany', (s) => s.stepRecordMany({ items: [] }), []],
  ['scheduleListDue', (s) => s.scheduleListDue({ limit: 0 }), []],
];

describe('BaseStorage', () => {
  it('passes each method to the operation of the same name with the driver context and params', async () => {
    const { storage, ctx } = make((op) => `${op}-result`);
    const p = { id: 'j1' };
    assert.equal(await storage.jobGet(p), 'jobGet-result');
    assert.equal(await storage.jobFinishMany({ items: [{ ...fence, outcome: 'completed', resultJson: null }] }), 'jobFinishMany-result');
    assert.equal(await storage.scheduleList(), 'scheduleList-result');
    assert.equal(ctx.calls[0]?.p, p, 'the params object itself');
    assert.deepEqual(ctx.calls.map((c) => c.op), ['jobGet', 'jobFinishMany', 'scheduleList']);
  });

  it('answers calls with nothing to do without running an operation', async () => {
    const { storage, ctx } = make();
    for (const [name, call, expected] of EMPTY_CALLS) assert.deepEqual(await call(storage), expected, name);
    assert.deepEqual(ctx.calls, []);
  });

  it('sends an empty insert with a caller transaction to the driver (which validates the handle)', async () => {
    const { storage, ctx } = make(() => ({ inserted: [] }));
    await storage.jobInsertMany({ jobs: [], tx: { some: 'handle' } });
    assert.deepEqual(ctx.calls.map((c) => c.op), ['jobInsertMany']);
  });

  it('once closed, rejects every call with StorageClosedError (empty ones too) and closes resources once', async () => {
    const { storage, ctx } = make();
    await Promise.all([storage.close(), storage.close()]);
    await storage.close();
    assert.equal(storage.closes, 1);
    await assert.rejects(storage.jobGet({ id: 'x' }), StorageClosedError);
    await assert.rejects(storage.migrate(), StorageClosedError);
    for (const [name, call] of EMPTY_CALLS) await assert.rejects(call(storage), StorageClosedError, name);
    assert.deepEqual(ctx.calls, []);
  });

  it('translates a synchronous throw and an asynchronous rejection, and logs the failed operation', async () => {
    const { storage, logs } = make((op) => {
      if (op === 'jobCancel') throw new FakeDriverError('SYNC');
      if (op === 'jobRetry') return Promise.reject(new FakeDriverError('ASYNC'));
      return 'ok';
    });
    const sync = await storage.jobCancel({ id: 'a' }).then(() => assert.fail('resolved'), (e: unknown) => e);
    assert.ok(sync instanceof StorageError);
    assert.equal((sync.cause as FakeDriverError).driverCode, 'SYNC');
    const async = await storage.jobRetry({ id: 'b' }).then(() => assert.fail('resolved'), (e: unknown) => e);
    assert.ok(async instanceof StorageError);
    assert.equal((async.cause as FakeDriverError).driverCode, 'ASYNC');
    assert.deepEqual(logs, [
      { message: STORAGE_OPERATION_FAILED, fields: { dialect: 'sqlite', op: 'jobCancel', code: 'STORAGE', error: 'translated' } },
      { message: STORAGE_OPERATION_FAILED, fields: { dialect: 'sqlite', op: 'jobRetry', code: 'STORAGE', error: 'translated' } },
    ]);
  });

  it('waits for an asynchronous translateError, and passes typed errors through it', async () => {
    const { storage } = make(
      (op) => {
        throw new FakeDriverError(op);
      },
      async (e) => (e instanceof FakeDriverError ? new JobNotFoundError(e.driverCode) : new StorageError('other')),
    );
    await assert.rejects(storage.jobPause({ id: 'x' }), (e: unknown) => e instanceof JobNotFoundError && e.jobId === 'jobPause');
  });

  it('settles a synchronous operation as an async method returning its value would (no extra tick)', async () => {
    const row = { id: 'r' } as JobRow;
    const { storage } = make(() => row);
    const order: string[] = [];
    const base = storage.jobGet({ id: 'r' }).then(() => order.push('base'));
    const reference = (async () => row)().then(() => order.push('reference'));
    await Promise.all([base, reference]);
    assert.deepEqual(order, ['base', 'reference']);
  });

  it('settles an asynchronous operation as `return await op()` in an async method would (no extra tick)', async () => {
    const row = { id: 'r' } as JobRow;
    const op = async (): Promise<JobRow> => row;
    const { storage } = make(() => op());
    const order: string[] = [];
    const base = storage.jobGet({ id: 'r' }).then(() => order.push('base'));
    const reference = (async () => await op())().then(() => order.push('reference'));
    await Promise.all([base, reference]);
    assert.deepEqual(order, ['base', 'reference']);
  });
});
