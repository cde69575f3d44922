/**
 * A worker stopped while it starts, on every driver: `stop()` called at each await point of
 * `start()` (synchronously after `void start()`, after a microtask, after a number of event-loop
 * turns and after a few milliseconds) leaves nothing of the worker running once `stop()` and
 * `start()` have resolved — no schedule slot fired, no handler run, no job claimed, no expired
 * lease reclaimed by its maintenance, and (PostgreSQL) no pooled connection held by its
 * LISTEN subscription. The same holds for SIGTERM during boot in a real child process.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as turn, setTimeout as delay } from 'node:timers/promises';
import pg from 'pg';
import { Queue } from '../../src/queue/queue.js';
import { every } from '../../src/scheduler/schedules.js';
import { PostgresStorage } from '../../src/storage/postgres/postgres-storage.js';
import type { Storage } from '../../src/storage/storage.js';
import { spawnFixture } from '../helpers/child.js';
import { mustGet, runningJob, uniqueName } from '../helpers/factories.js';
import { PG_URL } from '../helpers/postgres-storage.js';
import { sharedStorage } from '../helpers/process-storage.js';
import { storageMatrix, type TestStorage } from '../helpers/storages.js';
import { waitFor } from '../helpers/wait-for.js';

const FIXTURE = new URL('./fixtures/boot-stop-worker.ts', import.meta.url).pathname;

/** Every loop of the worker ticks often, so a loop left running shows within the window. */
const fast = { pollInterval: 20, maintenanceInterval: 20, heartbeatInterval: 20, handleSignals: false } as const;
const PERIOD_MS = 40;
/**
 * How long "nothing happens" is watched after stop() resolved: many periods of every loop
 * (schedule, poll, maintenance). Absence cannot be awaited as an event; it is observed over
 * a window.
 */
const WINDOW_MS = 300;

/** Where `stop()` is called relative to `void start()`. */
interface StopPoint {
  label: string;
  /** Runs between `start()` and `stop()`; undefined: stop() in the same synchronous turn. */
  wait?: () => Promise<unknown>;
}

const turns = async (n: number): Promise<void> => {
  for (let i = 0; i < n; i++) await turn();
};

const STOP_POINTS: StopPoint[] = [
  { label: 'synchronously after void start()' },
  { label: 'after one microtask', wait: () => Promise.resolve() },
  ...[1, 3, 10, 30, 100].map((n) => ({ label: `after ${n} event-loop turns`, wait: () => turns(n) })),
  ...[1, 3, 10, 30].map((ms) => ({ label: `after ${ms} ms`, wait: () => delay(ms) })),
];

/** The storage a worker runs on, and (PostgreSQL) how many pooled connections it holds. */
interface Observed {
  storage: Storage;
  /** Connections checked out of the worker storage's pool; undefined where not observable. */
  checkedOut(): number | undefined;
  close(): Promise<void>;
}

async function observedStorage(ts: TestStorage): Promise<Observed> {
  if (ts.storage instanceof PostgresStorage) {
    const pool = new pg.Pool({ connectionString: PG_URL, max: 4 });
    const storage = new PostgresStorage(pool, { schema: ts.storage.schema });
    return {
      storage,
      checkedOut: () => pool.totalCount - pool.idleCount,
      close: async () => {
        await storage.close();
        await pool.end();
      },
    };
  }
  const storage = await ts.another();
  return { storage, checkedOut: () => undefined, close: async () => {} };
}

async function jobsIn(storage: Storage, queue: string): Promise<number> {
  return (await storage.jobList({ queue, limit: 1000 })).length;
}

for (const [name, make] of storageMatrix()) {
  describe(`worker stopped while it starts (${name})`, () => {
    let ts: TestStorage;
    let obs: Observed;
    before(async () => {
      ts = await make(`worker-lifecycle-${name}`);
      obs = await observedStorage(ts);
    });
    after(async () => {
      await obs.close();
      await ts.cleanup();
    });

    for (const point of STOP_POINTS) for (const pending of [false, true]) {
      const when = pending ? ', a schedule definition still being stored' : '';
      it(`stop() ${point.label}${when}: nothing of the worker runs once stop() and start() resolved`, async () => {
        const queue = new Queue(obs.storage);
        const q = uniqueName('lc');
        const schedule = uniqueName('tick');
        let runs = 0;
        queue.register(schedule, () => void runs++);
        queue.register('lc-work', () => void runs++);
        await queue.schedule(schedule, every(PERIOD_MS), { queue: q });
        const [info] = (await queue.schedules()).filter((s) => s.name === schedule);
        await waitFor(async () => (await ts.storage.clockNow()) >= info!.nextRunAt.getTime(), { message: 'schedule due' });
        await queue.enqueue('lc-work', {}, { queue: q });

        const worker = queue.newWorker({ ...fast, scheduler: true, queues: { [q]: { concurrency: 2 } } });
        // A process usually (re-)defines its schedules as it starts its worker, without awaiting.
        const defining = pending ? queue.schedule(schedule, every(PERIOD_MS), { queue: q }) : undefined;
        const started = worker.start();
        if (point.wait) await point.wait();
        const stopped = worker.stop();
        await Promise.all([stopped, started, defining]);
        assert.equal(obs.checkedOut() ?? 0, 0, 'no pooled connection is held once stop() resolved (the LISTEN connection was given back)');

        // What a left-over loop would act on: a job to claim, an expired lease to reclaim.
        const runsAtStop = runs;
        const late = await queue.enqueue('lc-work', {}, { queue: q });
        const ghost = await runningJob(ts.storage, { queue: uniqueName('lc-ghost') }, { workerId: 'ghost', leaseMs: 1 });
        const jobsAtStop = await jobsIn(ts.storage, q);

        await delay(WINDOW_MS);
        assert.equal(runs, runsAtStop, 'no handler ran after stop() resolved');
        assert.equal(await jobsIn(ts.storage, q), jobsAtStop, 'no schedule slot fired after stop() resolved');
        assert.equal((await mustGet(ts.storage, late)).status, 'pending', 'no job was claimed after stop() resolved');
        assert.equal((await mustGet(ts.storage, ghost.row.id)).status, 'running', 'no maintenance pass ran after stop() resolved');
        assert.equal(obs.checkedOut() ?? 0, 0, 'no pooled connection was taken after stop() resolved');

        assert.equal(await queue.unschedule(schedule), true);
        await ts.storage.jobReclaimExpired({ limit: 1000 });
      });
    }

    it('SIGTERM during boot in a real process: the process stops, fires nothing afterwards and exits by itself', async () => {
      const shared = await sharedStorage(name);
      const child = spawnFixture(FIXTURE, { ...shared.env, SDJ_EVERY_MS: String(PERIOD_MS), SDJ_WINDOW_MS: String(WINDOW_MS) });
      try {
        const report = await child.waitForLine(/^report /);
        const { ranAfterStop, firedAfterStop } = JSON.parse(report.slice('report '.length)) as { ranAfterStop: number; firedAfterStop: number };
        assert.equal(ranAfterStop, 0, 'no handler ran after the signal-triggered stop resolved');
        assert.equal(firedAfterStop, 0, 'no schedule slot fired after the signal-triggered stop resolved');
        const code = await Promise.race([child.exited, delay(10_000).then(() => 'still running 10 s after its report')]);
        assert.equal(code, 0, 'the process exits on its own: nothing (no LISTEN connection, no timer) keeps it alive');
      } finally {
        if (child.proc.exitCode === null && child.proc.signalCode === null) child.proc.kill('SIGKILL');
        await child.exited;
        await shared.cleanup();
      }
    });
  });
}
