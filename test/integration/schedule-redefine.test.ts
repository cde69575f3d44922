/**
 * Schedule definitions racing with fires, through the public API on every driver: processes
 * that start together all define their schedules, and a definition may land after another
 * process already defined and fired the first slot. A slot must still fire once.
 *
 * The first two tests stage that interleaving exactly (a storage whose `scheduleUpsert` waits
 * at a gate, and an injected clock); the third has two processes redefine one schedule many
 * times, with alternating specs, while both run schedulers.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Queue } from '../../src/queue/queue.js';
import { every, type Schedule } from '../../src/scheduler/schedules.js';
import type { Storage } from '../../src/storage/storage.js';
import { clockedDb, iso, jobsOf, slotOf, uniqueSlots } from '../helpers/schedule-helpers.js';
import { storageMatrix } from '../helpers/storages.js';
import { waitFor } from '../helpers/wait-for.js';

const fast = { pollInterval: 20, maintenanceInterval: 50, handleSignals: false } as const;
const MIN = 60_000;
/** A ten-minute boundary in the future (any will do: the clock is injected). */
const F = Date.UTC(2032, 0, 1);

/** A storage whose `scheduleUpsert` calls wait until `open()`; `reached` resolves at the first such call. */
function gatedUpserts(inner: Storage): { storage: Storage; reached: Promise<void>; open: () => void } {
  let open = (): void => {};
  let arrive = (): void => {};
  const gate = new Promise<void>((resolve) => (open = resolve));
  const reached = new Promise<void>((resolve) => (arrive = resolve));
  const storage = new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop === 'scheduleUpsert') {
        return async (p: Parameters<Storage['scheduleUpsert']>[0]) => {
          arrive();
          await gate;
          return target.scheduleUpsert(p);
        };
      }
      const value: unknown = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { storage, reached, open };
}

for (const [dialect, make] of storageMatrix()) {
  describe(`schedule definitions racing with fires (${dialect})`, () => {
    /**
     * Process B starts defining first (its clock read and first-slot computation happen, then its
     * write is held); process A defines and fires the first slot; B's write lands late with
     * `second`. Returns the fired slots once the slot `until` has fired too.
     */
    async function race(label: string, first: Schedule, second: Schedule, until: number): Promise<number[]> {
      const db = await clockedDb(dialect, `${label}-${dialect}`);
      const shift = { ms: 0 };
      const clock = (): number => Date.now() + shift.ms;
      const setNow = (t: number): void => void (shift.ms = t - Date.now());
      const started: { stop(): Promise<void>; running: Promise<void> }[] = [];
      const start = (q: Queue): void => {
        const w = q.newWorker({ ...fast, scheduler: true, queues: { race: { concurrency: 2 } } });
        started.push({ stop: () => w.stop(), running: w.start() });
      };
      try {
        setNow(F + 9.5 * MIN);
        const gated = gatedUpserts(await db.open(clock));
        const qa = new Queue(await db.open(clock));
        const qb = new Queue(gated.storage);
        for (const q of [qa, qb]) q.register('race', async () => {});
        const late = qb.schedule('race', second, { queue: 'race', missed: 'all' });
        await gated.reached;
        await qa.schedule('race', first, { queue: 'race', missed: 'all' });
        start(qa);
        setNow(F + 10 * MIN + 500);
        await waitFor(async () => (await jobsOf(qa, 'race')).some((j) => slotOf(j) === F + 10 * MIN && j.status === 'completed'), { message: 'A fired the first slot' });
        gated.open();
        await late;
        start(qb);
        setNow(until + 500);
        await waitFor(async () => (await jobsOf(qa, 'race')).some((j) => slotOf(j) === until && j.status === 'completed'), { message: `the slot ${iso(until)} fired` });
        for (const w of started) await w.stop();
        await Promise.all(started.map((w) => w.running));
        started.length = 0;
        return uniqueSlots(await jobsOf(qa, 'race'));
      } finally {
        for (const w of started) await w.stop();
        await Promise.all(started.map((w) => w.running));
        await db.cleanup();
      }
    }

    it('a definition of the same schedule that lands after the first slot fired does not fire it again', async () => {
      const slots = await race('redefine-same', every(10 * MIN), every(10 * MIN), F + 20 * MIN);
      assert.deepEqual(slots.map(iso), [F + 10 * MIN, F + 20 * MIN].map(iso));
    });

    it('a changed schedule that lands after the first slot fired starts after that slot', async () => {
      // every(5 min) computed before the fire starts at the fired slot itself: taken after it instead.
      const slots = await race('redefine-changed', every(10 * MIN), every(5 * MIN), F + 15 * MIN);
      assert.deepEqual(slots.map(iso), [F + 10 * MIN, F + 15 * MIN].map(iso));
    });

    it('two processes redefining one schedule many times while both schedule: every slot fires once', async () => {
      const ts = await make(`redefine-stress-${dialect}`);
      try {
        const queues = [new Queue(ts.storage), new Queue(await ts.another())] as const;
        for (const q of queues) q.register('churn', async () => {});
        const specs = [every(50), every(100), every(150)];
        const workers = queues.map((q) => q.newWorker({ ...fast, scheduler: true, queues: { churn: { concurrency: 4 } } }));
        const running = workers.map((w) => w.start());
        try {
          for (let round = 0; round < 30; round++) {
            const before = (await jobsOf(queues[0], 'churn')).length;
            // Both processes define at once: the same spec on even rounds, different ones on odd rounds.
            await Promise.all(queues.map((q, i) => q.schedule('churn', specs[(round + (round % 2) * i) % specs.length]!, { queue: 'churn', missed: 'all' })));
            await waitFor(async () => (await jobsOf(queues[0], 'churn')).length > before, { message: `a fire after round ${round}` });
          }
        } finally {
          await Promise.all(workers.map((w) => w.stop()));
          await Promise.all(running);
        }
        const slots = uniqueSlots(await jobsOf(queues[0], 'churn'));
        assert.ok(slots.length >= 30, `${slots.length} slots fired`);
        for (const s of slots) assert.equal(s % 50, 0, `slot ${iso(s)} is a slot of one of the specs`);
      } finally {
        await ts.cleanup();
      }
    });
  });
}
