/**
 * `queue.getSignals(id)` on every driver: a job's signals oldest first, those its waits consumed
 * (with when) and those still buffered — sent before the job ran, while it waited for another
 * name, or never waited for; payloads decoded, absent when none was sent; `limit` keeps the
 * oldest; an unknown job is `JobNotFoundError`, bad options `InvalidArgumentError`. Through a
 * payload codec, payloads are stored encoded and read decoded, and one that no key opens shows
 * why (the read does not fail).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, afterEach, before, describe, it } from 'node:test';
import { encryptedCodec } from '../../src/core/encrypted-codec.js';
import { InvalidArgumentError, JobNotFoundError } from '../../src/errors.js';
import { Queue } from '../../src/queue/queue.js';
import { uniqueName } from '../helpers/factories.js';
import { storageMatrix, type TestStorage } from '../helpers/storages.js';
import { waitFor } from '../helpers/wait-for.js';
import { startWorker, stopAllWorkers } from '../helpers/workflow-harness.js';

for (const [name, make] of storageMatrix()) {
  describe(`getSignals (${name})`, () => {
    let ts: TestStorage;
    before(async () => {
      ts = await make(`get-signals-${name}`);
    });
    afterEach(stopAllWorkers);
    after(() => ts.cleanup());

    it('lists consumed and buffered signals oldest first, with payloads and times', async () => {
      const queue = new Queue(ts.storage);
      const q = uniqueName('sig');
      const type = uniqueName('approval');
      queue.register(type, async (_: unknown, ctx) => {
        const first = await ctx.waitForSignal('first');
        const second = await ctx.waitForSignal('second');
        return { first, second };
      });
      const id = await queue.enqueue(type, {}, { queue: q });
      assert.deepEqual(await queue.getSignals(id), [], 'no signal yet');
      const t0 = await ts.storage.clockNow();
      // Buffered before the job ever runs: one it will wait for, one it never will.
      await queue.signal(id, 'first', { a: 1 });
      await queue.signal(id, 'noise');
      const w = startWorker(queue, { queues: { [q]: { concurrency: 1 } } });
      await waitFor(async () => (await queue.getJob(id))?.status === 'waiting', { message: 'waits for "second"' });
      const waiting = await queue.getSignals(id);
      assert.deepEqual(
        waiting.map((s) => [s.name, s.payload, s.consumedAt !== undefined]),
        [
          ['first', { a: 1 }, true],
          ['noise', undefined, false],
        ],
      );
      assert.equal('payload' in waiting[1]!, false, 'no payload sent: none listed');
      assert.equal('consumedAt' in waiting[1]!, false, 'buffered: no consumedAt');
      // Sent while it waits for another name: buffered, it does not wake the job.
      await queue.signal(id, 'late', 'text payload');
      await queue.signal(id, 'second', { b: [2, null] });
      const job = await queue.waitForJob(id, { timeout: 10_000 });
      await w.stop();
      assert.equal(job.status, 'completed');
      assert.deepEqual(job.result, { first: { a: 1 }, second: { b: [2, null] } });
      const t1 = await ts.storage.clockNow();

      const all = await queue.getSignals(id);
      assert.deepEqual(
        all.map((s) => [s.name, s.payload, s.consumedAt !== undefined]),
        [
          ['first', { a: 1 }, true],
          ['noise', undefined, false],
          ['late', 'text payload', false],
          ['second', { b: [2, null] }, true],
        ],
      );
      for (let i = 1; i < all.length; i++) assert.ok(all[i]!.seq > all[i - 1]!.seq, 'seq increases');
      for (const s of all) {
        assert.ok(s.sentAt instanceof Date);
        assert.ok(s.sentAt.getTime() >= t0 && s.sentAt.getTime() <= t1, `${s.name} sent within the test (database clock)`);
        if (s.consumedAt !== undefined) {
          assert.ok(s.consumedAt instanceof Date);
          assert.ok(s.consumedAt.getTime() >= s.sentAt.getTime() && s.consumedAt.getTime() <= t1, `${s.name} consumed after it was sent`);
        }
      }
      // The step of each consumed signal holds the same payload.
      const steps = await queue.getSteps(id);
      assert.deepEqual(
        steps.map((s) => [s.name, s.output]),
        [
          ['signal:first', { a: 1 }],
          ['signal:second', { b: [2, null] }],
        ],
      );

      // limit keeps the oldest.
      assert.deepEqual((await queue.getSignals(id, { limit: 2 })).map((s) => s.name), ['first', 'noise']);
      assert.deepEqual((await queue.getSignals(id, { limit: 1 })).map((s) => s.name), ['first']);
      assert.equal((await queue.getSignals(id, { limit: 1000 })).length, 4);
      assert.equal((await queue.getSignals(id, {})).length, 4);
    });

    it('refuses bad options and unknown jobs', async () => {
      const queue = new Queue(ts.storage);
      const id = await queue.enqueue(uniqueName('idle'), {}, { queue: uniqueName('idle') });
      for (const limit of [0, -1, 1001, 1.5, Number.NaN, '3', null]) {
        await assert.rejects(queue.getSignals(id, { limit: limit as number }), InvalidArgumentError, `limit ${String(limit)}`);
      }
      await assert.rejects(queue.getSignals(id, { max: 3 } as never), InvalidArgumentError);
      await assert.rejects(queue.getSignals(id, 5 as never), InvalidArgumentError);
      await assert.rejects(queue.getSignals(''), InvalidArgumentError);
      await assert.rejects(queue.getSignals(42 as never), InvalidArgumentError);
      await assert.rejects(queue.getSignals('00000000-0000-7000-8000-000000000000'), JobNotFoundError);
      await assert.rejects(queue.getSignals('no such job'), JobNotFoundError);
      // A job deleted with its signals is unknown too.
      await queue.signal(id, 'x', 1);
      await queue.cancelJob(id);
      assert.equal((await queue.getSignals(id)).length, 1);
      await queue.deleteJob(id);
      await assert.rejects(queue.getSignals(id), JobNotFoundError);
    });

    it('through a codec: stored encoded, read decoded; a payload no key opens shows why', async () => {
      const keyA = randomBytes(32);
      const qa = new Queue(ts.storage, { codec: encryptedCodec({ key: keyA }) });
      const qb = new Queue(ts.storage, { codec: encryptedCodec({ key: randomBytes(32) }) });
      const id = await qa.enqueue(uniqueName('coded'), {}, { queue: uniqueName('coded') });
      await qa.signal(id, 'secret', { card: '4111 1111' });
      await qa.signal(id, 'bare');
      const raw = await ts.storage.signalList({ jobId: id, limit: 10 });
      assert.equal(raw.length, 2);
      assert.ok(raw[0]!.payloadJson?.startsWith('sdj1:'), 'stored encoded');
      assert.ok(!(raw[0]!.payloadJson ?? '').includes('4111'), 'no plaintext in the database');
      assert.equal(raw[1]!.payloadJson, null);

      const decoded = await qa.getSignals(id);
      assert.deepEqual(
        decoded.map((s) => [s.name, s.payload]),
        [
          ['secret', { card: '4111 1111' }],
          ['bare', undefined],
        ],
      );
      // Another key: the read does not fail; the payload says why it cannot be read.
      const unread = await qb.getSignals(id);
      assert.equal(unread.length, 2);
      assert.equal(typeof unread[0]!.payload, 'string');
      assert.match(unread[0]!.payload as string, /^\[payload of signal \d+ \("secret"\) of job .* cannot be decoded: .*\]$/);
      assert.ok(!(unread[0]!.payload as string).includes('4111'));
      assert.equal('payload' in unread[1]!, false);
      // A queue without a codec shows the stored text as it is.
      const plain = new Queue(ts.storage);
      assert.match((await plain.getSignals(id))[0]!.payload as string, /^sdj1:/);
      await qa.cancelJob(id);
    });
  });
}
