/**
 * Producer API on every driver: enqueue options, batch, unique keys, validation that leaves
 * no row behind, getJob, stats.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Queue } from '../../src/queue/queue.js';
import { DuplicateJobError, InvalidArgumentError, PayloadTooLargeError, SerializationError } from '../../src/errors.js';
import { storageMatrix, type TestStorage } from '../helpers/storages.js';

for (const [name, make] of storageMatrix()) {
  describe(`enqueue (${name})`, () => {
    let ts: TestStorage;
    let queue: Queue;
    before(async () => {
      ts = await make(`enqueue-${name}`);
      queue = new Queue(ts.storage, { maxPayloadBytes: 64 * 1024 });
    });
    after(() => ts.cleanup());

    it('stores every option and round-trips args and meta', async () => {
      const runAt = new Date(Date.now() + 3_600_000);
      const id = await queue.enqueue(
        'send-email',
        { to: 'a@example.com', n: [1, 2.5, null, true], nested: { 'ü': 'ñ' } },
        { priority: 100, retries: 5, runAt, timeout: 30_000, queue: 'critical', unique: 'u-1', tenant: 't-a', meta: { region: 'us' } },
      );
      const job = await queue.getJob(id);
      assert.ok(job);
      assert.equal(job.type, 'send-email');
      assert.equal(job.queue, 'critical');
      assert.equal(job.status, 'pending');
      assert.equal(job.priority, 100);
      assert.equal(job.maxRetries, 5);
      assert.equal(job.attempt, 0);
      assert.equal(job.timeout, 30_000);
      assert.equal(job.unique, 'u-1');
      assert.equal(job.tenant, 't-a');
      assert.deepEqual(job.meta, { region: 'us' });
      assert.deepEqual(job.args, { to: 'a@example.com', n: [1, 2.5, null, true], nested: { 'ü': 'ñ' } });
      assert.equal(job.runAt.getTime(), runAt.getTime());
      assert.ok(job.createdAt instanceof Date);
    });

    it('defaults: queue default, priority 0, 3 retries, args undefined', async () => {
      const id = await queue.enqueue('noop');
      const job = await queue.getJob(id);
      assert.equal(job?.queue, 'default');
      assert.equal(job?.priority, 0);
      assert.equal(job?.maxRetries, 3);
      assert.equal(job?.args, undefined);
    });

    it('delay sets run_at from the database clock', async () => {
      const before = Date.now();
      const id = await queue.enqueue('later', {}, { delay: 60_000, queue: 'delayq' });
      const job = await queue.getJob(id);
      assert.ok(job);
      assert.ok(Math.abs(job.runAt.getTime() - (before + 60_000)) < 5_000, `runAt ${job.runAt.toISOString()}`);
    });

    it('a typed definition enqueues its own type', async () => {
      const def = queue.register('typed', async (args: { n: number }) => args.n * 2);
      const id = await def.enqueue({ n: 2 }, { queue: 'typedq' });
      assert.equal((await queue.getJob(id))?.type, 'typed');
    });

    it('20 concurrent enqueues of one unique key create exactly one job', async () => {
      const others = await Promise.all(Array.from({ length: 4 }, () => ts.another()));
      const queues = [queue, ...others.map((s) => new Queue(s))];
      const results = await Promise.allSettled(
        Array.from({ length: 20 }, (_, i) => queues[i % queues.length]!.enqueue('uniq', { i }, { unique: 'order-123', queue: 'uniqq' })),
      );
      const ok = results.filter((r) => r.status === 'fulfilled');
      const dup = results.filter((r) => r.status === 'rejected' && r.reason instanceof DuplicateJobError);
      assert.equal(ok.length, 1);
      assert.equal(dup.length, 19);
      assert.equal((await queue.stats({ queue: 'uniqq' })).pending, 1);
    });

    it('enqueueBatch is atomic, ordered and honours unique keys', async () => {
      const ids = await queue.enqueueBatch([
        { type: 'b', args: 1, options: { queue: 'batchq' } },
        { type: 'b', args: 2, options: { queue: 'batchq' } },
        { type: 'b', args: 3, options: { queue: 'batchq', unique: 'bu' } },
      ]);
      assert.equal(ids.length, 3);
      assert.deepEqual([...ids].sort(), ids, 'ids are time-ordered in batch order');
      await assert.rejects(
        queue.enqueueBatch([
          { type: 'b', args: 4, options: { queue: 'batchq' } },
          { type: 'b', args: 5, options: { queue: 'batchq', unique: 'bu' } },
        ]),
        DuplicateJobError,
      );
      assert.equal((await queue.stats({ queue: 'batchq' })).pending, 3, 'the failed batch wrote nothing');
    });

    it('rejects bad input with typed errors and writes nothing', async () => {
      const cyclic: Record<string, unknown> = {};
      cyclic['self'] = cyclic;
      // Nested deeper than the stack allows: the engine's RangeError must come out typed.
      let deep: unknown = 1;
      for (let i = 0; i < 200_000; i++) deep = [deep];
      const bad: [string, () => Promise<unknown>, new (...a: never[]) => Error][] = [
        ['empty type', () => queue.enqueue('', {}, { queue: 'badq' }), InvalidArgumentError],
        ['non-string type', () => queue.enqueue(42 as unknown as string, {}, { queue: 'badq' }), InvalidArgumentError],
        ['NaN priority', () => queue.enqueue('x', {}, { queue: 'badq', priority: NaN }), InvalidArgumentError],
        ['fractional priority', () => queue.enqueue('x', {}, { queue: 'badq', priority: 1.5 }), InvalidArgumentError],
        ['negative retries', () => queue.enqueue('x', {}, { queue: 'badq', retries: -1 }), InvalidArgumentError],
        ['negative delay', () => queue.enqueue('x', {}, { queue: 'badq', delay: -5 }), InvalidArgumentError],
        ['infinite delay', () => queue.enqueue('x', {}, { queue: 'badq', delay: Infinity }), InvalidArgumentError],
        ['invalid runAt', () => queue.enqueue('x', {}, { queue: 'badq', runAt: new Date('nope') }), InvalidArgumentError],
        ['zero timeout', () => queue.enqueue('x', {}, { queue: 'badq', timeout: 0 }), InvalidArgumentError],
        ['bad queue name', () => queue.enqueue('x', {}, { queue: 'bad queue; drop table' }), InvalidArgumentError],
        ['unknown option', () => queue.enqueue('x', {}, { queue: 'badq', prio: 1 } as never), InvalidArgumentError],
        ['cyclic args', () => queue.enqueue('x', cyclic, { queue: 'badq' }), SerializationError],
        ['BigInt args', () => queue.enqueue('x', { n: 1n }, { queue: 'badq' }), SerializationError],
        ['function args', () => queue.enqueue('x', { f: () => 1 }, { queue: 'badq' }), SerializationError],
        ['NaN in args', () => queue.enqueue('x', [NaN], { queue: 'badq' }), SerializationError],
        ['Date in args', () => queue.enqueue('x', { d: new Date() }, { queue: 'badq' }), SerializationError],
        ['args nested too deeply', () => queue.enqueue('x', deep, { queue: 'badq' }), SerializationError],
        ['payload too large', () => queue.enqueue('x', 'y'.repeat(70_000), { queue: 'badq' }), PayloadTooLargeError],
        ['cyclic meta', () => queue.enqueue('x', {}, { queue: 'badq', meta: cyclic as never }), SerializationError],
        ['batch with one bad item', () => queue.enqueueBatch([{ type: 'x', options: { queue: 'badq' } }, { type: '', options: { queue: 'badq' } }]), InvalidArgumentError],
      ];
      for (const [label, call, type] of bad) {
        const p = call();
        assert.ok(p instanceof Promise, `${label}: returns a promise`);
        await assert.rejects(p, type, label);
      }
      const counts = await queue.stats({ queue: 'badq' });
      assert.equal(Object.values(counts).reduce((a, b) => a + b, 0), 0);
    });

    it('stats counts by status for one queue and all queues', async () => {
      await queue.enqueue('s', {}, { queue: 'statq' });
      await queue.enqueue('s', {}, { queue: 'statq' });
      const q = await queue.stats({ queue: 'statq' });
      assert.deepEqual(q, { pending: 2, running: 0, waiting: 0, completed: 0, failed: 0, cancelled: 0, paused: 0 });
      const all = await queue.stats();
      assert.ok(all.pending >= 2 + q.pending - 2);
    });

    it('refuses job types reserved for workflow checkpoints', () => {
      for (const reserved of ['fan-out', 'sleep', 'signal:approval']) {
        assert.throws(() => queue.register(reserved, async () => {}), (e: unknown) => e instanceof InvalidArgumentError && /reserved/.test(e.message), reserved);
      }
      assert.doesNotThrow(() => queue.register('sleepy', async () => {}));
    });

    it('getJob of an unknown id is undefined', async () => {
      assert.equal(await queue.getJob('00000000-0000-7000-8000-000000000000'), undefined);
    });
  });
}
