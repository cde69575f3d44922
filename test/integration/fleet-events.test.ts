/**
 * Fleet events in one process, on every driver of the matrix: `queue.events({ fleet: true })`
 * read back from the storage's change feed. With no subscriber anywhere the relay writes nothing
 * (storage calls counted through a wrapping storage) and asks about subscribers at a bounded rate;
 * a stream sees its own process's job events in order per job with their origin; a presence row
 * that expires switches the relay off; a slow consumer's buffer stays bounded (oldest dropped,
 * counted in an `events.gap`); the relay prunes the feed; a subscriber left behind the pruned
 * horizon is told how many it missed; odd text survives and huge payloads are bounded; bad
 * options are refused. Cross-process delivery: test/crash/fleet-events.test.ts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { InvalidArgumentError } from '../../src/errors.js';
import { EventHub } from '../../src/core/events.js';
import { encodeEvent } from '../../src/core/fleet-codec.js';
import { EventRelay, RELAY_DEFAULTS } from '../../src/core/fleet-relay.js';
import { silentLogger } from '../../src/internal/logger.js';
import { Queue } from '../../src/queue/queue.js';
import type { EventPruneParams } from '../../src/storage/storage.js';
import type { FleetEvent, FleetGapEvent, FleetJobEvent } from '../../src/types.js';
import type { Worker } from '../../src/worker/worker.js';
import { FaultyStorage } from '../helpers/faulty-storage.js';
import { uniqueName } from '../helpers/factories.js';
import { storageMatrix, type TestStorage } from '../helpers/storages.js';
import { collect } from '../helpers/fleet-events.js';
import { waitFor } from '../helpers/wait-for.js';

/** The job id an event is about. */
function jobIdOf(e: FleetEvent): string | undefined {
  if (e.type === 'events.gap') return undefined;
  return 'job' in e ? e.job.id : 'jobId' in e ? e.jobId : undefined;
}

/** A started worker of `queue` with quick maintenance (it pokes the relay on each tick). */
function startWorker(queue: Queue, q: string): { worker: Worker; stop: () => Promise<void> } {
  const worker = queue.newWorker({ queues: { [q]: { concurrency: 5 } }, pollInterval: 50, maintenanceInterval: 100, handleSignals: false });
  const done = worker.start();
  return { worker, stop: async () => (await worker.stop(), await done) };
}

for (const [dialect, make] of storageMatrix()) {
  describe(`fleet events in one process (${dialect})`, () => {
    let ts: TestStorage;
    before(async () => {
      ts = await make(`fleet-events-${dialect}`);
    });
    after(async () => {
      await ts.cleanup();
    });

    it('with no subscriber anywhere, running jobs writes nothing to the feed and asks about subscribers at a bounded rate', async () => {
      const faulty = new FaultyStorage(await ts.another());
      const queue = new Queue(faulty.storage);
      const q = uniqueName('quiet');
      queue.register('ok', async () => 'done');
      const w = startWorker(queue, q);
      const started = Date.now();
      try {
        const ids = await queue.enqueueBatch(Array.from({ length: 20 }, () => ({ type: 'ok', options: { queue: q } })));
        for (const id of ids) await queue.waitForJob(id, { timeout: 15_000 });
        for (let i = 0; i < 10; i++) await queue.enqueue('ok', {}, { queue: q });
        await waitFor(async () => (await queue.stats({ queue: q })).completed === 30);
      } finally {
        await w.stop();
      }
      const seconds = (Date.now() - started) / 1000;
      assert.equal(faulty.calls('eventAppendMany'), 0, 'no relay write');
      assert.equal(faulty.calls('eventPrune'), 0, 'no prune');
      assert.equal(queue.core.relay?.active, false);
      const checks = faulty.calls('eventSubscribersActive');
      assert.ok(checks >= 1, 'presence was asked');
      assert.ok(checks <= Math.ceil(seconds / (RELAY_DEFAULTS.presenceCheckMs / 1000)) + 1, `${checks} presence checks in ${seconds.toFixed(1)} s`);
    });

    it("a fleet stream sees this process's job events in order per job, with their origin", async () => {
      const queue = new Queue(await ts.another());
      const q = uniqueName('mine');
      queue.register('ok', async (args: { n: number }) => ({ doubled: args.n * 2 }));
      queue.register('boom', async () => {
        throw new Error('it broke');
      });
      const stream = queue.events({ fleet: true });
      const w = startWorker(queue, q);
      try {
        const ok = await queue.enqueue('ok', { n: 21 }, { queue: q });
        const boom = await queue.enqueue('boom', {}, { queue: q, retries: 0 });
        const seen = await collect(stream, (s) => s.some((e) => e.type === 'job.completed' && e.job.id === ok) && s.some((e) => e.type === 'job.failed' && e.job.id === boom));
        const origin = queue.core.relay!.origin;
        const of = (id: string): string[] => seen.filter((e) => jobIdOf(e) === id).map((e) => e.type);
        assert.deepEqual(of(ok), ['job.enqueued', 'job.started', 'job.completed']);
        assert.deepEqual(of(boom), ['job.enqueued', 'job.started', 'job.failed']);
        for (const e of seen) assert.equal((e as FleetJobEvent).origin, origin);
        const completed = seen.find((e) => e.type === 'job.completed') as Extract<FleetJobEvent, { type: 'job.completed' }>;
        assert.deepEqual(completed.job.result, { doubled: 42 });
        assert.deepEqual(completed.job.args, { n: 21 });
        assert.ok(completed.at instanceof Date && completed.job.startedAt instanceof Date && completed.job.createdAt instanceof Date);
        assert.equal(completed.job.completedAt?.getTime(), completed.at.getTime());
        const failed = seen.find((e) => e.type === 'job.failed') as Extract<FleetJobEvent, { type: 'job.failed' }>;
        assert.equal(failed.error, 'it broke');
        assert.equal(failed.job.status, 'failed');
      } finally {
        await stream.return!();
        await w.stop();
      }
      await waitFor(() => !queue.core.relay!.active, { message: 'the relay stops once the last local stream ended and no presence row is left' });
    });

    it('a presence row that expires switches the relay off: no more appends', async () => {
      const faulty = new FaultyStorage(await ts.another());
      const queue = new Queue(faulty.storage);
      const q = uniqueName('expiry');
      queue.register('ok', async () => null);
      const w = startWorker(queue, q);
      try {
        const sub = uniqueName('sub');
        await ts.storage.eventSubscriberBeat({ id: sub, ttlMs: 1_500 });
        await waitFor(() => queue.core.relay!.active, { message: 'the relay notices the subscriber', timeout: 8_000 });
        const id = await queue.enqueue('ok', {}, { queue: q });
        await queue.waitForJob(id, { timeout: 10_000 });
        await waitFor(() => faulty.calls('eventAppendMany') > 0, { message: 'events are relayed' });
        await waitFor(() => !queue.core.relay!.active, { message: 'the relay notices the expiry', timeout: 8_000 });
        await queue.core.relay!.flush();
        const appends = faulty.calls('eventAppendMany');
        const more = await queue.enqueueBatch(Array.from({ length: 5 }, () => ({ type: 'ok', options: { queue: q } })));
        for (const m of more) await queue.waitForJob(m, { timeout: 10_000 });
        await queue.core.relay!.flush();
        assert.equal(faulty.calls('eventAppendMany'), appends, 'no append after the subscriber expired');
      } finally {
        await w.stop();
      }
    });

    it("a slow consumer's buffer stays bounded: the oldest are dropped and counted in an events.gap", async () => {
      const queue = new Queue(await ts.another());
      const stream = queue.events({ fleet: true, bufferSize: 5 });
      try {
        const q = uniqueName('slow');
        const ids = await queue.enqueueBatch(Array.from({ length: 30 }, () => ({ type: 'never-run', options: { queue: q } })));
        const seen = await collect(stream, (s) => {
          const missed = s.filter((e): e is FleetGapEvent => e.type === 'events.gap').reduce((n, g) => n + g.missed, 0);
          return missed + s.filter((e) => e.type === 'job.enqueued').length >= 30;
        });
        const gaps = seen.filter((e): e is FleetGapEvent => e.type === 'events.gap');
        const got = seen.filter((e) => e.type === 'job.enqueued').map((e) => jobIdOf(e)!);
        assert.ok(gaps.length >= 1 && gaps.every((g) => g.reason === 'overflow'), JSON.stringify(gaps));
        assert.equal(gaps.reduce((n, g) => n + g.missed, 0) + got.length, 30);
        assert.ok(got.length <= 6, `delivered ${got.length}: at most the buffer (5) plus one handed straight to a waiting consumer`);
        assert.deepEqual(got.slice(-5), ids.slice(-5), 'the newest are kept');
      } finally {
        await stream.return!();
      }
    });

    it('the relay prunes the feed to its bounds (defaults: 10 minutes, 100000 events)', async () => {
      const faulty = new FaultyStorage(await ts.another());
      const prunes: EventPruneParams[] = [];
      faulty.fail({
        method: 'eventPrune',
        times: Infinity,
        when: (p) => {
          prunes.push(p);
          return false;
        },
      });
      const queue = new Queue(faulty.storage);
      const stream = queue.events({ fleet: true });
      try {
        await queue.enqueue('never-run', {}, { queue: uniqueName('prune') });
        await waitFor(() => prunes.length > 0, { message: 'a flush prunes' });
        assert.deepEqual(prunes[0], { olderThanMs: 600_000, keep: 100_000 });
      } finally {
        await stream.return!();
      }
      // With small bounds the feed stays within them.
      const s = await ts.another();
      const hub = new EventHub(silentLogger);
      const relay = new EventRelay(s, hub, silentLogger, { feedMaxEvents: 10, pruneEveryMs: 0, flushDelayMs: 1 });
      const release = relay.retainLocal(Promise.resolve());
      try {
        for (let round = 0; round < 5; round++) {
          for (let i = 0; i < 8; i++) hub.emit({ type: 'job.cancelled', jobId: `j-${round}-${i}`, at: new Date() });
          await relay.flush();
        }
        const { headId } = await s.eventSubscriberBeat({ id: uniqueName('peek'), ttlMs: 1 });
        const left = await s.eventReadAfter({ afterId: 0, limit: 1_000 });
        assert.equal(left.length, 10, 'the newest 10 ids are kept');
        assert.equal(left[left.length - 1]!.id, headId);
      } finally {
        release();
      }
    });

    it('a subscriber left behind the pruned horizon is told how many events it missed', async () => {
      const faulty = new FaultyStorage(await ts.another());
      const queue = new Queue(faulty.storage);
      const hold = faulty.fail({ method: 'eventReadAfter', times: Infinity, respond: () => [] });
      const stream = queue.events({ fleet: true });
      try {
        await waitFor(() => faulty.calls('eventReadAfter') > 0, { message: 'the stream has its starting point and reads' });
        const origin = 'test-producer';
        const items = Array.from({ length: 20 }, (_, i) => encodeEvent({ type: 'job.cancelled', jobId: `gone-${i}`, at: new Date() }, origin)!);
        await ts.storage.eventAppendMany({ events: items });
        await ts.storage.eventPrune({ keep: 5 });
        hold.remove();
        const seen = await collect(stream, (s) => s.filter((e) => e.type === 'job.cancelled').length >= 5);
        assert.deepEqual(seen[0], { type: 'events.gap', missed: 15, reason: 'pruned', at: seen[0]!.at });
        assert.deepEqual(seen.slice(1).map(jobIdOf), [15, 16, 17, 18, 19].map((i) => `gone-${i}`));
        assert.ok(seen.slice(1).every((e) => (e as FleetJobEvent).origin === origin));
      } finally {
        await stream.return!();
      }
    });

    it('NUL, lone surrogates and emoji survive; huge errors and payloads are bounded', async () => {
      const queue = new Queue(await ts.another(), { maxPayloadBytes: 4 * 1024 * 1024 });
      const q = uniqueName('odd');
      const odd = 'nul:\u0000 lone:\ud800 low:\udc00 pair:😀';
      queue.register('echo', async (args: { s: string }) => args.s);
      queue.register('fail', async () => {
        throw new Error(`${odd} ${'x'.repeat(100_000)}`);
      });
      queue.register('big', async () => 'y'.repeat(200_000));
      const stream = queue.events({ fleet: true });
      const w = startWorker(queue, q);
      try {
        const echo = await queue.enqueue('echo', { s: odd }, { queue: q });
        const fail = await queue.enqueue('fail', {}, { queue: q, retries: 0 });
        const big = await queue.enqueue('big', {}, { queue: q, meta: { tag: 'kept?' } });
        const terminal = (s: FleetEvent[], id: string): boolean => s.some((e) => (e.type === 'job.completed' || e.type === 'job.failed') && e.job.id === id);
        const seen = await collect(stream, (s) => terminal(s, echo) && terminal(s, fail) && terminal(s, big));
        const done = (id: string): Extract<FleetJobEvent, { type: 'job.completed' | 'job.failed' }> =>
          seen.find((e) => (e.type === 'job.completed' || e.type === 'job.failed') && e.job.id === id) as Extract<FleetJobEvent, { type: 'job.completed' | 'job.failed' }>;
        const e1 = done(echo);
        assert.deepEqual(e1.job.args, { s: odd });
        assert.equal(e1.job.result, odd, 'the text survives exactly');
        const e2 = done(fail);
        assert.equal(e2.type, 'job.failed');
        assert.ok(e2.type === 'job.failed' && e2.error.length <= 8192, 'the error text is bounded');
        assert.ok(e2.type === 'job.failed' && e2.error.startsWith('nul:\ufffd lone:\ufffd low:\ufffd pair:😀'), 'as stored on the job: NUL and lone surrogates replaced');
        const stored = await queue.getJob(fail);
        assert.ok(e2.type === 'job.failed' && stored?.lastError === e2.error, 'the same text as the job keeps');
        const e3 = done(big);
        assert.equal(e3.type, 'job.completed');
        assert.equal(e3.job.result, undefined, 'a result that would make the event too big is left out');
        assert.equal(e3.job.args, undefined);
        assert.deepEqual(e3.job.meta, {});
        assert.equal(e3.job.id, big);
        assert.equal(e3.job.status, 'completed');
      } finally {
        await stream.return!();
        await w.stop();
      }
    });

    it('bad fleet options are refused with InvalidArgumentError before anything starts', async () => {
      const faulty = new FaultyStorage(await ts.another());
      const queue = new Queue(faulty.storage);
      const bad: unknown[] = [{ fleet: true, bufferSize: 0 }, { fleet: true, bufferSize: 1.5 }, { fleet: true, bufferSize: 2_000_000 }, { fleet: true, other: 1 }, { fleet: 'yes' }];
      for (const o of bad) assert.throws(() => queue.events(o as { fleet: true }), InvalidArgumentError, JSON.stringify(o));
      assert.equal(faulty.calls('eventSubscriberBeat'), 0);
      assert.equal(queue.core.relay?.active, false);
    });
  });
}
