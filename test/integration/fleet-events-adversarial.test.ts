/**
 * Fleet events under attack, on every driver of the matrix: a database that hangs on appends
 * (a worker's stop() stays bounded, outcomes and claims go on, the payloads of held events are
 * not kept alive), a stream left at once (no presence row outlives it), a slow consumer that
 * also falls behind the pruned horizon (every missed event counted), eight relays appending at
 * once (dense ids, nothing lost or doubled, each origin in order) and, on PostgreSQL, a LISTEN
 * connection terminated under a subscriber.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setImmediate as tick } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { EventHub } from '../../src/core/events.js';
import { encodeEvent } from '../../src/core/fleet-codec.js';
import { EventRelay } from '../../src/core/fleet-relay.js';
import { silentLogger } from '../../src/internal/logger.js';
import { Queue } from '../../src/queue/queue.js';
import type { EventRow } from '../../src/storage/storage.js';
import type { FleetGapEvent, Job } from '../../src/types.js';
import { FaultyStorage } from '../helpers/faulty-storage.js';
import { uniqueName } from '../helpers/factories.js';
import { storageMatrix, type TestStorage } from '../helpers/storages.js';
import { collect } from '../helpers/fleet-events.js';
import { waitFor } from '../helpers/wait-for.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Settles with `p`, or rejects when it takes longer than `ms`. */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} took over ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** A job snapshot as events carry it, with `args` given. */
function jobWith(id: string, args: unknown): Job {
  const at = new Date();
  return { id, type: 't', queue: 'q', status: 'completed', args, result: null, meta: {}, attempt: 1, maxAttempts: 1, createdAt: at, runAt: at } as unknown as Job;
}

for (const [dialect, make] of storageMatrix()) {
  describe(`fleet events under attack (${dialect})`, () => {
    let ts: TestStorage;
    before(async () => {
      ts = await make(`fleet-adv-${dialect}`);
    });
    after(async () => {
      await ts.cleanup();
    });

    it("an append that hangs holds neither outcomes, claims nor the worker's stop() (bounded wait)", async () => {
      const faulty = new FaultyStorage(await ts.another());
      faulty.fail({ method: 'eventAppendMany', times: Infinity, respond: () => new Promise<never>(() => {}) });
      const queue = new Queue(faulty.storage);
      const q = uniqueName('hang');
      queue.register('ok', async (args: { n: number }) => args.n);
      const stream = queue.events({ fleet: true });
      const worker = queue.newWorker({ queues: { [q]: { concurrency: 4 } }, pollInterval: 50, maintenanceInterval: 100, drainTimeout: 500, handleSignals: false });
      const run = worker.start();
      try {
        const ids = await queue.enqueueBatch(Array.from({ length: 10 }, (_, n) => ({ type: 'ok', args: { n }, options: { queue: q } })));
        for (const id of ids) assert.equal((await queue.waitForJob(id, { timeout: 10_000 })).status, 'completed');
        await waitFor(() => faulty.calls('eventAppendMany') > 0, { message: 'an append is in flight (and hangs)' });
        const t0 = Date.now();
        await within(
          worker.stop().then(() => run),
          15_000,
          'worker.stop() with a hanging append',
        );
        assert.ok(Date.now() - t0 < 10_000, `stop took ${Date.now() - t0} ms`);
      } finally {
        await stream.return!();
      }
    });

    it('events waiting for a hanging append do not keep the jobs’ payloads alive', async () => {
      const faulty = new FaultyStorage(await ts.another());
      faulty.fail({ method: 'eventAppendMany', times: Infinity, respond: () => new Promise<never>(() => {}) });
      const hub = new EventHub(silentLogger);
      const relay = new EventRelay(faulty.storage, hub, silentLogger, { flushDelayMs: 1 });
      const release = relay.retainLocal(Promise.resolve());
      const refs: WeakRef<object>[] = [];
      try {
        const emitBig = (n: number): void => {
          for (let i = 0; i < n; i++) {
            const args = { blob: `${i}:`.padEnd(256 * 1024, 'x') };
            refs.push(new WeakRef(args));
            hub.emit({ type: 'job.completed', job: jobWith(`big-${refs.length}`, args), at: new Date() });
          }
        };
        emitBig(1);
        await waitFor(() => faulty.calls('eventAppendMany') > 0, { message: 'the first append hangs' });
        emitBig(40); // 10 MB of args, all waiting behind the hung append
        await tick();
        await tick();
        gc();
        await tick();
        gc();
        const alive = refs.filter((r) => r.deref() !== undefined).length;
        assert.ok(alive <= 1, `${alive} of ${refs.length} job payloads are still held by the relay`);
      } finally {
        release();
      }
    });

    it('leaving the loop while the first beat is in flight leaves no presence row behind', async () => {
      const real = await ts.another();
      const faulty = new FaultyStorage(real);
      let beatsDone = 0;
      faulty.fail({
        method: 'eventSubscriberBeat',
        times: Infinity,
        respond: async (p) => {
          await new Promise((resolve) => setTimeout(resolve, 300));
          const r = await real.eventSubscriberBeat(p);
          beatsDone++;
          return r;
        },
      });
      const queue = new Queue(faulty.storage);
      const stream = queue.events({ fleet: true });
      await waitFor(() => faulty.calls('eventSubscriberBeat') > 0, { message: 'the first beat is sent' });
      await stream.return!();
      await waitFor(() => beatsDone > 0, { message: 'the beat in flight completes' });
      assert.equal(await ts.storage.eventSubscribersActive(), 0, 'no presence row outlives the stream');
    });

    it('leaving the loop on a hung database returns within a few seconds, and the stream then ends', async () => {
      const faulty = new FaultyStorage(await ts.another());
      const queue = new Queue(faulty.storage);
      const stream = queue.events({ fleet: true, bufferSize: 1 });
      try {
        await waitFor(() => faulty.calls('eventReadAfter') > 0, { message: 'the stream reads' });
        await ts.storage.eventAppendMany({ events: ['a', 'b', 'c'].map((id) => encodeEvent({ type: 'job.cancelled', jobId: id, at: new Date() }, 'p')!) });
        await waitFor(() => faulty.calls('eventReadAfter') > 3, { message: 'the stream read them (buffer overflowed, nobody consuming)' });
      } finally {
        faulty.fail({ method: 'eventSubscriberBeat', times: Infinity, respond: () => new Promise<never>(() => {}) });
        faulty.fail({ method: 'eventSubscriberRemove', times: Infinity, respond: () => new Promise<never>(() => {}) });
        await within(stream.return!(), 6_000, 'return() on a hung database');
      }
      assert.deepEqual(await stream.next(), { value: undefined, done: true }, 'no stale gap notice after the end');
    });

    it('a pruned-gap notice dropped for a slow consumer still counts every event it stood for', async () => {
      const real = await ts.another();
      const faulty = new FaultyStorage(real);
      let held = true;
      const reads: number[] = [];
      faulty.fail({
        method: 'eventReadAfter',
        times: Infinity,
        respond: async (p) => {
          if (held) return [];
          const rows = await real.eventReadAfter(p);
          reads.push(rows.length);
          return rows;
        },
      });
      const queue = new Queue(faulty.storage);
      const stream = queue.events({ fleet: true, bufferSize: 1 });
      try {
        await waitFor(() => faulty.calls('eventReadAfter') > 0, { message: 'the stream has its starting point and reads' });
        const items = Array.from({ length: 20 }, (_, i) => encodeEvent({ type: 'job.cancelled', jobId: `gone-${i}`, at: new Date() }, 'test-producer')!);
        await ts.storage.eventAppendMany({ events: items });
        await ts.storage.eventPrune({ keep: 5 });
        held = false;
        await waitFor(() => reads.some((n) => n > 0), { message: 'the stream read the rest (nobody consuming yet)' });
        const seen = await collect(stream, (s) => s.some((e) => e.type === 'job.cancelled' && e.jobId === 'gone-19'));
        const missed = seen.filter((e): e is FleetGapEvent => e.type === 'events.gap').reduce((n, g) => n + g.missed, 0);
        const got = seen.filter((e) => e.type === 'job.cancelled').length;
        assert.equal(missed + got, 20, `gaps ${JSON.stringify(seen.filter((e) => e.type === 'events.gap'))} + ${got} delivered`);
      } finally {
        await stream.return!();
      }
    });

    it('eight relays appending at once: dense ids, nothing lost or doubled, each origin in order', async () => {
      const before = (await ts.storage.eventSubscriberBeat({ id: uniqueName('peek'), ttlMs: 1 })).headId;
      const relays: { relay: EventRelay; hub: EventHub; release: () => void }[] = [];
      for (let i = 0; i < 8; i++) {
        const hub = new EventHub(silentLogger);
        const relay = new EventRelay(await ts.another(), hub, silentLogger, { flushDelayMs: 1, flushMaxEvents: 37, pruneEveryMs: 3_600_000 });
        relays.push({ relay, hub, release: relay.retainLocal(Promise.resolve()) });
      }
      const perRelay = 300;
      try {
        for (let n = 0; n < perRelay; n += 25) {
          for (const { hub } of relays) for (let k = n; k < n + 25; k++) hub.emit({ type: 'job.cancelled', jobId: `c-${k}`, at: new Date() });
          await tick();
        }
        await Promise.all(relays.map(({ relay }) => relay.flush()));
        await waitFor(async () => (await ts.storage.eventSubscriberBeat({ id: uniqueName('peek'), ttlMs: 1 })).headId >= before + 8 * perRelay);
        const rows: EventRow[] = [];
        for (let after = before; ; ) {
          const r = await ts.storage.eventReadAfter({ afterId: after, limit: 1_000 });
          if (r.length === 0) break;
          rows.push(...r);
          after = r[r.length - 1]!.id;
        }
        assert.equal(rows.length, 8 * perRelay, 'every event stored once');
        rows.forEach((r, i) => assert.equal(r.id, before + 1 + i, 'dense ids'));
        for (const { relay } of relays) {
          const mine = rows.filter((r) => r.origin === relay.origin).map((r) => r.jobId);
          assert.deepEqual(mine, Array.from({ length: perRelay }, (_, k) => `c-${k}`), 'in production order');
        }
        assert.ok(rows.every((r) => r.type !== 'events.gap'), 'no relay dropped anything');
      } finally {
        for (const { release } of relays) release();
      }
    });

    if (dialect === 'postgres') {
      it('a LISTEN connection terminated under a subscriber: the stream keeps delivering', async () => {
        const { pgAdmin } = await import('../helpers/postgres-storage.js');
        const s = await ts.another();
        const queue = new Queue(s);
        const stream = queue.events({ fleet: true });
        try {
          const channel = `sdjev_${(s as unknown as { schema: string }).schema}`;
          const listeners = async (): Promise<{ pid: number }[]> =>
            pgAdmin<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE query = $1 AND datname = current_database()", [`LISTEN "${channel}"`]);
          const first = await waitFor(async () => ((await listeners()).length > 0 ? await listeners() : undefined), { message: 'the stream listens' });
          for (const { pid } of first) await pgAdmin('SELECT pg_terminate_backend($1)', [pid]);
          const ids: string[] = [];
          for (let i = 0; i < 3; i++) {
            const items = [encodeEvent({ type: 'job.cancelled', jobId: `k-${i}`, at: new Date() }, 'test-producer')!];
            await ts.storage.eventAppendMany({ events: items });
            ids.push(`k-${i}`);
          }
          const seen = await collect(stream, (x) => ids.every((id) => x.some((e) => e.type === 'job.cancelled' && e.jobId === id)), 10_000);
          assert.ok(seen.every((e) => e.type !== 'events.gap'));
          await waitFor(async () => (await listeners()).some((l) => !first.some((f) => f.pid === l.pid)), { message: 'the listener reconnects', timeout: 10_000 });
        } finally {
          await stream.return!();
        }
      });
    }
  });
}
