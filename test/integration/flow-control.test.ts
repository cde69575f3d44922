/**
 * Flow control through the public API, on every driver (docs/flow-control.md): the validation
 * of `register` options and `setQueueLimits`; type limits stored by workers at start (and
 * removed by a worker registering the type without limits); concurrency limits that hold across
 * two workers whatever their own concurrency (by the handlers' own records), per key, and per
 * queue; rate limits whose starts are spaced `period / limit` apart; `queues()` and `limits()`
 * reports; dedup windows (`uniqueFor`, each terminal status, inside and after the window);
 * `onDuplicate: 'existing'`; debounce (replace, push the run time, a running holder, two at
 * once); a held job costs no attempt and fires no hook; key functions that throw insert
 * nothing; and no spinning: a worker facing a full limit makes a bounded number of limited
 * claims, yet takes a slot it freed within milliseconds.
 */
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Queue } from '../../src/queue/queue.js';
import { DuplicateJobError, InvalidArgumentError } from '../../src/errors.js';
import type { JobEvent } from '../../src/types.js';
import { cancelledJob, completedJob, failedJob, uniqueName, waitForClockPast } from '../helpers/factories.js';
import { batch, gated, gatedType, limitOf, limitStored, limitedWorker, serve, waitForStatus, work } from '../helpers/flow-gates.js';
import { storageMatrix, type TestStorage } from '../helpers/storages.js';
import { waitFor } from '../helpers/wait-for.js';
import { Gate, StorageWatch, stopAllWorkers } from '../helpers/workflow-harness.js';

for (const [name, make] of storageMatrix()) {
  describe(`flow control (${name})`, () => {
    let ts: TestStorage;
    before(async () => {
      ts = await make(`flow-${name}`);
    });
    afterEach(stopAllWorkers);
    after(() => ts.cleanup());

    it('register refuses invalid limits and registers nothing then; a worker stores nothing for them', async () => {
      const queue = new Queue(ts.storage);
      const type = uniqueName('bad');
      const h = async () => {};
      const bad: [unknown, RegExp][] = [
        [{ concurrency: { limit: 0 } }, /concurrency of ".*"\.limit must be between 1 and 1000000/],
        [{ concurrency: { limit: 1.5 } }, /must be an integer/],
        [{ concurrency: { limit: 1_000_001 } }, /between 1 and 1000000/],
        [{ concurrency: {} }, /needs a limit/],
        [{ concurrency: { limit: 1, key: 'k' } }, /key must be a function/],
        [{ concurrency: { limit: 1, keys: () => 'k' } }, /unknown option "keys"/],
        [{ rateLimit: { limit: 1 } }, /needs a limit and a period/],
        [{ rateLimit: { limit: 1, period: 0 } }, /period must be between 1/],
        [{ rateLimit: { limit: 1, period: 100 * 365 * 24 * 3600 * 1000 + 1 } }, /period must be between 1/],
        [{ rateLimit: { limit: 1, period: 10.5 } }, /must be an integer/],
        [{ rateLimit: { limit: 11, period: 10 } }, /faster than one start per millisecond/],
        [{ rateLimit: { limit: 1, period: 10, key: 3 } }, /key must be a function/],
        [{ concurency: { limit: 1 } }, /unknown option "concurency"/],
        ['fast', /must be an object/],
      ];
      for (const [options, message] of bad) {
        assert.throws(() => queue.register(type, h, options as never), (e: unknown) => e instanceof InvalidArgumentError && message.test(e.message), JSON.stringify(options));
      }
      // The largest rate allowed: one start per millisecond.
      queue.register(uniqueName('ok'), h, { rateLimit: { limit: 10, period: 10 } });
      queue.register(uniqueName('ok'), h, {});
      // Nothing was registered under `type`: no limit is stored for it.
      const ok = uniqueName('ok');
      queue.register(ok, h, { concurrency: { limit: 4 } });
      const w = serve(queue, uniqueName('q'));
      await limitStored(queue, ok);
      assert.equal(limitOf(await queue.limits(), 'type', type), undefined);
      await w.stop();
    });

    it('workers store their types\' limits at start; a later worker registering a type without limits removes them', async () => {
      const type = uniqueName('stored');
      const plainLimited = uniqueName('plain');
      const q = uniqueName('q');
      const a = new Queue(ts.storage);
      a.register(type, async () => {}, { concurrency: { limit: 3, key: () => 'k' }, rateLimit: { limit: 5, period: 1000 } });
      a.register(plainLimited, async () => {}, { concurrency: { limit: 1 } });
      assert.equal(limitOf(await a.limits(), 'type', type), undefined, 'register alone stores nothing');
      const w1 = serve(a, q);
      const row = await limitStored(a, type);
      assert.deepEqual(
        { concurrency: row.concurrency, rateLimit: row.rateLimit, running: row.running, pending: row.pending },
        { concurrency: 3, rateLimit: { limit: 5, period: 1000 }, running: 0, pending: 0 },
      );
      await w1.stop();
      // The next deploy: `type` with a new limit, `plainLimited` without any.
      const b = new Queue(await ts.another());
      b.register(type, async () => {}, { concurrency: { limit: 7 } });
      b.register(plainLimited, async () => {});
      const w2 = serve(b, q);
      // The worker stores its types one after another: wait for the last of them too (the
      // removal of `plainLimited`'s row), or fail when it never comes.
      await waitFor(async () => {
        const l = await b.limits();
        return limitOf(l, 'type', type)?.concurrency === 7 && limitOf(l, 'type', plainLimited) === undefined;
      });
      const after2 = await b.limits();
      assert.equal(limitOf(after2, 'type', type)?.rateLimit, undefined, 'the rate limit the new registration lacks is gone');
      assert.equal(limitOf(after2, 'type', plainLimited), undefined, 'a type registered without limits loses its stored row');
      await w2.stop();
    });

    it('setQueueLimits sets, replaces and removes; invalid limits are refused and change nothing', async () => {
      const queue = new Queue(ts.storage);
      const q = uniqueName('lim');
      await queue.setQueueLimits(q, { concurrency: 3, rateLimit: { limit: 10, period: 1000 } });
      let row = limitOf(await queue.limits(), 'queue', q);
      assert.deepEqual({ c: row?.concurrency, r: row?.rateLimit }, { c: 3, r: { limit: 10, period: 1000 } });
      const bad: [unknown, RegExp][] = [
        [{}, /need a concurrency or a rateLimit/],
        [{ concurrency: 0 }, /concurrency must be between 1 and 1000000/],
        [{ concurrency: 2, rateLimit: { limit: 5, period: 4 } }, /faster than one start per millisecond/],
        [{ rateLimit: { limit: 5 } }, /needs a limit and a period/],
        [{ concurrency: 2, burst: 3 }, /unknown option "burst"/],
        ['fast', /must be an object/],
        [undefined, /need a concurrency or a rateLimit/],
      ];
      for (const [limits, message] of bad) {
        await assert.rejects(queue.setQueueLimits(q, limits as never), (e: unknown) => e instanceof InvalidArgumentError && message.test(e.message), JSON.stringify(limits));
      }
      await assert.rejects(queue.setQueueLimits('bad name', { concurrency: 1 }), InvalidArgumentError);
      row = limitOf(await queue.limits(), 'queue', q);
      assert.deepEqual({ c: row?.concurrency, r: row?.rateLimit }, { c: 3, r: { limit: 10, period: 1000 } }, 'unchanged by the refused calls');
      await queue.setQueueLimits(q, { concurrency: 5 });
      row = limitOf(await queue.limits(), 'queue', q);
      assert.deepEqual({ c: row?.concurrency, r: row?.rateLimit }, { c: 5, r: undefined }, 'replaced as a whole');
      await queue.setQueueLimits(q, { rateLimit: { limit: 1, period: 60_000 } });
      row = limitOf(await queue.limits(), 'queue', q);
      assert.deepEqual({ c: row?.concurrency, r: row?.rateLimit }, { c: undefined, r: { limit: 1, period: 60_000 } });
      await queue.setQueueLimits(q, null);
      assert.equal(limitOf(await queue.limits(), 'queue', q), undefined);
      await queue.setQueueLimits(q, null); // removing nothing is fine
    });

    it('a concurrency limit of 2 holds across two workers of concurrency 10 each', async () => {
      const type = uniqueName('conc');
      const q = uniqueName('q');
      const { log, handler } = gated({ during: () => work(15) });
      const a = new Queue(ts.storage);
      const b = new Queue(await ts.another());
      for (const queue of [a, b]) queue.register(type, handler, { concurrency: { limit: 2 } });
      let done = 0;
      for (const queue of [a, b]) queue.onJobComplete(() => void done++);
      const w1 = serve(a, q, 10);
      const w2 = serve(b, q, 10);
      await limitStored(a, type);
      await a.enqueueBatch(batch(24, type, { queue: q }, (i) => ({ i })));
      await waitFor(() => done === 24, { timeout: 20_000, message: `${done} of 24 done` });
      assert.equal(log.max.get('all'), 2, 'never more than 2 at once, and 2 were used');
      await w1.stop();
      await w2.stop();
    });

    it('a keyed limit holds per key (registered key function or explicit concurrencyKey), keys run side by side', async () => {
      const type = uniqueName('keyed');
      const q = uniqueName('q');
      const queue = new Queue(ts.storage);
      let done = 0;
      const { log } = gatedType(queue, type, { concurrency: { limit: 1, key: (a) => a.k } }, { key: (a: { k: string; key?: string }) => a.key ?? a.k, during: () => work(20) });
      queue.onJobComplete(() => void done++);
      const w = await limitedWorker(queue, type, q, 10);
      const items = ['a', 'b', 'c'].flatMap((k) => batch(4, type, { queue: q }, () => ({ k })));
      // The explicit key wins over the key function: these run in group x, one at a time.
      items.push(...batch(3, type, { queue: q, concurrencyKey: 'x' }, (i) => ({ k: `other-${i}`, key: 'x' })));
      await queue.enqueueBatch(items);
      await waitFor(() => done === 15, { timeout: 20_000, message: `${done} of 15 done` });
      for (const k of ['a', 'b', 'c', 'x']) assert.equal(log.max.get(k), 1, `key ${k} ran one at a time`);
      assert.ok(log.maxTotal >= 2, `different keys ran at once (at most ${log.maxTotal} did)`);
      await w.stop();
    });

    it('a queue limit counts every job of the queue; set while a worker runs, it applies at once; removed, jobs flow again', async () => {
      const type = uniqueName('plain');
      const q = uniqueName('metered');
      const queue = new Queue(ts.storage);
      let done = 0;
      const { log, open } = gatedType(queue, type, undefined, { key: 'q', during: (a: { hold?: boolean }, gate) => (a.hold ? gate.promise : work(10)) });
      queue.onJobComplete(() => void done++);
      const w = serve(queue, q, 10);
      await queue.setQueueLimits(q, { concurrency: 2 });
      await queue.enqueueBatch(batch(10, type, { queue: q }, (i) => ({ i })));
      await waitFor(() => done === 10, { timeout: 20_000, message: `${done} of 10 done` });
      assert.equal(log.max.get('q'), 2);
      const info = (await queue.queues()).find((x) => x.name === q);
      assert.deepEqual(info?.limits, { concurrency: { limit: 2, running: 0 } });
      // Removed: the queue's jobs go to the ordinary claim again, at once.
      await queue.setQueueLimits(q, null);
      await queue.enqueueBatch(batch(4, type, { queue: q }, () => ({ hold: true })));
      await waitFor(() => log.total === 4, { timeout: 5_000, message: `${log.total} of 4 running without the limit` });
      assert.equal((await queue.queues()).find((x) => x.name === q)?.limits, undefined);
      open();
      await waitFor(() => done === 14);
      await w.stop();
    });

    it('a rate limit holds limit + 1 starts per window of one period at most (database clock), and keeps the pace', async () => {
      const type = uniqueName('rated');
      const q = uniqueName('q');
      const queue = new Queue(ts.storage);
      let done = 0;
      gatedType(queue, type, { rateLimit: { limit: 2, period: 200 } }, { key: 'r', during: () => undefined });
      queue.onJobComplete(() => void done++);
      const w = await limitedWorker(queue, type, q, 10);
      const ids = await queue.enqueueBatch(batch(8, type, { queue: q }, (i) => ({ i })));
      await waitFor(() => done === 8, { timeout: 10_000, message: `${done} of 8 done` });
      const startedAt = (await Promise.all(ids.map((id) => queue.getJob(id)))).map((j) => j?.startedAt?.getTime() ?? NaN).sort((x, y) => x - y);
      // T = 100 ms, and up to c = 100 ms of lateness is caught up: at most 3 starts in any 200 ms.
      for (let i = 3; i < startedAt.length; i++) {
        assert.ok(startedAt[i]! - startedAt[i - 3]! >= 200, `starts ${i - 3}..${i} within ${startedAt[i]! - startedAt[i - 3]!} ms (database clock)`);
      }
      // Not held back much longer than the rate asks: 8 starts need 600 ms after an idle group's first two.
      const span = startedAt.at(-1)! - startedAt[0]!;
      assert.ok(span >= 600 && span < 600 + 400, `8 starts spread over ${span} ms`);
      await w.stop();
    });

    it('one claim cycle shares the free slots in claim order: a backlog of ordinary jobs does not starve limited jobs of a higher or equal priority', async () => {
      const plain = uniqueName('plain');
      const limited = uniqueName('limited');
      const q = uniqueName('q');
      const order: string[] = [];
      const watch = new StorageWatch(ts.storage);
      const queue = new Queue(watch.storage);
      const attempts: number[] = [];
      queue.register(plain, async () => {
        order.push('plain');
        await work(5);
      });
      queue.register(
        limited,
        async (a: { i: number }) => {
          order.push(`limited-${a.i}`);
          await work(5);
        },
        { concurrency: { limit: 50 } },
      );
      queue.onJobComplete((j) => void attempts.push(j.attempt));
      // A worker stores the limit, so the limited jobs are marked limited when they are inserted.
      const w = await limitedWorker(queue, limited, q, 4);
      await w.stop();
      // Limited jobs of the default priority, then a backlog of 60 ordinary ones (later: after
      // them in claim order), then limited jobs of a higher priority.
      await queue.enqueueBatch(batch(4, limited, { queue: q }, (i) => ({ i: 10 + i })));
      await waitForClockPast(ts.storage, await ts.storage.clockNow());
      await queue.enqueueBatch(batch(60, plain, { queue: q }, () => ({})));
      await queue.enqueueBatch(batch(4, limited, { queue: q, priority: 5 }, (i) => ({ i })));
      const again = serve(queue, q, 4);
      await waitFor(() => attempts.length === 68, { timeout: 20_000, message: `${attempts.length} of 68 done` });
      await again.stop();
      assert.deepEqual(order.slice(0, 4).sort(), ['limited-0', 'limited-1', 'limited-2', 'limited-3'], `the higher priority starts first: ${order.slice(0, 10).join(', ')}`);
      assert.deepEqual(order.slice(4, 8).sort(), ['limited-10', 'limited-11', 'limited-12', 'limited-13'], `then the same priority, enqueued before the backlog: ${order.slice(0, 10).join(', ')}`);
      assert.equal(order.length, 68, 'every job ran once');
      assert.ok(watch.calls('jobRelease') >= 1, 'the ordinary jobs claimed beside them were given back');
      assert.deepEqual(new Set(attempts), new Set([1]), 'a job given back spent no attempt');
    });

    it('queues() and limits() report limits with their usage', async () => {
      const type = uniqueName('report');
      const q = uniqueName('q');
      const queue = new Queue(ts.storage);
      const { open } = gatedType<{ k: string }>(queue, type, { concurrency: { limit: 1, key: (a) => a.k } });
      await queue.setQueueLimits(q, { concurrency: 5, rateLimit: { limit: 1, period: 60_000 } });
      const w = await limitedWorker(queue, type, q, 10);
      await queue.enqueueBatch(['a', 'a', 'b'].map((k) => ({ type, args: { k }, options: { queue: q } })));
      // The queue's rate allows one start a minute: one job runs, two wait.
      const usage = await waitFor(async () => {
        const l = await queue.limits();
        const t = limitOf(l, 'type', type);
        return t && t.running === 1 ? { t, q: limitOf(l, 'queue', q) } : undefined;
      });
      assert.deepEqual({ ...usage.t, nextStartInMs: 0 }, { scope: 'type', name: type, concurrency: 1, running: 1, keysRunning: 1, keysFull: 1, pending: 2, nextStartInMs: 0 });
      assert.equal(usage.q?.running, 1);
      assert.equal(usage.q?.pending, 2);
      assert.ok(usage.q !== undefined && usage.q.nextStartInMs > 50_000 && usage.q.nextStartInMs <= 60_000, `next start in ${usage.q?.nextStartInMs} ms`);
      const info = (await queue.queues()).find((x) => x.name === q);
      assert.equal(info?.limits?.concurrency?.limit, 5);
      assert.equal(info?.limits?.concurrency?.running, 1);
      assert.equal(info?.limits?.rateLimit?.limit, 1);
      assert.ok((info?.limits?.rateLimit?.nextStartInMs ?? 0) > 50_000);
      open();
      await queue.setQueueLimits(q, null);
      await waitFor(async () => (await queue.stats({ queue: q })).completed === 3);
      await w.stop();
    });

    it('uniqueFor dedups against a job that finished within the window, whatever its status; not after it', async () => {
      const queue = new Queue(ts.storage);
      const s = ts.storage;
      for (const [status, finish] of [
        ['completed', completedJob],
        ['failed', failedJob],
        ['cancelled', cancelledJob],
      ] as const) {
        const key = uniqueName(`u-${status}`);
        const holder = await finish(s, { uniqueKey: key, type: 't-unique' });
        assert.equal(holder.status, status);
        await assert.rejects(queue.enqueue('t-unique', {}, { unique: key, uniqueFor: 60_000, queue: uniqueName('q') }), DuplicateJobError, `${status} within the window`);
        assert.equal(await queue.enqueue('t-unique', {}, { unique: key, uniqueFor: 60_000, onDuplicate: 'existing' }), holder.id);
        // Without a window, a finished job does not hold its key.
        const fresh = await queue.enqueue('t-unique', {}, { unique: key, queue: uniqueName('q') });
        assert.notEqual(fresh, holder.id);
      }
      // After the window: a short one, once the database clock is past it.
      const key = uniqueName('u-short');
      const holder = await completedJob(s, { uniqueKey: key, type: 't-unique' });
      await waitForClockPast(s, (holder.completedAt ?? 0) + 30);
      const id = await queue.enqueue('t-unique', {}, { unique: key, uniqueFor: 30, queue: uniqueName('q') });
      assert.notEqual(id, holder.id);
    });

    it("onDuplicate: 'existing' resolves with the live holder's id, in enqueue and in batches; mixed modes and bad options are refused", async () => {
      const queue = new Queue(ts.storage);
      const q = uniqueName('q');
      const key = uniqueName('live');
      const first = await queue.enqueue('t-dup', { n: 1 }, { unique: key, queue: q });
      assert.equal(await queue.enqueue('t-dup', { n: 2 }, { unique: key, queue: q, onDuplicate: 'existing' }), first);
      await assert.rejects(queue.enqueue('t-dup', { n: 2 }, { unique: key, queue: q, onDuplicate: 'error' }), DuplicateJobError);
      const k2 = uniqueName('batch');
      const ids = await queue.enqueueBatch([
        { type: 't-dup', args: {}, options: { unique: key, queue: q, onDuplicate: 'existing' } },
        { type: 't-dup', args: {}, options: { unique: k2, queue: q, onDuplicate: 'existing' } },
        { type: 't-dup', args: {}, options: { unique: k2, queue: q, onDuplicate: 'existing' } },
        { type: 't-dup', args: {}, options: { queue: q } },
      ]);
      assert.equal(ids[0], first);
      assert.equal(ids[1], ids[2], 'two items of one batch with one key: the second resolves to the first');
      assert.notEqual(ids[3], ids[2]);
      assert.equal((await queue.stats({ queue: q })).pending, 3);
      await assert.rejects(
        queue.enqueueBatch([
          { type: 't-dup', options: { unique: uniqueName('m'), onDuplicate: 'existing' } },
          { type: 't-dup', options: { unique: uniqueName('m') } },
        ]),
        /onDuplicate must be the same for every item/,
      );
      for (const [options, message] of [
        [{ onDuplicate: 'existing' }, /onDuplicate needs unique/],
        [{ unique: 'k', onDuplicate: 'skip' }, /onDuplicate must be 'error' or 'existing'/],
        [{ uniqueFor: 1000 }, /uniqueFor needs unique/],
        [{ unique: 'k', uniqueFor: -1 }, /uniqueFor must be >= 0/],
        [{ unique: 'k', uniqueFor: Infinity }, /uniqueFor must be a finite number/],
      ] as const) {
        await assert.rejects(queue.enqueue('t-dup', {}, options as never), (e: unknown) => e instanceof InvalidArgumentError && message.test(e.message), JSON.stringify(options));
      }
      assert.equal((await queue.stats({ queue: q })).pending, 3, 'nothing inserted by the refused calls');
    });

    it('debounce replaces a pending job (args, run time) and keeps its id; a running holder gets a new pending job; two at once leave one', async () => {
      const queue = new Queue(ts.storage);
      const type = uniqueName('deb');
      const q = uniqueName('q');
      const key = uniqueName('k');
      const id1 = await queue.enqueue(type, { v: 1 }, { queue: q, debounce: { key, delay: 60_000 } });
      const j1 = await queue.getJob(id1);
      await waitForClockPast(ts.storage, j1!.createdAt.getTime() + 5);
      const id2 = await queue.enqueue(type, { v: 2 }, { queue: q, priority: 4, debounce: { key, delay: 60_000 } });
      assert.equal(id2, id1, 'the pending job is replaced, not added to');
      const j2 = await queue.getJob(id1);
      assert.deepEqual(j2?.args, { v: 2 });
      assert.equal(j2?.priority, 4);
      assert.ok(j2!.runAt.getTime() > j1!.runAt.getTime(), 'its run time moved to delay after the last enqueue');
      assert.equal(j2?.createdAt.getTime(), j1?.createdAt.getTime());
      assert.equal((await queue.stats({ queue: q })).pending, 1);
      // Another type's key of the same name is another job.
      assert.notEqual(await queue.enqueue(uniqueName('deb-other'), {}, { queue: q, debounce: { key, delay: 60_000 } }), id1);

      // A running holder: a new pending job, so the latest args run.
      const rq = uniqueName('q');
      const rkey = uniqueName('k');
      const { open } = gatedType(queue, type);
      const w = serve(queue, rq);
      const running = await queue.enqueue(type, { v: 1 }, { queue: rq, debounce: { key: rkey, delay: 0 } });
      await waitForStatus(queue, running, 'running');
      const next = await queue.enqueue(type, { v: 2 }, { queue: rq, debounce: { key: rkey, delay: 60_000 } });
      assert.notEqual(next, running);
      assert.equal((await queue.getJob(next))?.status, 'pending');
      open();
      await w.stop();

      // Two debounces at once (two storage instances): one pending job, both resolve to it.
      const ck = uniqueName('k');
      const cq = uniqueName('q');
      const other = new Queue(await ts.another());
      const [a, b] = await Promise.all([
        queue.enqueue(type, { v: 'a' }, { queue: cq, debounce: { key: ck, delay: 60_000 } }),
        other.enqueue(type, { v: 'b' }, { queue: cq, debounce: { key: ck, delay: 60_000 } }),
      ]);
      assert.equal(a, b);
      assert.equal((await queue.stats({ queue: cq })).pending, 1);

      for (const [options, message] of [
        [{ debounce: { key: 'k', delay: 10 }, unique: 'u' }, /debounce cannot be combined with unique/],
        [{ debounce: { key: 'k', delay: 10 }, delay: 5 }, /cannot be combined with delay or runAt/],
        [{ debounce: { key: 'k', delay: 10 }, runAt: new Date() }, /cannot be combined with delay or runAt/],
        [{ debounce: { key: '', delay: 10 } }, /debounce.key must be 1 to 255 characters/],
        [{ debounce: { key: 'a\u0000b', delay: 10 } }, /debounce.key must not contain NUL/],
        [{ debounce: { key: 'k', delay: -1 } }, /debounce.delay must be >= 0/],
        [{ debounce: { key: 'k' } }, /debounce needs a key and a delay/],
        [{ debounce: { key: 'k', delay: 1, wait: 2 } }, /unknown option "wait"/],
      ] as const) {
        await assert.rejects(queue.enqueue(type, {}, options as never), (e: unknown) => e instanceof InvalidArgumentError && message.test(e.message), JSON.stringify(options));
      }
    });

    it('keys: explicit keys are checked like unique keys; a key function that throws or returns a non-string inserts nothing of the batch', async () => {
      const queue = new Queue(ts.storage);
      const type = uniqueName('keyfn');
      const q = uniqueName('q');
      queue.register(type, async () => {}, {
        concurrency: {
          limit: 1,
          key: (a: { k?: unknown; boom?: boolean }) => {
            if (a.boom) throw new Error('no account');
            return a.k as string;
          },
        },
      });
      await assert.rejects(
        queue.enqueueBatch([
          { type, args: { k: 'fine' }, options: { queue: q } },
          { type, args: { boom: true }, options: { queue: q } },
        ]),
        (e: unknown) => e instanceof InvalidArgumentError && e.message.includes(`concurrency key function of "${type}" threw: no account`),
      );
      await assert.rejects(queue.enqueue(type, { k: 42 }, { queue: q }), (e: unknown) => e instanceof InvalidArgumentError && e.message.includes(`"${type}" must return a string, got 42`));
      await assert.rejects(queue.enqueue(type, { k: 'x'.repeat(256) }, { queue: q }), /must be 1 to 255 characters/);
      await assert.rejects(queue.enqueue(type, { k: '\uD800' }, { queue: q }), /well-formed Unicode/);
      await assert.rejects(queue.enqueue(type, { k: 'ok' }, { queue: q, concurrencyKey: 'a\u0000' }), /concurrencyKey must not contain NUL/);
      await assert.rejects(queue.enqueue(type, { k: 'ok' }, { queue: q, rateLimitKey: '' }), /rateLimitKey must be 1 to 255 characters/);
      assert.equal((await queue.stats({ queue: q })).pending, 0, 'nothing inserted');
      // An explicit key skips the key function; '' from the key function is the shared group.
      await queue.enqueue(type, { boom: true }, { queue: q, concurrencyKey: 'given' });
      await queue.enqueue(type, { k: '' }, { queue: q });
      assert.equal((await queue.stats({ queue: q })).pending, 2);
    });

    it('a job held back by a limit costs no attempt and fires no hook or event', async () => {
      const type = uniqueName('held');
      const q = uniqueName('q');
      const watch = new StorageWatch(ts.storage);
      const queue = new Queue(watch.storage);
      const started: string[] = [];
      const { open } = gatedType(queue, type, { concurrency: { limit: 1 } }, { during: (a: { first: boolean }, gate) => (a.first ? gate.promise : undefined) });
      queue.onJobStart((j) => void started.push(j.id));
      const events: JobEvent[] = [];
      const stream = queue.events();
      const reading = (async () => {
        for await (const e of stream) events.push(e);
      })();
      const w = await limitedWorker(queue, type, q, 5);
      const first = await queue.enqueue(type, { first: true }, { queue: q });
      await waitForStatus(queue, first, 'running');
      const held = await queue.enqueue(type, { first: false }, { queue: q });
      // Limited claims that found the limit full (the enqueue's wake-up, then the back-off).
      await watch.next('jobClaimLimited', 3);
      const job = await queue.getJob(held);
      assert.equal(job?.status, 'pending');
      assert.equal(job?.attempt, 0, 'no attempt used');
      assert.equal((await queue.getJob(first))?.attempt, 1);
      assert.deepEqual(started, [first], 'no start hook for the held job');
      assert.deepEqual(
        events.filter((e) => ('job' in e ? e.job.id : 'jobId' in e ? e.jobId : '') === held).map((e) => e.type),
        ['job.enqueued'],
        'no event of the held job but its enqueue',
      );
      open();
      await waitForStatus(queue, held);
      assert.equal((await queue.getJob(held))?.attempt, 1);
      await stream.return?.();
      await reading;
      await w.stop();
    });

    it('no spinning: a full limit costs a bounded number of limited claims, yet a freed slot is taken within milliseconds', async () => {
      const type = uniqueName('spin');
      const q = uniqueName('q');
      const watch = new StorageWatch(ts.storage);
      const queue = new Queue(watch.storage);
      const gates = new Map<number, Gate>();
      const startedAt = new Map<number, number>();
      queue.register(
        type,
        async (a: { i: number }) => {
          startedAt.set(a.i, performance.now());
          await gates.get(a.i)?.promise;
        },
        { concurrency: { limit: 1 } },
      );
      for (let i = 0; i < 4; i++) gates.set(i, new Gate());
      const completedAt = new Map<number, number>();
      queue.onJobComplete((j) => void completedAt.set((j.args as { i: number }).i, performance.now()));
      const w = serve(queue, q, 10, { pollInterval: 200 });
      await limitStored(queue, type);
      await queue.enqueueBatch(Array.from({ length: 4 }, (_, i) => ({ type, args: { i }, options: { queue: q, priority: -i } })));
      await waitFor(() => startedAt.has(0));
      const before = watch.calls('jobClaimLimited');
      const t0 = performance.now();
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      const claims = watch.calls('jobClaimLimited') - before;
      assert.ok(claims < 8, `${claims} limited claims in ${(performance.now() - t0).toFixed(0)} ms while the limit was full`);
      assert.equal(startedAt.size, 1);
      // The back-off is long by now (8 × pollInterval); the worker that frees the slot takes it at once, each time.
      for (let i = 0; i < 3; i++) {
        gates.get(i)!.open();
        await waitFor(() => startedAt.has(i + 1));
        const gap = startedAt.get(i + 1)! - completedAt.get(i)!;
        assert.ok(gap < 150, `the slot freed by job ${i} was taken ${gap.toFixed(1)} ms after its outcome was stored`);
      }
      for (const g of gates.values()) g.open();
      await waitFor(() => completedAt.size === 4);
      await w.stop();
    });
  });
}
