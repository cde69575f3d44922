/**
 * Payload encryption against every path that writes user data, on every driver: enqueue
 * options of every kind (unique with `onDuplicate`, debounce replacing a pending job,
 * `uniqueFor`), batches, `retryAfter` and `noRetry` errors, error texts with NUL and of a
 * megabyte (cut before they are encrypted, so they still decrypt), step errors, progress,
 * signals sent before their waiter exists, schedule redefinition, retrying from the failed
 * step, bulk retries and cancels, fleet events. After each scenario no sentinel text is in any
 * text column of any table, and none of args, results, signals or progress is in the logs.
 * Also: a payload at the default 1 MiB cap enqueues and completes through the codec.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, afterEach, before, describe, it } from 'node:test';
import { encryptedCodec } from '../../src/core/encrypted-codec.js';
import { noRetry, retryAfter } from '../../src/errors.js';
import { Queue } from '../../src/queue/queue.js';
import { every } from '../../src/scheduler/schedules.js';
import { DEFAULT_MAX_PAYLOAD_BYTES } from '../../src/storage/codec.js';
import type { FleetEvent, Logger } from '../../src/types.js';
import { collect } from '../helpers/fleet-events.js';
import { uniqueName } from '../helpers/factories.js';
import { openRawDatabase, type RawDatabase } from '../helpers/raw-database.js';
import { storageMatrix } from '../helpers/storages.js';
import { waitFor } from '../helpers/wait-for.js';
import { startWorker, stopAllWorkers } from '../helpers/workflow-harness.js';

/** A logger keeping every line (message and fields) as text. */
function capturingLogger(): { logger: Logger; text: () => string } {
  const lines: string[] = [];
  const log = (level: string) => (msg: string, fields?: Record<string, unknown>) => void lines.push(`${level} ${msg} ${JSON.stringify(fields ?? {})}`);
  return { logger: { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') }, text: () => lines.join('\n') };
}

for (const [driver] of storageMatrix()) {
  describe(`payload codec: no plaintext on any write path (${driver})`, () => {
    let db: RawDatabase;
    before(async () => {
      db = await openRawDatabase(driver, `codec-leaks-${driver}`);
    });
    afterEach(stopAllWorkers);
    after(async () => {
      await db.cleanup();
    });

    /** Fails when any sentinel is stored in plaintext anywhere. */
    async function assertNoPlaintext(sentinels: readonly string[]): Promise<void> {
      const cells = await db.textCells();
      for (const s of sentinels) {
        const hits = cells.filter((c) => c.value.includes(s)).map((c) => `${c.table}.${c.column}`);
        assert.deepEqual(hits, [], `"${s}" is stored in plaintext`);
      }
    }

    it('enqueue options, batches, retryAfter / noRetry / NUL / huge errors, signals before their waiter, redefined schedules, retries and bulk actions store ciphertext only', async () => {
      const tag = randomBytes(4).toString('hex');
      const S = (kind: string): string => `SECRET-${kind}-${tag}`;
      const { logger, text: logs } = capturingLogger();
      const queue = new Queue(db.storage, { codec: encryptedCodec({ key: randomBytes(32) }), logger });
      const q = uniqueName('leaks');
      let attempts = 0;
      queue.register('echo', async (a: unknown) => ({ echoed: a, r: S('result') }));
      queue.register('retry-after', async () => {
        if (attempts++ === 0) throw retryAfter(1, new Error(S('retryAfterErr')));
        return 'ok';
      });
      queue.register('no-retry', async () => {
        throw noRetry(new Error(S('noRetryErr')));
      });
      queue.register('nul-huge', async () => {
        throw new Error(`${S('hugeErr')}\u0000 and \uD800 then ${'x'.repeat(1024 * 1024)}`);
      });
      queue.register('step-huge', async () => {
        throw noRetry(new Error(`${S('stepHugeErr')} ${'y'.repeat(100_000)}`));
      });
      let firstRun = true;
      queue.register('flaky-step', async () => {
        if (firstRun) {
          firstRun = false;
          throw noRetry(new Error(S('flakyStepErr')));
        }
        return S('flakyStepOut');
      });
      queue.register('flow', async (_a: unknown, ctx) => {
        await ctx.progress(0.1, S('progress'));
        let stepErr = '';
        try {
          await ctx.call('step-huge');
        } catch (e) {
          stepErr = (e as Error).message;
        }
        const early = await ctx.waitForSignal<string>('early');
        const out = await ctx.call<string>('flaky-step');
        return { early, out, stepErrLength: stepErr.length, stepErrStart: stepErr.slice(0, 40) };
      });
      queue.register('hold', async () => 'held');

      const stream = queue.events({ fleet: true });
      // Enqueue paths, before any worker runs.
      const u1 = await queue.enqueue('echo', S('uniqueArgs'), { queue: q, unique: `u-${tag}` });
      const u2 = await queue.enqueue('echo', S('uniqueDupArgs'), { queue: q, unique: `u-${tag}`, onDuplicate: 'existing' });
      assert.equal(u2, u1, 'the duplicate resolves with the existing job');
      const d1 = await queue.enqueue('echo', S('debounceFirst'), { queue: q, debounce: { key: `d-${tag}`, delay: 1 } });
      const d2 = await queue.enqueue('echo', S('debounceSecond'), { queue: q, debounce: { key: `d-${tag}`, delay: 1 } });
      const [b1, b2] = await queue.enqueueBatch([
        { type: 'echo', args: S('batch1'), options: { queue: q } },
        { type: 'echo', args: { nested: [S('batch2')] }, options: { queue: q, uniqueFor: 60_000, unique: `uf-${tag}` } },
      ]);
      const ra = await queue.enqueue('retry-after', null, { queue: q, retries: 2 });
      const nr = await queue.enqueue('no-retry', null, { queue: q, retries: 5 });
      const huge = await queue.enqueue('nul-huge', null, { queue: q, retries: 0 });
      const flow = await queue.enqueue('flow', { a: S('flowArgs') }, { queue: q });
      // The signal is sent before the workflow waits for it.
      await queue.signal(flow, 'early', S('earlySignal'));
      const sched = uniqueName('sched');
      await queue.schedule(sched, every(24 * 3600_000), { type: 'echo', args: S('schedV1'), queue: q });
      await queue.schedule(sched, every(12 * 3600_000), { type: 'echo', args: S('schedV2'), queue: q });
      const held = await queue.enqueue('hold', { h: S('cancelledArgs') }, { queue: uniqueName('idle') });

      const w = startWorker(queue, { queues: { [q]: { concurrency: 4 } }, backoff: () => 0 });
      try {
        for (const id of [u1, d2, b1!, b2!]) assert.equal((await queue.waitForJob(id, { timeout: 15_000 })).status, 'completed');
        assert.deepEqual((await queue.getJob(d2))?.args, S('debounceSecond'), 'the debounce replaced the args');
        assert.equal(d1, d2, 'the debounce kept one job');
        assert.equal((await queue.waitForJob(ra, { timeout: 15_000 })).lastError, S('retryAfterErr'));
        const nrJob = await queue.waitForJob(nr, { timeout: 15_000 });
        assert.equal(nrJob.status, 'failed');
        assert.equal(nrJob.attempt, 1);
        const hugeJob = await queue.waitForJob(huge, { timeout: 15_000 });
        assert.ok(hugeJob.lastError?.startsWith(`${S('hugeErr')}\uFFFD and \uFFFD then xxx`), 'cleaned before encryption, and it decrypts');
        assert.match(hugeJob.lastError ?? '', /\[truncated: \d+ characters in all\]$/);
        assert.ok((hugeJob.lastError?.length ?? 0) <= 8192);
        // The workflow: its flaky step failed (noRetry), so it failed; retried from that step it completes.
        const failedFlow = await queue.waitForJob(flow, { timeout: 15_000 });
        assert.equal(failedFlow.status, 'failed', failedFlow.lastError);
        assert.equal(failedFlow.lastError, S('flakyStepErr'));
        await queue.retryJob(flow, { fromFailedStep: true });
        const doneFlow = await queue.waitForJob(flow, { timeout: 15_000 });
        assert.equal(doneFlow.status, 'completed', doneFlow.lastError);
        const r = doneFlow.result as { early: string; out: string; stepErrLength: number; stepErrStart: string };
        assert.equal(r.early, S('earlySignal'));
        assert.equal(r.out, S('flakyStepOut'));
        assert.ok(r.stepErrStart.startsWith(S('stepHugeErr')) && r.stepErrLength <= 8192, 'the step error was cut before encryption and decrypts');
        // Bulk actions.
        const retried = await queue.retryJobs({ status: 'failed', queue: q, type: 'no-retry' });
        assert.equal(retried.count, 1);
        await waitFor(async () => (await queue.getJob(nr))?.status === 'failed' && (await queue.getJob(nr))?.attempt === 1, { message: 'the retried job failed again' });
        assert.equal((await queue.cancelJobs({ type: 'hold' })).count, 1);
        assert.equal((await queue.getJob(held))?.status, 'cancelled');
        const [s] = (await queue.schedules()).filter((x) => x.name === sched);
        assert.equal(s?.options.args, S('schedV2'), 'the redefinition replaced the options');
        await collect(stream, (seen: FleetEvent[]) => seen.some((e) => e.type === 'job.completed' && e.job.id === flow));
      } finally {
        await stream.return!();
        await w.stop();
      }
      const all = ['uniqueArgs', 'uniqueDupArgs', 'debounceFirst', 'debounceSecond', 'batch1', 'batch2', 'result', 'retryAfterErr', 'noRetryErr', 'hugeErr', 'stepHugeErr', 'flakyStepErr', 'flakyStepOut', 'progress', 'flowArgs', 'earlySignal', 'schedV1', 'schedV2', 'cancelledArgs'];
      await assertNoPlaintext(all.map(S));
      const logged = logs();
      for (const kind of ['uniqueArgs', 'debounceSecond', 'batch1', 'result', 'flowArgs', 'earlySignal', 'progress', 'schedV2', 'flakyStepOut']) {
        assert.ok(!logged.includes(S(kind)), `the ${kind} payload is not logged`);
      }
    });

    it('a payload at the default 1 MiB cap enqueues and completes; one byte over is refused before anything is written', async () => {
      const q = uniqueName('cap');
      const queue = new Queue(db.storage, { codec: encryptedCodec({ key: randomBytes(32) }) });
      queue.register('echo', async (x: unknown) => x);
      const atCap = 'é'.repeat((DEFAULT_MAX_PAYLOAD_BYTES - 2) / 2);
      assert.equal(Buffer.byteLength(JSON.stringify(atCap)), DEFAULT_MAX_PAYLOAD_BYTES);
      const id = await queue.enqueue('echo', atCap, { queue: q });
      await assert.rejects(queue.enqueue('echo', `${atCap}x`, { queue: q }), { code: 'PAYLOAD_TOO_LARGE' });
      const w = startWorker(queue, { queues: { [q]: {} } });
      const job = await queue.waitForJob(id, { timeout: 30_000 });
      await w.stop();
      assert.equal(job.status, 'completed', job.lastError);
      assert.equal(job.result, atCap);
      assert.equal(await db.storage.jobCount({ queue: q }), 1);
    });

    it('a payload under the cap whose ciphertext is beyond what MySQL takes in one statement is refused with PayloadTooLargeError, or stored intact', async () => {
      const q = uniqueName('beyond');
      const queue = new Queue(db.storage, { codec: encryptedCodec({ key: randomBytes(32) }), maxPayloadBytes: 16 * 1024 * 1024 });
      // 13 MiB of JSON: under MariaDB's default 16 MiB max_allowed_packet as plaintext, over it as ciphertext.
      const big = 'z'.repeat(13 * 1024 * 1024 - 2);
      let id: string | undefined;
      try {
        id = await queue.enqueue('big', big, { queue: q });
      } catch (e) {
        assert.equal((e as { code?: string }).code, 'PAYLOAD_TOO_LARGE', `refused with ${String(e)}`);
      }
      if (id !== undefined) assert.equal((await queue.getJob<string>(id))?.args, big, 'stored intact');
      // The storage stays usable.
      const small = await queue.enqueue('small', { ok: true }, { queue: q });
      assert.deepEqual((await queue.getJob(small))?.args, { ok: true });
    });
  });
}
