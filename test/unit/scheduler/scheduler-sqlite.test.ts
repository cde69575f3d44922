/**
 * The Scheduler service against a real SQLite file shared by two storages (two "processes"):
 * every slot fires once, missed-slot policies, retry of failed fires, overlap via unique keys,
 * and the timer loop's lifecycle.
 */
import { after, afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Scheduler, type ScheduleFired } from '../../../src/scheduler/scheduler.js';
import { cron, every, type Schedule } from '../../../src/scheduler/schedules.js';
import type { MissedPolicy } from '../../../src/scheduler/missed.js';
import { SqliteStorage } from '../../../src/storage/sqlite/sqlite-storage.js';
import type { JobInsert, JobRow, ScheduleRow, Storage } from '../../../src/storage/storage.js';
import { jobInsert, uniqueName } from '../../helpers/factories.js';
import { removeSqliteFiles, tempSqlitePath } from '../../helpers/sqlite-storage.js';
import { waitFor } from '../../helpers/wait-for.js';

const T0 = Date.parse('2027-01-01T00:00:00Z');
const MIN = 60_000;

/** Two storages on one temp file with a shared, settable clock. */
interface Env {
  clock: { now: number };
  a: SqliteStorage;
  b: SqliteStorage;
  path: string;
}

let env: Env;
const schedulers: Scheduler[] = [];

beforeEach(async () => {
  const clock = { now: T0 };
  const path = tempSqlitePath('scheduler');
  const a = new SqliteStorage(path, { clock: () => clock.now });
  await a.migrate();
  const b = new SqliteStorage(path, { clock: () => clock.now });
  env = { clock, a, b, path };
});

afterEach(async () => {
  for (const s of schedulers.splice(0)) await s.stop();
  await env.a.close();
  await env.b.close();
  removeSqliteFiles(env.path);
});

after(() => {
  assert.equal(schedulers.length, 0, 'every scheduler stopped');
});

/** The jobs a fire builds: one per slot, type = schedule name, slot instant in meta. */
function slotJob(row: ScheduleRow, slotAt: number, extra: Partial<JobInsert> = {}): JobInsert {
  return jobInsert({ type: row.name, metaJson: JSON.stringify({ slotAt }), ...extra });
}

interface MakeOpts {
  buildJobs?: (row: ScheduleRow, slotAt: number) => JobInsert[];
  intervalMs?: number;
  /** Receives debug messages. */
  debug?: (message: string) => void;
  onFired?: (fire: ScheduleFired) => void;
}

function makeScheduler(storage: Storage, opts: MakeOpts = {}): Scheduler {
  const debug = opts.debug ?? (() => {});
  const s = new Scheduler({
    storage,
    buildJobs: opts.buildJobs ?? ((row, slotAt) => [slotJob(row, slotAt)]),
    intervalMs: opts.intervalMs ?? 1000,
    logger: { debug, info() {}, warn() {}, error() {} },
    ...(opts.onFired ? { onFired: opts.onFired } : {}),
  });
  schedulers.push(s);
  return s;
}

/** Stores a schedule whose first slot is the next one after the storage's now (as `queue.schedule` does). */
async function define(storage: Storage, schedule: Schedule, missed?: MissedPolicy): Promise<string> {
  const name = uniqueName('sched');
  const now = await storage.clockNow();
  await storage.scheduleUpsert({
    name,
    specJson: JSON.stringify(schedule),
    optionsJson: JSON.stringify(missed === undefined ? {} : { missed }),
    nextRunAt: schedule.next(new Date(now)).getTime(),
  });
  return name;
}

async function jobsOf(storage: Storage, type: string): Promise<JobRow[]> {
  return storage.jobList({ type, limit: 10_000, order: 'asc' });
}

const slotsOf = (jobs: JobRow[]): number[] => jobs.map((j) => (JSON.parse(j.metaJson ?? '{}') as { slotAt: number }).slotAt).sort((x, y) => x - y);

async function row(storage: Storage, name: string): Promise<ScheduleRow> {
  const r = (await storage.scheduleList()).find((s) => s.name === name);
  assert.ok(r, `schedule ${name} exists`);
  return r;
}

describe('Scheduler.tick on SQLite', () => {
  it('a brand-new schedule first fires at its next slot, not at registration', async () => {
    env.clock.now = T0 + 30_000;
    const name = await define(env.a, every(MIN));
    const fired: ScheduleFired[] = [];
    const s = makeScheduler(env.a, { onFired: (f) => fired.push(f) });
    assert.equal(await s.tick(), 0);
    assert.equal((await row(env.a, name)).nextRunAt, T0 + MIN);
    env.clock.now = T0 + MIN;
    assert.equal(await s.tick(), 1);
    const jobs = await jobsOf(env.a, name);
    assert.deepEqual(slotsOf(jobs), [T0 + MIN]);
    assert.deepEqual(fired, [{ name, slotAt: T0 + MIN, slots: [T0 + MIN], jobIds: [jobs[0]!.id], queues: ['default'], nextRunAt: T0 + 2 * MIN }]);
    const r = await row(env.a, name);
    assert.equal(r.nextRunAt, T0 + 2 * MIN);
    assert.equal(r.lastRunAt, T0 + MIN);
    assert.equal(typeof r.lastJobId, 'string');
  });

  it('two schedulers on one file fire each slot exactly once', async () => {
    const names = [await define(env.a, every(MIN)), await define(env.a, cron('*/2 * * * *')), await define(env.a, every(15_000))];
    let lost = 0;
    const debug = (m: string): void => {
      if (m === 'schedule slot already fired elsewhere') lost++;
    };
    const sa = makeScheduler(env.a, { debug });
    const sb = makeScheduler(env.b, { debug });
    let total = 0;
    // 20 minutes in 7.5 s steps, both schedulers ticking concurrently at each step.
    for (let now = T0; now <= T0 + 20 * MIN; now += 7_500) {
      env.clock.now = now;
      const [x, y] = await Promise.all([sa.tick(), sb.tick()]);
      total += x + y;
    }
    const expected = [20, 10, 80];
    for (const [i, name] of names.entries()) {
      const slots = slotsOf(await jobsOf(env.a, name));
      assert.equal(slots.length, expected[i], name);
      assert.equal(new Set(slots).size, slots.length, `${name}: no slot fired twice`);
    }
    assert.equal(total, 110, 'tick() counts the jobs it inserted');
    assert.ok(lost > 0, 'the schedulers really raced (some compare-and-sets were lost)');
  });

  it("after downtime spanning many slots, 'latest' fires one catch-up job", async () => {
    const name = await define(env.a, every(MIN));
    env.clock.now = T0 + 10 * MIN + 5_000;
    const [x, y] = await Promise.all([makeScheduler(env.a).tick(), makeScheduler(env.b).tick()]);
    assert.equal(x + y, 1);
    assert.deepEqual(slotsOf(await jobsOf(env.a, name)), [T0 + 10 * MIN]);
    assert.equal((await row(env.a, name)).nextRunAt, T0 + 11 * MIN);
  });

  it("'all' fires every missed slot; 'skip' fires none and moves to the next future slot", async () => {
    const HOUR = 60 * MIN;
    const all = await define(env.a, cron('0 * * * *'), 'all');
    const skip = await define(env.a, cron('0 * * * *'), 'skip');
    env.clock.now = T0 + 3 * HOUR + 20 * MIN; // slots 01:00, 02:00, 03:00 due; 03:00 is 20 min late
    const s = makeScheduler(env.b);
    assert.equal(await s.tick(), 3);
    assert.deepEqual(slotsOf(await jobsOf(env.a, all)), [T0 + HOUR, T0 + 2 * HOUR, T0 + 3 * HOUR]);
    assert.deepEqual(await jobsOf(env.a, skip), []);
    const r = await row(env.a, skip);
    assert.equal(r.nextRunAt, T0 + 4 * HOUR);
    assert.equal(r.lastRunAt, T0 + 3 * HOUR, 'the skipped slot is recorded as handled');
    assert.equal((await row(env.a, all)).nextRunAt, T0 + 4 * HOUR);
    assert.equal(await s.tick(), 0, 'nothing left due');
  });

  it('a fire whose storage write fails is retried on the next tick, not lost', async () => {
    const name = await define(env.a, every(MIN));
    const existing = jobInsert({ type: 'other' });
    await env.a.jobInsertMany({ jobs: [existing] });
    let calls = 0;
    // The first build reuses an existing job id: the insert violates the primary key, the
    // fire's transaction rolls back and next_run_at stays put.
    const s = makeScheduler(env.b, {
      buildJobs: (r, slotAt) => [slotJob(r, slotAt, ++calls === 1 ? { id: existing.id } : {})],
    });
    env.clock.now = T0 + MIN;
    assert.equal(await s.tick(), 0);
    assert.equal((await row(env.a, name)).nextRunAt, T0 + MIN, 'still due');
    assert.equal(await s.tick(), 1);
    assert.deepEqual(slotsOf(await jobsOf(env.a, name)), [T0 + MIN]);
    assert.equal(calls, 2);
  });

  it('a fire whose job builder throws is retried on the next tick', async () => {
    const name = await define(env.a, every(MIN));
    let fail = true;
    const s = makeScheduler(env.a, {
      buildJobs: (r, slotAt) => {
        if (fail) throw new Error('args encoding failed');
        return [slotJob(r, slotAt)];
      },
    });
    env.clock.now = T0 + MIN + 10;
    assert.equal(await s.tick(), 0);
    fail = false;
    assert.equal(await s.tick(), 1);
    assert.deepEqual(slotsOf(await jobsOf(env.a, name)), [T0 + MIN]);
  });

  it('overlap: false via a unique key skips a slot while the previous job is live, yet moves on', async () => {
    const name = await define(env.a, every(MIN));
    const s = makeScheduler(env.a, { buildJobs: (r, slotAt) => [slotJob(r, slotAt, { uniqueKey: `sched:${r.name}` })] });
    env.clock.now = T0 + MIN;
    assert.equal(await s.tick(), 1);
    env.clock.now = T0 + 2 * MIN;
    assert.equal(await s.tick(), 0, 'the first job is still pending');
    assert.equal((await row(env.a, name)).nextRunAt, T0 + 3 * MIN);
    assert.equal((await jobsOf(env.a, name)).length, 1);
  });

  it('logs and skips a row whose spec cannot be read, and fires the others', async () => {
    const good = await define(env.a, every(MIN));
    await env.a.scheduleUpsert({ name: 'broken', specJson: '{"kind":"sometimes"}', optionsJson: '{}', nextRunAt: T0 });
    const errors: string[] = [];
    const s = new Scheduler({
      storage: env.a,
      buildJobs: (r, slotAt) => [slotJob(r, slotAt)],
      logger: { debug() {}, info() {}, warn() {}, error: (m, f) => errors.push(`${m} ${String(f?.['schedule'])}`) },
    });
    env.clock.now = T0 + MIN;
    assert.equal(await s.tick(), 1);
    assert.equal((await jobsOf(env.a, good)).length, 1);
    assert.deepEqual(errors, ['schedule cannot be fired broken']);
  });
});

describe('Scheduler timer loop on SQLite', () => {
  it('tolerates stop before start and double stop', async () => {
    const s = makeScheduler(env.a);
    await s.stop();
    await s.stop();
    s.start();
    s.start();
    assert.equal(s.running, true);
    await s.stop();
    await s.stop();
    assert.equal(s.running, false);
  });

  it('wake() makes a sleeping loop tick at once, and a restarted loop keeps firing', async () => {
    const real = new SqliteStorage(env.path);
    try {
      const due = async (): Promise<string> => {
        const name = uniqueName('due');
        await real.scheduleUpsert({ name, specJson: JSON.stringify(every(3_600_000)), optionsJson: '{}', nextRunAt: Date.now() - 1 });
        return name;
      };
      const first = await due();
      const s = makeScheduler(real, { intervalMs: 60_000 });
      s.start();
      await waitFor(async () => (await jobsOf(real, first)).length === 1, { timeout: 3_000, message: 'first tick at start' });
      const second = await due();
      s.wake();
      await waitFor(async () => (await jobsOf(real, second)).length === 1, { timeout: 3_000, message: 'woken tick' });
      await s.stop();
      const third = await due();
      s.wake(); // stopped: no-op
      s.start();
      await waitFor(async () => (await jobsOf(real, third)).length === 1, { timeout: 3_000, message: 'restarted loop' });
      await s.stop();
      for (const name of [first, second, third]) assert.equal((await jobsOf(real, name)).length, 1, name);
    } finally {
      await real.close();
    }
  });

  it('two running loops fire each slot of a fast schedule once', async () => {
    // Real time here: a 100 ms schedule, loops that sleep at most 50 ms.
    const realA = new SqliteStorage(env.path);
    const realB = new SqliteStorage(env.path);
    try {
      const name = await define(realA, every(100));
      const sa = makeScheduler(realA, { intervalMs: 50 });
      const sb = makeScheduler(realB, { intervalMs: 50 });
      sa.start();
      sb.start();
      await waitFor(async () => (await jobsOf(realA, name)).length >= 5, { timeout: 5_000 });
      await sa.stop();
      await sb.stop();
      const slots = slotsOf(await jobsOf(realA, name));
      assert.equal(new Set(slots).size, slots.length, 'no slot fired twice');
      assert.ok(slots.every((x) => x % 100 === 0), 'slots are epoch-aligned');
    } finally {
      await realA.close();
      await realB.close();
    }
  });
});
