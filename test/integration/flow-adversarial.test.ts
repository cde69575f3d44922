/**
 * Flow control attacked the way users and operators use it, through the public API, on every
 * driver: operator actions on limited jobs mid-flight (cancel, pause/resume, retry, retry from
 * the failed step), limited workflows that suspend (sleep, signal, fan-out), limits changed at
 * run time (lowered, raised, removed, a rate limit sped up while a group is blocked, a worker
 * restarting with another limit), dedup windows and debounce at their edges, odd keys and
 * limits at their bounds, and storage faults around the limited claim. Concurrency is checked
 * from the handlers' own records, never from the library's counters.
 */
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Queue } from '../../src/queue/queue.js';
import { DuplicateJobError, InvalidArgumentError, noRetry } from '../../src/errors.js';
import type { Storage } from '../../src/storage/storage.js';
import { sub, values } from '../../src/workflow/fan-out.js';
import { completedJob, uniqueName, waitForClockPast } from '../helpers/factories.js';
import { FaultyStorage } from '../helpers/faulty-storage.js';
import { RunLog, batch, gated, gatedType, limitOf, limitedWorker, serve, waitForStatus, waitOr, work } from '../helpers/flow-gates.js';
import { storageMatrix, type TestStorage } from '../helpers/storages.js';
import { waitFor } from '../helpers/wait-for.js';
import { Gate, StorageWatch, holdsUntil, stopAllWorkers } from '../helpers/workflow-harness.js';

const YEAR_MS = 365 * 24 * 3600 * 1000;

for (const [name, make] of storageMatrix()) {
  describe(`flow control, adversarial (${name})`, () => {
    let ts: TestStorage;
    before(async () => {
      ts = await make(`flow-adv-${name}`);
    });
    afterEach(stopAllWorkers);
    after(() => ts.cleanup());

    // ---------------------------------------------------------------- operator actions

    it('cancelling a running limited job frees its slot: a held job starts while the cancelled handler still runs', async () => {
      const type = uniqueName('cancel');
      const q = uniqueName('q');
      const queue = new Queue(ts.storage);
      // A stubborn run ignores its abort signal.
      const { started, open } = gatedType(queue, type, { concurrency: { limit: 1 } }, { during: (a: { stubborn: boolean }, gate) => a.stubborn && gate.promise });
      const w = await limitedWorker(queue, type, q);
      const first = await queue.enqueue(type, { stubborn: true }, { queue: q });
      await waitFor(() => started.includes(first));
      const held = await queue.enqueue(type, { stubborn: false }, { queue: q });
      await queue.cancelJob(first);
      assert.equal((await queue.getJob(first))?.status, 'cancelled');
      await waitForStatus(queue, held, 'completed', { timeout: 5_000, message: 'the held job never ran after the running one was cancelled' });
      open();
      await w.stop();
    });

    it('a paused queue with a queue limit: the limited claim takes nothing from it; resumed, its jobs run within the limit', async () => {
      const type = uniqueName('pq');
      const typed = uniqueName('pq-typed');
      const q = uniqueName('q');
      const watch = new StorageWatch(ts.storage);
      const queue = new Queue(watch.storage);
      const { log, handler } = gatedType(queue, type, undefined, { key: 'q', during: () => work(20) });
      queue.register(typed, handler, { concurrency: { limit: 5 } });
      await queue.setQueueLimits(q, { concurrency: 2 });
      await queue.pauseQueue(q);
      const ids = await queue.enqueueBatch([...batch(4, type, { queue: q }), ...batch(2, typed, { queue: q })]);
      const w = await limitedWorker(queue, typed, q, 10);
      await holdsUntil(() => log.started.length === 0, watch.next('jobClaimLimited', 3), 'a job of a paused queue started');
      // Changing the limits of a paused queue leaves it paused.
      await queue.setQueueLimits(q, { concurrency: 3 });
      await queue.setQueueLimits(q, null);
      await queue.setQueueLimits(q, { concurrency: 2 });
      assert.equal((await queue.queues()).find((x) => x.name === q)?.paused, true);
      await holdsUntil(() => log.started.length === 0, watch.next('jobClaimLimited', 2), 'a job of a paused queue started after its limits changed');
      await queue.resumeQueue(q);
      await waitForStatus(queue, ids, 'completed', { timeout: 10_000 });
      assert.equal(log.max.get('q'), 2);
      await w.stop();
    });

    it('pauseJob / resumeJob of a held limited job: resumed, it still waits for the slot', async () => {
      const type = uniqueName('pj');
      const q = uniqueName('q');
      const watch = new StorageWatch(ts.storage);
      const queue = new Queue(watch.storage);
      const { log, open } = gatedType(queue, type, { concurrency: { limit: 1 } }, { during: (a: { hold: boolean }, gate) => a.hold && gate.promise });
      const w = await limitedWorker(queue, type, q);
      const first = await queue.enqueue(type, { hold: true }, { queue: q });
      await waitFor(() => log.started.includes(first));
      const held = await queue.enqueue(type, { hold: false }, { queue: q });
      await queue.pauseJob(held);
      assert.equal((await queue.getJob(held))?.status, 'paused');
      await queue.resumeJob(held);
      await holdsUntil(() => log.started.length === 1, Promise.all([watch.next('jobClaimLimited', 2), watch.next('jobClaim', 3)]), 'the resumed job ran beside the running one');
      assert.equal((await queue.getJob(held))?.status, 'pending');
      open();
      await waitForStatus(queue, held);
      assert.equal(log.max.get('all'), 1);
      await w.stop();
    });

    it('retryJob and retryJobs of failed limited jobs obey the limit', async () => {
      const type = uniqueName('retry');
      const q = uniqueName('q');
      const watch = new StorageWatch(ts.storage);
      const queue = new Queue(watch.storage);
      const state = { failing: true };
      const { log, open } = gatedType(queue, type, { concurrency: { limit: 1 } }, {
        during: async (a: { hold: boolean }, gate) => {
          if (a.hold) await gate.promise;
          else if (state.failing) throw noRetry(new Error('down'));
        },
      });
      const w = await limitedWorker(queue, type, q);
      const failed = await queue.enqueueBatch(batch(3, type, { queue: q }, () => ({ hold: false })));
      await waitForStatus(queue, failed, 'failed');
      state.failing = false;
      const holder = await queue.enqueue(type, { hold: true }, { queue: q });
      await waitFor(() => log.started.includes(holder));
      const before = log.started.length;
      await queue.retryJob(failed[0]!);
      await queue.retryJobs({ status: 'failed', type });
      await holdsUntil(() => log.started.length === before, Promise.all([watch.next('jobClaimLimited', 2), watch.next('jobClaim', 3)]), 'a retried job ran beside the running one');
      open();
      await waitForStatus(queue, failed);
      assert.equal(log.max.get('all'), 1);
      await w.stop();
    });

    for (const how of ['retryJob', 'retryJobs', 'fromFailedStep'] as const) {
    it(`${how} of a workflow whose type got a limit after it failed obeys the limit`, async () => {
      const type = uniqueName('wf');
      const q = uniqueName('q');
      const state = { failing: true };
      const { log, open, handler } = gated({
        during: async (a: { hold: boolean }, gate, ctx) => {
          if (a.hold) return await gate.promise;
          await ctx.call(`${type}-step1`, 1);
          await ctx.call(`${type}-step2`, 2);
        },
      });
      const step2 = () => {
        if (state.failing) throw noRetry(new Error('step 2 is down'));
        return 2;
      };
      // Before the limit: the workflow fails at step 2.
      const before = new Queue(ts.storage);
      before.register(type, handler);
      before.register(`${type}-step1`, () => 1);
      before.register(`${type}-step2`, step2);
      const w1 = serve(before, q);
      const failed = await before.enqueue(type, { hold: false }, { queue: q });
      await waitForStatus(before, failed, 'failed');
      await w1.stop();
      // A deploy adds a limit of 1; a job holds the slot; the failed one is retried from its step.
      state.failing = false;
      const watch = new StorageWatch(await ts.another());
      const queue = new Queue(watch.storage);
      queue.register(type, handler, { concurrency: { limit: 1 } });
      queue.register(`${type}-step1`, () => 1);
      queue.register(`${type}-step2`, step2);
      const w2 = await limitedWorker(queue, type, q);
      const holder = await queue.enqueue(type, { hold: true }, { queue: q });
      await waitFor(() => log.started.includes(holder));
      const n = log.started.length;
      if (how === 'retryJobs') assert.equal((await queue.retryJobs({ status: 'failed', type })).count, 1);
        else await queue.retryJob(failed, { fromFailedStep: how === 'fromFailedStep' });
        await Promise.all([watch.next('jobClaimLimited', 2), watch.next('jobClaim', 3)]);
        const names = () => JSON.stringify(log.started.map((id) => (id === failed ? 'failed' : id === holder ? 'holder' : id)));
        assert.equal(log.started.length, n, `the retried workflow ran beside the running one (limit 1); ${how}; started ${names()}, max ${log.max.get('all')}`);
        open();
      await waitForStatus(queue, failed);
      assert.equal(log.max.get('all'), 1);
      await w2.stop();
    });
    }

    it('a job that failed under a type limit and is retried after the limit was removed starts as promptly as an ordinary job', async () => {
      const type = uniqueName('unlim');
      const q = uniqueName('q');
      const a = new Queue(ts.storage);
      a.register(type, () => {
        throw noRetry(new Error('down'));
      }, { concurrency: { limit: 1 } });
      const w1 = await limitedWorker(a, type, q);
      const id = await a.enqueue(type, {}, { queue: q });
      await waitForStatus(a, id, 'failed');
      await w1.stop();
      // The next deploy drops the limit; no limit is stored anywhere for this worker's queue.
      const b = new Queue(await ts.another());
      b.register(type, async () => 'ok');
      const w2 = serve(b, q, undefined, { pollInterval: 20 });
      await waitFor(async () => limitOf(await b.limits(), 'type', type) === undefined);
      const other = await b.enqueue(type, {}, { queue: q });
      await waitForStatus(b, other);
      const t0 = performance.now();
      await b.retryJob(id);
      await waitOr(
        async () => (await b.getJob(id))?.status === 'completed',
        1_000,
        async () => `the retried job still ${(await b.getJob(id))?.status} ${(performance.now() - t0).toFixed(0)} ms after its retry (limited: ${(await ts.storage.jobGet({ id }))?.limited})`,
      );
      await w2.stop();
    });

    it('cancelJobs / deleteJobs of held limited jobs and of the running one: limits() stops counting them and the next held job starts', async () => {
      const type = uniqueName('del');
      const q = uniqueName('q');
      const queue = new Queue(ts.storage);
      const { started, open } = gatedType(queue, type, { concurrency: { limit: 1 } }, { during: (a: { hold: boolean }, gate) => a.hold && gate.promise });
      const w = await limitedWorker(queue, type, q);
      const first = await queue.enqueue(type, { hold: true }, { queue: q, priority: 10 });
      await waitFor(() => started.includes(first));
      const doomed = await queue.enqueueBatch(batch(3, type, { queue: q, priority: 5 }, () => ({ hold: false })));
      const cancelled = await queue.cancelJobs({ type, status: 'pending' });
      assert.equal(cancelled.count, doomed.length, JSON.stringify(cancelled));
      assert.equal((await queue.deleteJobs({ type, status: 'cancelled' })).count, doomed.length);
      assert.equal(limitOf(await queue.limits(), 'type', type)?.pending, 0);
      const kept = await queue.enqueue(type, { hold: false }, { queue: q, priority: 0 });
      await queue.cancelJob(first);
      assert.equal((await queue.deleteJobs({ type, status: 'cancelled' })).count, 1);
      await waitOr(async () => (await queue.getJob(kept))?.status === 'completed', 5_000, () => 'the held job never started after the running one was cancelled and deleted');
      open();
      await w.stop();
    });

    it('a keyed limit added after jobs were enqueued without keys: the old backlog shares one group (keys are computed at enqueue), new jobs run side by side', async () => {
      const type = uniqueName('late-key');
      const q = uniqueName('q');
      const producer = new Queue(ts.storage);
      const accounts = ['a', 'b', 'c', 'd'];
      const old = await producer.enqueueBatch(accounts.map((account) => ({ type, args: { account, old: true }, options: { queue: q } })));
      const queue = new Queue(await ts.another());
      const { log, open } = gatedType(queue, type, { concurrency: { limit: 1, key: (a) => a.account } }, { key: (a: { account: string; old?: boolean }) => (a.old ? '' : a.account) });
      const w = serve(queue, q, 10);
      await waitOr(() => log.started.length === 1, 3_000, () => `${log.started.length} of the old backlog started`);
      const fresh = await queue.enqueueBatch(accounts.map((account) => ({ type, args: { account }, options: { queue: q } })));
      await waitOr(
        () => log.started.length === 1 + accounts.length,
        3_000,
        () => `${log.started.length - 1} of ${accounts.length} new jobs of distinct accounts run side by side`,
      );
      assert.equal(log.max.get(''), 1, 'the jobs enqueued before the key function share the group of the empty key');
      open();
      await waitForStatus(queue, [...old, ...fresh]);
      assert.equal(log.max.get(''), 1);
      for (const a of accounts) assert.equal(log.max.get(a), 1, a);
      await w.stop();
    });

    // ---------------------------------------------------------------- suspending workflows

    it('a limited workflow that sleeps or waits for a signal gives its slot back and takes one on wake, never over the limit', async () => {
      const type = uniqueName('susp');
      const q = uniqueName('q');
      const queue = new Queue(ts.storage);
      const log = new RunLog();
      queue.register(
        type,
        async (a: { how: 'sleep' | 'signal' | 'plain' }, ctx) => {
          // A suspended run's promise never settles: the record leaves before each suspension
          // (a replay enters again from the top).
          log.enter('all', ctx.job.id);
          if (a.how !== 'plain') {
            log.leave('all');
            if (a.how === 'sleep') await ctx.sleep(300);
            else await ctx.waitForSignal('go');
            log.enter('all', ctx.job.id);
          }
          await work(30);
          log.leave('all');
        },
        { concurrency: { limit: 1 } },
      );
      const w = await limitedWorker(queue, type, q, 10);
      const sleeper = await queue.enqueue(type, { how: 'sleep' }, { queue: q, priority: 10 });
      const waiter = await queue.enqueue(type, { how: 'signal' }, { queue: q, priority: 9 });
      await waitForStatus(queue, waiter, 'waiting');
      const plain = await queue.enqueueBatch(batch(4, type, { queue: q }, () => ({ how: 'plain' })));
      await waitForStatus(queue, plain, 'completed', { timeout: 10_000, message: 'plain jobs did not run while the workflows were suspended' });
      await queue.signal(waiter, 'go');
      await waitForStatus(queue, [sleeper, waiter], 'completed', { timeout: 10_000 });
      assert.equal(log.max.get('all'), 1, 'never two running at once');
      await w.stop();
    });

    it('a limited parent fanning out children of its own limited type (limit 1) does not deadlock; children of a keyed type run within their limit', async () => {
      const type = uniqueName('fan');
      const child = uniqueName('fan-child');
      const q = uniqueName('q');
      const queue = new Queue(ts.storage);
      const log = new RunLog();
      queue.register(
        type,
        async (a: { n: number; leaf?: boolean }, ctx) => {
          // A suspended run's promise never settles: the record leaves before each fan-out.
          log.enter('parent', ctx.job.id);
          if (a.leaf) {
            await work(10);
            log.leave('parent');
            return a.n;
          }
          log.leave('parent');
          const same = await ctx.fanOut(Array.from({ length: 3 }, (_, i) => sub(type, { n: i, leaf: true })));
          const kids = await ctx.fanOut(Array.from({ length: 6 }, (_, i) => sub(child, { n: i, k: i % 2 === 0 ? 'even' : 'odd' })));
          log.enter('parent', ctx.job.id);
          log.leave('parent');
          return [same.length, kids.length];
        },
        { concurrency: { limit: 1 } },
      );
      gatedType(queue, child, { concurrency: { limit: 1, key: (a) => a.k } }, {
        log,
        key: (a: { n: number; k: string }) => `child:${a.k}`,
        during: async (a) => {
          await work(20);
          return a.n;
        },
      });
      const w = await limitedWorker(queue, type, q, 10);
      const parent = await queue.enqueue(type, { n: 0 }, { queue: q });
      const done = await queue.waitForJob(parent, { timeout: 15_000 });
      assert.equal(done.status, 'completed');
      assert.deepEqual(done.result, [3, 6]);
      assert.equal(log.max.get('parent'), 1);
      assert.equal(log.max.get('child:even'), 1);
      assert.equal(log.max.get('child:odd'), 1);
      await w.stop();
    });

    it('calls from workflows to a limited API through sub-jobs of the limited type stay within its limit (a ctx.call step runs in its workflow\'s slot)', async () => {
      const api = uniqueName('api');
      const flow = uniqueName('flow');
      const q = uniqueName('q');
      const queue = new Queue(ts.storage);
      const { log } = gatedType(queue, api, { concurrency: { limit: 1 } }, {
        key: 'api',
        during: async (n: number) => {
          await work(30);
          return n;
        },
      });
      queue.register(flow, async (n: number, ctx) => values(await ctx.fanOut<number>([sub(api, n)]))[0]);
      const w = await limitedWorker(queue, api, q, 10);
      const ids = await queue.enqueueBatch(batch(6, flow, { queue: q }, (i) => i));
      await waitForStatus(queue, ids, 'completed', { timeout: 10_000 });
      assert.deepEqual((await Promise.all(ids.map((id) => queue.getJob(id)))).map((j) => j?.result), [0, 1, 2, 3, 4, 5]);
      assert.equal(log.started.length, 6);
      assert.equal(log.max.get('api'), 1, `calls of "${api}" (concurrency limit 1) ran ${log.max.get('api')} at once`);
      await w.stop();
    });

    // ---------------------------------------------------------------- limits changed at run time

    it('setQueueLimits raised while jobs wait: more start at once; lowered: the next ones respect it', async () => {
      const type = uniqueName('raise');
      const q = uniqueName('q');
      const queue = new Queue(ts.storage);
      const gates = [new Gate(), new Gate()];
      const { log } = gatedType(queue, type, undefined, { key: 'q', during: (a: { g: number }) => gates[a.g]!.promise });
      await queue.setQueueLimits(q, { concurrency: 1 });
      const w = serve(queue, q, 10);
      const first = await queue.enqueueBatch(batch(4, type, { queue: q }, () => ({ g: 0 })));
      await waitFor(() => log.started.length === 1);
      await queue.setQueueLimits(q, { concurrency: 3 });
      await waitOr(() => log.started.length === 3, 3_000, () => `${log.started.length} running after raising the limit to 3`);
      await queue.setQueueLimits(q, { concurrency: 1 });
      const second = await queue.enqueueBatch(batch(3, type, { queue: q }, () => ({ g: 1 })));
      gates[0]!.open();
      await waitForStatus(queue, first);
      // Of the jobs after the lowering, one runs at a time.
      await waitFor(() => second.some((id) => log.started.includes(id)));
      log.max.set('q', log.running.get('q') ?? 0);
      gates[1]!.open();
      await waitForStatus(queue, second);
      assert.equal(log.max.get('q'), 1);
      await w.stop();
    });

    it('a queue rate limit sped up from 1 a minute to 100 a second lets the blocked jobs start at the new rate', async () => {
      const type = uniqueName('speed');
      const q = uniqueName('q');
      const queue = new Queue(ts.storage);
      queue.register(type, async () => {});
      await queue.setQueueLimits(q, { rateLimit: { limit: 1, period: 60_000 } });
      const w = serve(queue, q, 10);
      const ids = await queue.enqueueBatch(batch(5, type, { queue: q }));
      await waitFor(async () => (await queue.stats({ queue: q })).completed === 1);
      await queue.setQueueLimits(q, { rateLimit: { limit: 100, period: 1_000 } });
      const t0 = Date.now();
      await waitOr(
        async () => (await queue.stats({ queue: q })).completed === 5,
        5_000,
        async () => `the queue's jobs still wait on the old rate (1 a minute) after it became 100 a second: ${JSON.stringify(limitOf(await queue.limits(), 'queue', q))}`,
      );
      assert.ok(Date.now() - t0 < 2_000);
      assert.equal(ids.length, 5);
      await w.stop();
    });

    it('a queue rate limit slowed from 100 a second to 1 a minute holds at once (at most one start more), and removed, lets the rest run', async () => {
      const type = uniqueName('slow');
      const q = uniqueName('q');
      const queue = new Queue(ts.storage);
      let started = 0;
      queue.register(type, async () => void started++);
      await queue.setQueueLimits(q, { rateLimit: { limit: 100, period: 1_000 } });
      const w = serve(queue, q, 10);
      await queue.enqueueBatch(batch(200, type, { queue: q }));
      await waitFor(() => started >= 10);
      await queue.setQueueLimits(q, { rateLimit: { limit: 1, period: 60_000 } });
      const at = started;
      // A second and a half: 150 starts at the old pace.
      await work(1_500);
      assert.ok(started - at <= 3, `${started - at} starts after the rate became 1 a minute (one claim in flight and one catch-up allowed)`);
      await queue.setQueueLimits(q, null);
      await waitFor(async () => (await queue.stats({ queue: q })).completed === 200, { timeout: 10_000 });
      await w.stop();
    });

    it('a type rate limit sped up by a worker restarting with 100 a second lets the blocked jobs start at the new rate', async () => {
      const type = uniqueName('speed-type');
      const q = uniqueName('q');
      const a = new Queue(ts.storage);
      a.register(type, async () => {}, { rateLimit: { limit: 1, period: 60_000 } });
      const w1 = await limitedWorker(a, type, q);
      await a.enqueueBatch(batch(5, type, { queue: q }));
      await waitFor(async () => (await a.stats({ queue: q })).completed === 1);
      await w1.stop();
      const b = new Queue(await ts.another());
      b.register(type, async () => {}, { rateLimit: { limit: 100, period: 1_000 } });
      const w2 = serve(b, q, 10);
      await waitOr(
        async () => (await b.stats({ queue: q })).completed === 5,
        5_000,
        async () => `the type's jobs still wait on the old rate (1 a minute) after a worker stored 100 a second: ${JSON.stringify(limitOf(await b.limits(), 'type', type))}`,
      );
      await w2.stop();
    });

    it('a type rate limit shared by two queues served by two workers: a worker that joins while the other keeps the pace gets starts too', async () => {
      const type = uniqueName('share');
      const q1 = uniqueName('q1');
      const q2 = uniqueName('q2');
      const starts: { queue: string; at: number }[] = [];
      const h = async (_a: unknown, ctx: { job: { queue: string } }) => void starts.push({ queue: ctx.job.queue, at: performance.now() });
      const a = new Queue(ts.storage);
      const watchB = new StorageWatch(await ts.another());
      const b = new Queue(watchB.storage);
      for (const x of [a, b]) x.register(type, h, { rateLimit: { limit: 20, period: 1_000 } });
      // Worker A keeps the pace of q1's backlog alone for a while.
      const w1 = await limitedWorker(a, type, q1, 10);
      await a.enqueueBatch(batch(80, type, { queue: q1 }));
      await waitFor(() => starts.length >= 5);
      // Worker B joins with a backlog of q2.
      await b.enqueueBatch(batch(40, type, { queue: q2 }));
      const w2 = serve(b, q2, 10);
      const from = starts.length;
      const claimsB = watchB.calls('jobClaimLimited');
      await waitFor(() => starts.length >= from + 40, { timeout: 10_000 });
      const during = watchB.calls('jobClaimLimited') - claimsB;
      const next40 = starts.slice(from, from + 40);
      const n2 = next40.filter((x) => x.queue === q2).length;
      assert.ok(n2 >= 4, `of the 40 starts after worker B joined, ${n2} went to its queue ${q2} and ${40 - n2} to ${q1} (B made ${during} limited claims meanwhile)`);
      await Promise.all([w1.stop(), w2.stop()]);
    });

    it('a worker restarting without the type limit lets the held jobs run; one restarting with a higher limit runs more at once', async () => {
      const type = uniqueName('restart');
      const q = uniqueName('q');
      const a = new Queue(ts.storage);
      const { log, open, handler } = gatedType(a, type, { concurrency: { limit: 1 } });
      const w1 = await limitedWorker(a, type, q, 10);
      await a.enqueueBatch(batch(8, type, { queue: q }));
      await waitFor(() => log.started.length === 1);
      // A second worker with a limit of 3 (the last started wins).
      const b = new Queue(await ts.another());
      b.register(type, handler, { concurrency: { limit: 3 } });
      const w2 = serve(b, q, 10);
      await waitOr(() => log.started.length === 3, 5_000, () => `${log.started.length} running with a limit of 3`);
      // A third without a limit: everything held runs.
      const c = new Queue(await ts.another());
      c.register(type, handler);
      const w3 = serve(c, q, 10);
      await waitOr(() => log.started.length === 8, 5_000, () => `${log.started.length} of 8 running once the limit was removed`);
      open();
      await waitFor(async () => (await a.stats({ queue: q })).completed === 8);
      await Promise.all([w1.stop(), w2.stop(), w3.stop()]);
    });

    it('a type limit counts across queues served by different workers', async () => {
      const type = uniqueName('xq');
      const q1 = uniqueName('q1');
      const q2 = uniqueName('q2');
      const { log, handler } = gated({ during: () => work(15) });
      const a = new Queue(ts.storage);
      const b = new Queue(await ts.another());
      for (const x of [a, b]) x.register(type, handler, { concurrency: { limit: 2 } });
      const w1 = await limitedWorker(a, type, q1, 10);
      const w2 = serve(b, q2, 10);
      const ids = await a.enqueueBatch(Array.from({ length: 16 }, (_, i) => ({ type, options: { queue: i % 2 === 0 ? q1 : q2 } })));
      await waitForStatus(a, ids, 'completed', { timeout: 15_000 });
      assert.equal(log.max.get('all'), 2);
      await Promise.all([w1.stop(), w2.stop()]);
    });

    it('a delayed limited job starts about as soon after its run time as an ordinary one, even after the worker idled', async () => {
      const limited = uniqueName('late-lim');
      const plain = uniqueName('late-plain');
      const q = uniqueName('q');
      const queue = new Queue(ts.storage);
      const startedAt = new Map<string, number>();
      const h = async (_a: unknown, ctx: { job: { id: string } }) => void startedAt.set(ctx.job.id, Date.now());
      queue.register(limited, h, { concurrency: { limit: 5 } });
      queue.register(plain, h);
      const poll = 250;
      const watch = new StorageWatch(ts.storage);
      const wq = new Queue(watch.storage);
      wq.register(limited, h, { concurrency: { limit: 5 } });
      wq.register(plain, h);
      const w = await limitedWorker(wq, limited, q, 5, { pollInterval: poll });
      // The worker idles: its limited claims find nothing ready.
      await watch.next('jobClaim', 8, { timeout: 20_000 });
      const [lim, pl] = await queue.enqueueBatch([
        { type: limited, options: { queue: q, delay: 400 } },
        { type: plain, options: { queue: q, delay: 400 } },
      ]);
      await waitFor(() => startedAt.has(lim!) && startedAt.has(pl!), { timeout: 10_000 });
      const late = async (id: string) => startedAt.get(id)! - (await queue.getJob(id))!.runAt.getTime();
      const [limLate, plainLate] = [await late(lim!), await late(pl!)];
      assert.ok(plainLate < 2 * poll + 100, `the ordinary job started ${plainLate} ms after its run time`);
      assert.ok(limLate < 2 * poll + 100, `the limited job started ${limLate} ms after its run time (the ordinary one ${plainLate} ms; pollInterval ${poll})`);
      await w.stop();
    });

    // ---------------------------------------------------------------- dedup windows and debounce

    it('uniqueFor 0 is no window; a huge uniqueFor is refused or dedups, never a storage error', async () => {
      const queue = new Queue(ts.storage);
      const key = uniqueName('u0');
      const holder = await completedJob(ts.storage, { uniqueKey: key, type: 't-u' });
      await waitForClockPast(ts.storage, (holder.completedAt ?? 0) + 1);
      const fresh = await queue.enqueue('t-u', {}, { unique: key, uniqueFor: 0, queue: uniqueName('q') });
      assert.notEqual(fresh, holder.id);
      for (const huge of [Number.MAX_SAFE_INTEGER, 1e300, 100 * YEAR_MS]) {
        const k = uniqueName('uhuge');
        const h = await completedJob(ts.storage, { uniqueKey: k, type: 't-u' });
        try {
          const id = await queue.enqueue('t-u', {}, { unique: k, uniqueFor: huge, onDuplicate: 'existing', queue: uniqueName('q') });
          assert.equal(id, h.id, `uniqueFor ${huge}: the job that finished a moment ago holds the key`);
        } catch (e) {
          assert.ok(e instanceof InvalidArgumentError, `uniqueFor ${huge}: ${String(e)}`);
        }
      }
    });

    it('debounce: duplicates inside one batch leave one job with the last args; a cancelled holder is not revived; a paused holder is not silently kept', async () => {
      const queue = new Queue(ts.storage);
      const type = uniqueName('deb');
      const q = uniqueName('q');
      const key = uniqueName('k');
      const ids = await queue.enqueueBatch([
        { type, args: { v: 1 }, options: { queue: q, debounce: { key, delay: 60_000 } } },
        { type, args: { v: 2 }, options: { queue: q, debounce: { key, delay: 60_000 } } },
      ]);
      assert.equal(ids[0], ids[1], 'one job for one key');
      assert.deepEqual((await queue.getJob(ids[0]!))?.args, { v: 2 }, 'the last enqueue wins');
      assert.equal((await queue.stats({ queue: q })).pending, 1);
      // Cancelled holder.
      await queue.cancelJob(ids[0]!);
      const next = await queue.enqueue(type, { v: 3 }, { queue: q, debounce: { key, delay: 60_000 } });
      assert.notEqual(next, ids[0]);
      assert.equal((await queue.getJob(ids[0]!))?.status, 'cancelled');
      assert.equal((await queue.getJob(next))?.status, 'pending');
      // Paused holder: the latest args must end up in a job that is pending or (documented) paused with them.
      await queue.pauseJob(next);
      const later = await queue.enqueue(type, { v: 4 }, { queue: q, debounce: { key, delay: 60_000 } });
      const jobs = await Promise.all([...new Set([next, later])].map((id) => queue.getJob(id)));
      assert.ok(
        jobs.some((j) => (j?.args as { v: number }).v === 4),
        `the latest args are in no job: ${JSON.stringify(jobs.map((j) => [j?.id, j?.status, j?.args]))}`,
      );
    });

    it('debounce after pauseJob / resumeJob of the holder: the paused job left the debounce; later debounces replace the one holder', async () => {
      const queue = new Queue(ts.storage);
      const type = uniqueName('debp');
      const q = uniqueName('q');
      const key = uniqueName('k');
      const first = await queue.enqueue(type, { v: 1 }, { queue: q, debounce: { key, delay: 60_000 } });
      await queue.pauseJob(first);
      const second = await queue.enqueue(type, { v: 2 }, { queue: q, debounce: { key, delay: 60_000 } });
      assert.notEqual(second, first, 'a paused holder is not pending: a new job holds the key');
      await queue.resumeJob(first);
      const third = await queue.enqueue(type, { v: 3 }, { queue: q, debounce: { key, delay: 60_000 } });
      assert.equal(third, second, 'the debounce replaced the one holder of the key, not the resumed job');
      const pending = (await queue.listJobs({ queue: q, status: 'pending', order: 'asc' })).jobs;
      assert.deepEqual(
        pending.map((j) => [j.id, j.args]),
        [[first, { v: 1 }], [second, { v: 3 }]],
        'the resumed job runs as it was; the holder has the latest args',
      );
    });

    it('debounce of one key from two queues at once leaves one pending job; a later debounce moves it to its queue', async () => {
      const type = uniqueName('deb2');
      const key = uniqueName('k');
      const qa = uniqueName('qa');
      const qb = uniqueName('qb');
      const a = new Queue(ts.storage);
      const b = new Queue(await ts.another());
      for (let round = 0; round < 5; round++) {
        const k = `${key}-${round}`;
        const [x, y] = await Promise.all([a.enqueue(type, { from: 'a' }, { queue: qa, debounce: { key: k, delay: 60_000 } }), b.enqueue(type, { from: 'b' }, { queue: qb, debounce: { key: k, delay: 60_000 } })]);
        assert.equal(x, y, `round ${round}: both resolve to one job`);
      }
      const pending = (await a.stats({ queue: qa })).pending + (await a.stats({ queue: qb })).pending;
      assert.equal(pending, 5);
      const k = `${key}-move`;
      const id = await a.enqueue(type, { v: 1 }, { queue: qa, debounce: { key: k, delay: 60_000 } });
      const id2 = await a.enqueue(type, { v: 2 }, { queue: qb, debounce: { key: k, delay: 60_000 } });
      assert.equal(id2, id);
      assert.equal((await a.getJob(id))?.queue, qb, 'replaced with the options of the last enqueue, its queue included');
    });

    // PostgreSQL only: a plain client's transaction works on the test schema as is.
    if (name === 'postgres') it('debounce inside a transaction (PostgreSQL): a rollback leaves the holder as it was; a debounce racing the open transaction leaves one pending job', async () => {
      const { openClient } = await import('../helpers/postgres-schema.js');
      const queue = new Queue(ts.storage);
      const type = uniqueName('debtx');
      const q = uniqueName('q');
      const key = uniqueName('k');
      const holder = await queue.enqueue(type, { v: 1 }, { queue: q, debounce: { key, delay: 60_000 } });
      const user = await openClient();
      try {
        await user.query('BEGIN');
        const inTx = await queue.enqueue(type, { v: 2 }, { queue: q, debounce: { key, delay: 60_000 }, transaction: user as never });
        assert.equal(inTx, holder);
        // Another producer debounces the same key while the transaction is open.
        const racing = queue.enqueue(type, { v: 3 }, { queue: q, debounce: { key, delay: 60_000 } });
        const early = await Promise.race([racing.then(() => 'done' as const), work(300).then(() => 'waiting' as const)]);
        await user.query('ROLLBACK');
        const id3 = await racing;
        const pending = await queue.listJobs({ queue: q, status: 'pending' });
        assert.equal(pending.jobs.length, 1, `one pending job for the key (the racing enqueue was ${early}): ${JSON.stringify(pending.jobs.map((j) => [j.id, j.args]))}`);
        assert.equal(id3, holder);
        assert.deepEqual(pending.jobs[0]?.args, { v: 3 }, 'the last committed debounce wins');
      } finally {
        await user.end();
      }
    });

    // ---------------------------------------------------------------- odd keys, bounds

    it('odd keys: emoji, 255 characters, trailing spaces and case are distinct groups that run side by side; bad key functions insert nothing', async () => {
      const type = uniqueName('odd');
      const q = uniqueName('q');
      const queue = new Queue(ts.storage);
      const { log, open } = gatedType(queue, type, { concurrency: { limit: 1, key: (a) => a.k } }, { key: (a: { k: string }) => a.k });
      const keys = ['😀', '😁', 'k', 'k ', 'K', 'x'.repeat(255), 'x'.repeat(254) + 'y', 'é', 'e\u0301'];
      const w = await limitedWorker(queue, type, q, 20);
      await queue.enqueueBatch(keys.map((k) => ({ type, args: { k }, options: { queue: q } })));
      await waitOr(
        () => log.started.length === keys.length,
        5_000,
        () => `only ${log.started.length} of ${keys.length} distinct keys run at once; running: ${JSON.stringify([...log.running.entries()].filter(([, n]) => n > 0).map(([k]) => k.slice(0, 8)))}`,
      );
      open();
      await waitFor(async () => (await queue.stats({ queue: q })).completed === keys.length);
      await w.stop();
      const bad = new Queue(ts.storage);
      const badType = uniqueName('odd-bad');
      const bq = uniqueName('q');
      bad.register(badType, async () => {}, { concurrency: { limit: 1, key: (a: { k: unknown }) => (a.k === 'async' ? (Promise.resolve('k') as unknown as string) : (a.k as string)) } });
      for (const k of [undefined, null, 5, {}, 'async', 'x'.repeat(256), '\uDC00', 'a\u0000b']) {
        await assert.rejects(bad.enqueue(badType, { k }, { queue: bq }), InvalidArgumentError, `key ${String(k)}`);
      }
      assert.equal((await bad.stats({ queue: bq })).pending, 0);
    });

    it('limits at their bounds: concurrency 1,000,000, 1000 starts per 1000 ms, 1 start per 100 years', async () => {
      const big = uniqueName('big');
      const fast = uniqueName('fastest');
      const slow = uniqueName('slowest');
      const q = uniqueName('q');
      const queue = new Queue(ts.storage);
      queue.register(big, async () => {}, { concurrency: { limit: 1_000_000 } });
      queue.register(fast, async () => {}, { rateLimit: { limit: 1000, period: 1000 } });
      queue.register(slow, async () => {}, { rateLimit: { limit: 1, period: 100 * YEAR_MS } });
      const w = await limitedWorker(queue, slow, q, 10);
      const ids = await queue.enqueueBatch([...[big, big, fast, fast, fast].map((type) => ({ type, options: { queue: q } })), { type: slow, options: { queue: q } }, { type: slow, options: { queue: q } }]);
      await waitFor(async () => (await queue.stats({ queue: q })).completed === 6, { timeout: 5_000, message: JSON.stringify(await queue.stats({ queue: q })) });
      const slowRow = limitOf(await queue.limits(), 'type', slow);
      assert.equal(slowRow?.pending, 1);
      assert.ok((slowRow?.nextStartInMs ?? 0) > 99 * YEAR_MS, `next start in ${slowRow?.nextStartInMs} ms`);
      assert.deepEqual(limitOf(await queue.limits(), 'type', big)?.concurrency, 1_000_000);
      assert.equal(ids.length, 7);
      await w.stop();
    });

    it('a rate-blocked group whose next start is more than 24.8 days away does not make the worker spin', async () => {
      const type = uniqueName('longrate');
      const q = uniqueName('q');
      const watch = new StorageWatch(ts.storage);
      const queue = new Queue(watch.storage);
      queue.register(type, async () => {}, { rateLimit: { limit: 1, period: 30 * 24 * 3600 * 1000 } });
      const w = await limitedWorker(queue, type, q, 5, { pollInterval: 100 });
      await queue.enqueueBatch(batch(2, type, { queue: q }));
      await waitFor(async () => (await queue.stats({ queue: q })).completed === 1);
      const before = watch.calls('jobClaimLimited');
      await work(1_000);
      const claims = watch.calls('jobClaimLimited') - before;
      assert.ok(claims <= 12, `${claims} limited claims in 1 s while the only ready job waits 30 days for its start`);
      assert.equal((await queue.stats({ queue: q })).pending, 1);
      await w.stop();
    });

    // ---------------------------------------------------------------- faults

    it('a limited claim that fails is retried: the worker recovers and runs the limited jobs', async () => {
      const type = uniqueName('fault');
      const q = uniqueName('q');
      const faulty = new FaultyStorage(ts.storage);
      const queue = new Queue(faulty.storage);
      queue.register(type, async () => {}, { concurrency: { limit: 1 } });
      const w = await limitedWorker(queue, type, q);
      const rule = faulty.fail({ method: 'jobClaimLimited', times: 3 });
      const ids = await queue.enqueueBatch(batch(3, type, { queue: q }));
      await waitForStatus(queue, ids, 'completed', { timeout: 10_000 });
      assert.equal(rule.fired, 3);
      await w.stop();
    });

    it('a limited job given back unrun whose release fails once does not hold its slot until the lease expires', async () => {
      const type = uniqueName('giveback');
      const plain = uniqueName('giveback-plain');
      const q = uniqueName('q');
      const faulty = new FaultyStorage(ts.storage);
      const queue = new Queue(faulty.storage);
      queue.register(type, async () => {}, { concurrency: { limit: 1 } });
      const { open } = gatedType(queue, plain);
      // Store the limit first (a worker on another queue), then line up both kinds of jobs.
      const boot = await limitedWorker(queue, type, uniqueName('other'));
      await boot.stop();
      const [limitedId] = await queue.enqueueBatch([
        { type, options: { queue: q, priority: 0 } },
        { type: plain, options: { queue: q, priority: 10 } },
      ]);
      const rule = faulty.fail({ method: 'jobRelease' });
      // One slot: the ordinary job (priority 10) wins it; the limited one is given back, and the give-back fails.
      const w = serve(queue, q, 1, { leaseTimeout: 6_000, heartbeatInterval: 1_000 });
      await waitFor(() => rule.fired === 1, { timeout: 5_000, message: 'no give-back happened' });
      open();
      const t0 = Date.now();
      await waitOr(
        async () => (await queue.getJob(limitedId!))?.status === 'completed',
        2_000,
        async () => `the limited job is still ${(await queue.getJob(limitedId!))?.status} ${Date.now() - t0} ms after the slot was free (lease 6 s): its failed give-back kept it claimed`,
      );
      await w.stop();
    });

    it('a limitSet that fails at worker start: the start fails loudly, a later start stores the limit', async () => {
      const type = uniqueName('startfault');
      const q = uniqueName('q');
      const faulty = new FaultyStorage(ts.storage);
      const queue = new Queue(faulty.storage);
      queue.register(type, async () => {}, { concurrency: { limit: 1 } });
      faulty.fail({ method: 'limitSet' });
      const worker = queue.newWorker({ queues: { [q]: {} }, pollInterval: 20, handleSignals: false });
      await assert.rejects(worker.start(), /injected/);
      assert.equal(limitOf(await queue.limits(), 'type', type), undefined);
      const w = await limitedWorker(queue, type, q);
      await w.stop();
    });

    it('a worker stopped while a limited claim is in flight leaves no job running: another worker takes it at once', async () => {
      const type = uniqueName('stopfly');
      const q = uniqueName('q');
      const faulty = new FaultyStorage(ts.storage);
      const queue = new Queue(faulty.storage);
      queue.register(type, async () => {}, { concurrency: { limit: 1 } });
      const w = await limitedWorker(queue, type, q, 5, { leaseTimeout: 60_000 });
      const inFlight = new Gate();
      const release = new Gate();
      faulty.fail({
        method: 'jobClaimLimited',
        respond: async (p) => {
          inFlight.open();
          await release.promise;
          return (ts.storage as Storage).jobClaimLimited(p);
        },
      });
      const id = await queue.enqueue(type, {}, { queue: q });
      await inFlight.promise;
      const stopping = w.stop();
      release.open();
      await stopping;
      const job = await queue.getJob(id);
      assert.notEqual(job?.status, 'running', 'a job claimed as the worker stopped is left running (its slot held until the lease expires)');
      const other = new Queue(await ts.another());
      other.register(type, async () => {}, { concurrency: { limit: 1 } });
      const w2 = serve(other, q);
      await waitForStatus(other, id, 'completed', { timeout: 3_000 });
      await w2.stop();
    });

    it('onDuplicate existing with uniqueFor in a batch: a finished holder and a duplicate inside the batch', async () => {
      const queue = new Queue(ts.storage);
      const q = uniqueName('q');
      const key = uniqueName('ub');
      const holder = await completedJob(ts.storage, { uniqueKey: key, type: 't-ub' });
      const fresh = uniqueName('ub-fresh');
      const ids = await queue.enqueueBatch([
        { type: 't-ub', options: { queue: q, unique: key, uniqueFor: 60_000, onDuplicate: 'existing' } },
        { type: 't-ub', options: { queue: q, unique: fresh, uniqueFor: 60_000, onDuplicate: 'existing' } },
        { type: 't-ub', options: { queue: q, unique: key, uniqueFor: 60_000, onDuplicate: 'existing' } },
        { type: 't-ub', options: { queue: q, unique: fresh, uniqueFor: 60_000, onDuplicate: 'existing' } },
      ]);
      assert.deepEqual([ids[0], ids[2]], [holder.id, holder.id]);
      assert.equal(ids[1], ids[3]);
      assert.equal((await queue.stats({ queue: q })).pending, 1);
      await assert.rejects(queue.enqueueBatch([{ type: 't-ub', options: { queue: q, unique: key, uniqueFor: 60_000 } }]), DuplicateJobError);
    });
  });
}
