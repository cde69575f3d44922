/**
 * Property-based tests (fast-check) over the public API and the job state machine, on every
 * driver of the matrix (`STORAGE=sqlite,postgres,mysql`).
 *
 * 1. Random job types, args, options, names and payload sizes are either accepted and
 *    round-trip exactly (args, meta and results, byte for byte; object properties whose value
 *    is `undefined` are dropped, as README documents) or rejected with the typed error the
 *    input calls for — leaving no row. Batches are all-or-nothing.
 * 2. Names and tags full of SQL syntax are stored as values (bound parameters), never
 *    executed; the PostgreSQL schema name is validated so no identifier can inject SQL.
 * 3. A model-based test drives random sequences of enqueue / claim / complete / fail / retry
 *    (one by one and in batches) / heartbeat / release / reclaim / suspend into a fan-out of 1–4
 *    children (fail-fast, collect-all, threshold; with or without a deadline) / wait again /
 *    fan-out expiry / wake-ups / cancel / pause / resume / retryJob (of failed and cancelled
 *    children and parents) / pause and resume queue against a real driver with an injected
 *    clock, comparing with a simple model after every command: every job's status, attempt and
 *    lease, every fan-out's counters (equal to its children's current outcomes), status and
 *    decision time, the parent woken once on the deciding transition and never before.
 *
 * Reproducible: the seed is SDJ_PROPERTY_SEED (default 42), the run count SDJ_PROPERTY_RUNS
 * (default 100). Longer runs, e.g.:
 *   SDJ_PROPERTY_RUNS=2000 SDJ_PROPERTY_SEED=$RANDOM npx tsx --test test/reliability/properties.test.ts
 * A failure prints the seed and the counterexample path; re-run with that seed to replay it, and
 * add SDJ_PROPERTY_SHRINK=1 to have fast-check shrink it to a minimal case first.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DurableJobsError, InvalidArgumentError } from '../../src/errors.js';
import { Queue } from '../../src/queue/queue.js';
import type { Storage } from '../../src/storage/storage.js';
import type { Worker } from '../../src/worker/worker.js';
import { storageMatrix, type TestStorage } from '../helpers/storages.js';
import { argsArb, INJECTIONS, jsonExact, optionsArb, sized, tagArb, typeArb, type Tagged } from './support/arbitraries.js';
import { commands, compare, compareSteps, newModel, type Real } from './support/job-model.js';

const SEED = Number(process.env['SDJ_PROPERTY_SEED'] ?? 42);
const RUNS = Number(process.env['SDJ_PROPERTY_RUNS'] ?? 100);
const MAX_BYTES = 4096;
/** Shrinking a failure against a database can take long: opt in with SDJ_PROPERTY_SHRINK=1. */
const SHRINK = process.env['SDJ_PROPERTY_SHRINK'] === '1';
const params = (runs = RUNS): fc.Parameters<unknown> => ({ seed: SEED, numRuns: runs, endOnFailure: !SHRINK, includeErrorInReport: true });

/** The JSON round trip of a value (what a reader gets back); undefined stays undefined. */
const normal = (v: unknown): unknown => (v === undefined ? undefined : JSON.parse(JSON.stringify(v)));

async function total(s: Storage): Promise<number> {
  return Object.values(await s.jobCountByStatus({})).reduce((a, b) => a + b, 0);
}

/** Runs `p`; resolves with its value or the error it rejected with. */
async function settle<T>(p: () => Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
  try {
    return { ok: true, value: await p() };
  } catch (error) {
    return { ok: false, error };
  }
}

function assertRejectedWith(error: unknown, codes: string[], what: string): void {
  assert.ok(error instanceof DurableJobsError, `${what}: rejected with a library error, got ${String(error)}`);
  assert.ok(codes.includes(error.code), `${what}: code ${error.code} (${error.message}) not among the expected ${codes.join(', ')}`);
}

for (const [dialect, make] of storageMatrix()) {
  describe(`properties of the public API (${dialect})`, () => {
    let ts: TestStorage;
    let queue: Queue;
    let worker: Worker;
    let running: Promise<void>;
    /** Unique keys held by accepted jobs (all stay pending: no worker serves their queues). */
    const held = new Set<string>();
    /** What the echo handler returns next. */
    let echo: unknown;

    before(async () => {
      ts = await make(`properties-${dialect}`);
      queue = new Queue(ts.storage, { maxPayloadBytes: MAX_BYTES });
      queue.register('echo', async () => echo);
      worker = queue.newWorker({ queues: { echo: { concurrency: 4 } }, handleSignals: false, pollInterval: 20 });
      running = worker.start();
    });
    after(async () => {
      await worker.stop();
      await running;
      await ts.cleanup();
    });

    it('enqueue: accepted inputs round-trip exactly; rejected ones throw the typed error and write nothing', async () => {
      await fc.assert(
        fc.asyncProperty(typeArb, argsArb(MAX_BYTES), optionsArb(MAX_BYTES), async (type, args, opts) => {
          const o = opts.options as { queue?: string; unique?: string } | undefined;
          // Keep the jobs away from the echo worker's queue (they must stay pending).
          if (o?.queue === 'echo') o.queue = 'not-echo';
          const codes = [type.bad, args.bad, ...opts.bad].filter((c): c is string => c !== null);
          if (codes.length === 0 && o?.unique !== undefined && held.has(o.unique)) codes.push('DUPLICATE_JOB');
          const before = await total(ts.storage);
          const r = await settle(() => queue.enqueue(type.v as string, args.v, opts.options as never));
          if (codes.length > 0) {
            assert.equal(r.ok, false, `expected a rejection (${codes.join(', ')}), got job ${r.ok ? r.value : ''}`);
            if (!r.ok) assertRejectedWith(r.error, codes, 'enqueue');
            assert.equal(await total(ts.storage), before, 'a rejected enqueue writes nothing');
            return;
          }
          assert.ok(r.ok, `expected acceptance, got ${r.ok ? '' : String(r.error)}`);
          if (o?.unique !== undefined) held.add(o.unique);
          assert.equal(await total(ts.storage), before + 1);
          await assertStored(ts.storage, queue, r.value, type.v as string, args.v, opts.options ?? {});
        }),
        params(),
      );
    });

    it('enqueueBatch is all-or-nothing', async () => {
      const item = fc.record({ type: typeArb, args: argsArb(MAX_BYTES), options: optionsArb(MAX_BYTES) });
      await fc.assert(
        fc.asyncProperty(fc.array(item, { minLength: 1, maxLength: 4 }), async (items) => {
          const codes = items.flatMap((i) => [i.type.bad, i.args.bad, ...i.options.bad]).filter((c): c is string => c !== null);
          const keys = items.map((i) => (i.options.options as { unique?: string } | undefined)?.unique).filter((k): k is string => k !== undefined);
          if (codes.length === 0 && (keys.some((k) => held.has(k)) || new Set(keys).size < keys.length)) codes.push('DUPLICATE_JOB');
          for (const i of items) if ((i.options.options as { queue?: string } | undefined)?.queue === 'echo') (i.options.options as { queue?: string }).queue = 'not-echo';
          const before = await total(ts.storage);
          const batch = items.map((i) => ({ type: i.type.v as string, args: i.args.v, ...(i.options.options ? { options: i.options.options } : {}) }));
          const r = await settle(() => queue.enqueueBatch(batch as never));
          if (codes.length > 0) {
            assert.equal(r.ok, false, `expected a rejection (${codes.join(', ')})`);
            if (!r.ok) assertRejectedWith(r.error, codes, 'enqueueBatch');
            assert.equal(await total(ts.storage), before, 'a rejected batch writes nothing');
            return;
          }
          assert.ok(r.ok, `expected acceptance, got ${r.ok ? '' : String(r.error)}`);
          for (const k of keys) held.add(k);
          assert.equal(r.value.length, items.length);
          assert.equal(await total(ts.storage), before + items.length);
          for (const [n, id] of r.value.entries()) await assertStored(ts.storage, queue, id, batch[n]!.type, batch[n]!.args, batch[n]!.options ?? {});
        }),
        params(Math.max(10, Math.floor(RUNS / 2))),
      );
    });

    it('results round-trip exactly, or the job fails saying why', async () => {
      const result = fc.oneof({ arbitrary: argsArb(MAX_BYTES), weight: 4 }, { arbitrary: jsonExact.map((v) => sized({ v, bad: null }, MAX_BYTES)), weight: 2 });
      await fc.assert(
        fc.asyncProperty(result, async (res: Tagged) => {
          echo = res.v;
          const id = await queue.enqueue('echo', null, { queue: 'echo' });
          const job = await queue.waitForJob(id, { timeout: 20_000, pollInterval: 10 });
          const row = await ts.storage.jobGet({ id });
          if (res.bad === null) {
            assert.equal(job.status, 'completed', `completed (${job.lastError ?? ''})`);
            assert.deepEqual(job.result, normal(res.v));
            assert.equal(row?.resultJson ?? null, res.v === undefined ? null : JSON.stringify(res.v), 'stored byte for byte');
          } else {
            assert.equal(job.status, 'failed', 'a result JSON cannot carry fails the job');
            assert.match(job.lastError ?? '', /^result/, `the reason names the result: ${job.lastError ?? ''}`);
            assert.equal(job.attempt, 1, 'not retried');
          }
        }),
        params(Math.max(10, Math.floor(RUNS / 2))),
      );
    });

    it('SQL-looking names, tags and payloads are stored as values', async () => {
      const text = fc.oneof(fc.constantFrom(...INJECTIONS), tagArb.filter((t) => t.bad === null).map((t) => t.v as string));
      await fc.assert(
        fc.asyncProperty(text, text, text, async (a, b, c) => {
          const before = await total(ts.storage);
          const type = a.replace(/[\u0000-\u001f\u007f]/g, '') || 'x'; // eslint-disable-line no-control-regex
          const options = { tenant: b, unique: `${c}-${before}`, meta: { [a]: b, [c]: [a, b] }, queue: 'sql-values' };
          const id = await queue.enqueue(type, { [b]: c, list: [a, b, c] }, options);
          held.add(options.unique);
          await assertStored(ts.storage, queue, id, type, { [b]: c, list: [a, b, c] }, options);
          assert.equal(await total(ts.storage), before + 1, 'the tables are intact');
        }),
        params(Math.max(10, Math.floor(RUNS / 2))),
      );
    });

    if (dialect === 'postgres') {
      it('the PostgreSQL schema name is validated: a plain identifier or InvalidArgumentError', async () => {
        const { PostgresStorage } = await import('../../src/storage/postgres/postgres-storage.js');
        const { PG_URL } = await import('../helpers/postgres-storage.js');
        const name = fc.oneof(fc.constantFrom(...INJECTIONS, 'public', 'a'.repeat(63), 'a'.repeat(64), '1abc', '_x', 'x y', 'sdj"x'), fc.string({ unit: 'binary', maxLength: 70 }));
        fc.assert(
          fc.property(name, (schema) => {
            const plain = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(schema);
            let made: InstanceType<typeof PostgresStorage> | undefined;
            try {
              made = new PostgresStorage(PG_URL, { schema });
              assert.ok(plain, `accepted schema ${JSON.stringify(schema)}`);
            } catch (e) {
              assert.ok(!plain, `rejected plain schema ${JSON.stringify(schema)}: ${String(e)}`);
              assert.ok(e instanceof InvalidArgumentError, `InvalidArgumentError, got ${String(e)}`);
            } finally {
              void made?.close();
            }
          }),
          params(RUNS * 5),
        );
      });
    }
  });

  describe(`model-based state machine (${dialect})`, () => {
    let ts: TestStorage;
    let real: Real;

    before(async () => {
      // One database for every run; each run uses its own queues and unique keys, and its clock
      // starts where the previous run's ended (the injected clock never goes back).
      const clocked = { now: Date.now() };
      ts = await makeClocked(dialect, () => clocked.now);
      real = Object.assign(clocked, { s: ts.storage, tally: {} });
    });
    after(async () => {
      await ts.cleanup();
    });

    it('random operation sequences agree with the model', async (t) => {
      let runNo = 0;
      await fc.assert(
        fc.asyncProperty(fc.commands(commands(), { maxCommands: 160, size: 'max' }), async (cmds) => {
          runNo++;
          const tag = `${runNo}_${Math.floor(Math.random() * 1e9).toString(36)}`;
          real.now += 10_000;
          const model = newModel(real.now, tag);
          try {
            await compare(model, real);
            await fc.asyncModelRun(() => ({ model, real }), cmds);
            await compareSteps(model, real);
          } finally {
            // Leave nothing running for the next run's reclaims.
            for (const j of model.jobs) await real.s.jobCancel({ id: j.id }).catch(() => []);
            for (const q of model.queues) await real.s.queueSetPaused({ queue: q, paused: false });
          }
        }),
        params(),
      );
      t.diagnostic(`operations: ${JSON.stringify(real.tally)}`);
    });
  });
}

/** Reads a job back through the API and the storage and compares it with what was enqueued. */
async function assertStored(s: Storage, queue: Queue, id: string, type: string, args: unknown, options: Record<string, unknown>): Promise<void> {
  const job = await queue.getJob(id);
  const row = await s.jobGet({ id });
  assert.ok(job && row, `job ${id} stored`);
  assert.equal(job.type, type);
  assert.equal(job.status, 'pending');
  assert.deepEqual(job.args, normal(args), 'args round-trip');
  assert.equal(row.argsJson, args === undefined ? null : JSON.stringify(args), 'args stored byte for byte');
  assert.deepEqual(job.meta, normal(options['meta']) ?? {}, 'meta round-trip');
  assert.equal(row.metaJson, options['meta'] === undefined ? null : JSON.stringify(options['meta']), 'meta stored byte for byte');
  assert.equal(job.queue, options['queue'] ?? 'default');
  assert.equal(job.priority, options['priority'] ?? 0);
  assert.equal(job.maxRetries, options['retries'] ?? 3);
  assert.equal(job.tenant, options['tenant']);
  assert.equal(job.unique, options['unique']);
  assert.equal(job.timeout, options['timeout']);
  const delay = Math.ceil((options['delay'] as number | undefined) ?? 0);
  const runAt = (options['runAt'] as Date | undefined)?.getTime() ?? 0;
  assert.equal(job.runAt.getTime(), Math.max(job.createdAt.getTime() + delay, runAt), 'run_at = max(now + delay, runAt)');
}

/** A fresh storage of `dialect` whose clock is `clock`. */
async function makeClocked(dialect: string, clock: () => number): Promise<TestStorage> {
  switch (dialect) {
    case 'sqlite': {
      const { SqliteStorage } = await import('../../src/storage/sqlite/sqlite-storage.js');
      const { removeSqliteFiles, tempSqlitePath } = await import('../helpers/sqlite-storage.js');
      const path = tempSqlitePath('model');
      const s = new SqliteStorage(path, { clock });
      await s.migrate();
      return { storage: s, another: async () => new SqliteStorage(path, { clock }), cleanup: async () => (await s.close(), removeSqliteFiles(path)) };
    }
    case 'postgres':
      return (await import('../helpers/postgres-storage.js')).makePostgresStorageWith({ clock })('model');
    case 'mysql':
      return (await import('../helpers/mysql-storage.js')).makeMysqlStorageWith('model', { clock });
    default:
      throw new Error(`no clocked storage for ${dialect}`);
  }
}
