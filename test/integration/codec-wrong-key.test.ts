/**
 * Payloads no key opens, met in the middle of a workflow, on every driver: a checkpoint, a
 * signal payload and a fan-out child's result written under a key the worker lacks (a rolling
 * deploy, a dropped previous key). Workflow code that catches the errors of its `ctx` calls
 * must not swallow the decode failure and go on with a fallback: the run fails at once with
 * `CodecError` (`PAYLOAD_DECODE_FAILED`), no step runs again, and once the keys are fixed
 * `retryJob(id, { fromFailedStep: true })` finishes the workflow from its checkpoints.
 * Also: a schedule whose options no key opens does not break `queue.schedules()`, and
 * `getJob` keeps the plaintext `meta` of a job whose args it cannot decode.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, afterEach, before, describe, it } from 'node:test';
import { encryptedCodec } from '../../src/core/encrypted-codec.js';
import { CodecError } from '../../src/errors.js';
import { Queue } from '../../src/queue/queue.js';
import { every } from '../../src/scheduler/schedules.js';
import { sub } from '../../src/workflow/fan-out.js';
import { uniqueName } from '../helpers/factories.js';
import { openRawDatabase, type RawDatabase } from '../helpers/raw-database.js';
import { storageMatrix } from '../helpers/storages.js';
import { waitFor } from '../helpers/wait-for.js';
import { startWorker, stopAllWorkers } from '../helpers/workflow-harness.js';

/** Key A (old) and key B (new); `a`: A only, `ab`: B with A as previous key. */
function keys(): { aKey: Buffer; bKey: Buffer } {
  return { aKey: randomBytes(32), bKey: randomBytes(32) };
}

const echo = async (x: unknown): Promise<unknown> => x;

for (const [driver] of storageMatrix()) {
  describe(`payload codec: payloads no key opens inside a workflow (${driver})`, () => {
    let db: RawDatabase;
    before(async () => {
      db = await openRawDatabase(driver, `codec-wk-${driver}`);
    });
    afterEach(stopAllWorkers);
    after(async () => {
      await db.cleanup();
    });

    it('a checkpoint no key opens fails the run even when the workflow catches ctx.call errors; the step does not run again', async () => {
      const { aKey, bKey } = keys();
      const q = uniqueName('wk-step');
      const type = uniqueName('wf');
      const qa = new Queue(db.storage, { codec: encryptedCodec({ key: aKey }) });
      const qb = new Queue(db.storage, { codec: encryptedCodec({ key: bKey, previousKeys: [aKey] }) });
      let sideRuns = 0;
      const errors: Error[] = [];
      for (const queue of [qa, qb]) {
        queue.register('side', async () => {
          sideRuns++;
          return 'side effect done';
        });
        queue.register(type, async (_a: unknown, ctx) => {
          let out: unknown;
          try {
            out = await ctx.call('side');
          } catch {
            out = 'fallback';
          }
          const go = await ctx.waitForSignal('go');
          return { out, go };
        });
      }
      qa.onJobFail((_j, e) => void errors.push(e));
      const id = await qa.enqueue(type, { n: 1 }, { queue: q, retries: 3 });
      // B writes the checkpoint, then the workflow waits for its signal.
      const wb = startWorker(qb, { queues: { [q]: {} } });
      await waitFor(async () => (await qb.getJob(id))?.status === 'waiting', { message: 'the workflow waits for its signal' });
      await wb.stop();
      assert.equal(sideRuns, 1);
      // An A-only worker (not yet rolled forward) resumes it: the checkpoint cannot be decoded.
      const wa = startWorker(qa, { queues: { [q]: {} } });
      await qa.signal(id, 'go', 'signal by A');
      await waitFor(async () => ['failed', 'completed'].includes((await qa.getJob(id))?.status ?? ''), { message: 'the run ends' });
      await wa.stop();
      const job = await qb.getJob(id);
      assert.equal(job?.status, 'failed', `the run must fail, not complete with a fallback: ${JSON.stringify(job?.result)}`);
      assert.equal(sideRuns, 1, 'the step did not run again');
      assert.match(job?.lastError ?? '', /cannot be decoded/);
      assert.ok(
        errors.some((e) => e instanceof CodecError && e.code === 'PAYLOAD_DECODE_FAILED'),
        `onJobFail gets the CodecError: ${errors.map(String).join('; ')}`,
      );
      // Keys fixed: the workflow finishes from its checkpoints.
      await qb.retryJob(id, { fromFailedStep: true });
      const wb2 = startWorker(qb, { queues: { [q]: {} } });
      const done = await qb.waitForJob(id, { timeout: 15_000 });
      await wb2.stop();
      assert.equal(done.status, 'completed', done.lastError);
      assert.deepEqual(done.result, { out: 'side effect done', go: 'signal by A' });
      assert.equal(sideRuns, 1, 'the step ran once in all');
    });

    it('a failed step whose error no key opens fails the run instead of handing the workflow a placeholder text', async () => {
      const { aKey, bKey } = keys();
      const q = uniqueName('wk-stepfail');
      const type = uniqueName('wf');
      const qa = new Queue(db.storage, { codec: encryptedCodec({ key: aKey }) });
      const qb = new Queue(db.storage, { codec: encryptedCodec({ key: bKey, previousKeys: [aKey] }) });
      for (const queue of [qa, qb]) {
        queue.register('boom', async () => {
          throw new (await import('../../src/errors.js')).NoRetryError(new Error('card declined'));
        });
        queue.register(type, async (_a: unknown, ctx) => {
          let why = '';
          try {
            await ctx.call('boom');
          } catch (e) {
            why = (e as Error).message;
          }
          await ctx.waitForSignal('go');
          return why;
        });
      }
      const id = await qa.enqueue(type, null, { queue: q });
      const wb = startWorker(qb, { queues: { [q]: {} } });
      await waitFor(async () => (await qb.getJob(id))?.status === 'waiting', { message: 'the workflow waits for its signal' });
      await wb.stop();
      const wa = startWorker(qa, { queues: { [q]: {} } });
      await qa.signal(id, 'go', null);
      await waitFor(async () => ['failed', 'completed'].includes((await qa.getJob(id))?.status ?? ''), { message: 'the run ends' });
      await wa.stop();
      const job = await qb.getJob(id);
      assert.equal(job?.status, 'failed', `the replay must not go on with a placeholder: ${JSON.stringify(job?.result)}`);
      assert.match(job?.lastError ?? '', /PAYLOAD_DECODE_FAILED|cannot be decoded/);
      await qb.retryJob(id, { fromFailedStep: true });
      const wb2 = startWorker(qb, { queues: { [q]: {} } });
      const done = await qb.waitForJob(id, { timeout: 15_000 });
      await wb2.stop();
      assert.equal(done.status, 'completed', done.lastError);
      assert.match(String(done.result), /card declined/);
    });

    it('a signal payload no key opens fails the run even when the workflow catches waitForSignal errors', async () => {
      const { aKey, bKey } = keys();
      const q = uniqueName('wk-signal');
      const type = uniqueName('wf');
      const qa = new Queue(db.storage, { codec: encryptedCodec({ key: aKey }) });
      const qb = new Queue(db.storage, { codec: encryptedCodec({ key: bKey, previousKeys: [aKey] }) });
      for (const queue of [qa, qb]) {
        queue.register(type, async (_a: unknown, ctx) => {
          try {
            return await ctx.waitForSignal('go');
          } catch {
            return 'fallback';
          }
        });
      }
      const id = await qa.enqueue(type, null, { queue: q, retries: 2 });
      const wa = startWorker(qa, { queues: { [q]: {} } });
      await waitFor(async () => (await qa.getJob(id))?.status === 'waiting', { message: 'the workflow waits for its signal' });
      await qb.signal(id, 'go', { secret: 'sent with B' });
      await waitFor(async () => ['failed', 'completed'].includes((await qa.getJob(id))?.status ?? ''), { message: 'the run ends' });
      await wa.stop();
      const job = await qb.getJob(id);
      assert.equal(job?.status, 'failed', `must not complete with the fallback: ${JSON.stringify(job?.result)}`);
      assert.equal(job?.attempt, 1, 'no retry: it cannot help until the keys change');
      // The consumed signal is the workflow's checkpoint: with the keys fixed it reads.
      await qb.retryJob(id, { fromFailedStep: true });
      const wb = startWorker(qb, { queues: { [q]: {} } });
      const done = await qb.waitForJob(id, { timeout: 15_000 });
      await wb.stop();
      assert.deepEqual(done.result, { secret: 'sent with B' });
    });

    it("a fan-out child's result no key opens fails the parent even when it catches fanOut errors", async () => {
      const { aKey, bKey } = keys();
      const qp = uniqueName('wk-parent');
      const qc = uniqueName('wk-child');
      const type = uniqueName('wf');
      const qa = new Queue(db.storage, { codec: encryptedCodec({ key: aKey }) });
      const qb = new Queue(db.storage, { codec: encryptedCodec({ key: bKey, previousKeys: [aKey] }) });
      for (const queue of [qa, qb]) {
        queue.register('kid', echo);
        queue.register(type, async (_a: unknown, ctx) => {
          try {
            return (await ctx.fanOut([sub('kid', 'k1'), sub('kid', 'k2')], { queue: qc })).map((r) => r.value);
          } catch {
            return 'fallback';
          }
        });
      }
      const id = await qa.enqueue(type, null, { queue: qp });
      // The parent runs on A-only workers; its children on B workers (results written with B).
      const wa = startWorker(qa, { queues: { [qp]: {} } });
      const wb = startWorker(qb, { queues: { [qc]: {} } });
      await waitFor(async () => ['failed', 'completed'].includes((await qa.getJob(id))?.status ?? ''), { timeout: 15_000, message: 'the parent ends' });
      await wa.stop();
      await wb.stop();
      const job = await qb.getJob(id);
      assert.equal(job?.status, 'failed', `must not complete with the fallback: ${JSON.stringify(job?.result)}`);
      assert.match(job?.lastError ?? '', /result of job .* cannot be decoded/);
      await qb.retryJob(id, { fromFailedStep: true });
      const wb2 = startWorker(qb, { queues: { [qp]: {} } });
      const done = await qb.waitForJob(id, { timeout: 15_000 });
      await wb2.stop();
      assert.deepEqual(done.result, ['k1', 'k2']);
    });

    it('a schedule whose options no key opens is listed without them; queue.schedules() does not throw', async () => {
      const { aKey, bKey } = keys();
      const qa = new Queue(db.storage, { codec: encryptedCodec({ key: aKey }) });
      const qb = new Queue(db.storage, { codec: encryptedCodec({ key: bKey }) });
      const plain = new Queue(db.storage);
      const name = uniqueName('sched');
      await qa.schedule(name, every(3600_000), { type: 'report', args: { secret: 'x' }, queue: uniqueName('sq') });
      assert.deepEqual((await qa.schedules()).find((s) => s.name === name)?.options.args, { secret: 'x' });
      for (const reader of [qb, plain]) {
        const listed = await reader.schedules();
        const s = listed.find((x) => x.name === name);
        assert.ok(s, 'the schedule is listed');
        assert.equal(s.options.args, undefined, 'without its options');
        assert.equal(s.type, '(options cannot be decoded)');
        assert.equal(s.description, 'every 3600000 ms', 'the spec is plaintext');
      }
    });

    it('getJob of a job whose args no key opens keeps its plaintext meta and its decodable result', async () => {
      const { aKey, bKey } = keys();
      const q = uniqueName('wk-meta');
      const qa = new Queue(db.storage, { codec: encryptedCodec({ key: aKey }) });
      const qb = new Queue(db.storage, { codec: encryptedCodec({ key: bKey }) });
      const id = await qa.enqueue('x', { secret: 1 }, { queue: q, meta: { tenantName: 'acme' } });
      const job = await qb.getJob(id);
      assert.equal(job?.args, undefined);
      assert.deepEqual(job?.meta, { tenantName: 'acme' }, 'meta is plaintext: it still reads');
      const page = await qb.listJobs({ queue: q });
      assert.deepEqual(page.jobs[0]?.meta, { tenantName: 'acme' });
    });
  });
}
