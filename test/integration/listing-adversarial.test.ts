/**
 * Adversarial tests of the operator's view on every driver: `listJobs` (odd and huge filter
 * values, forged cursors, corrupt rows, pages walked while another storage instance enqueues
 * and a worker finishes jobs), `queues()` (delayed-only, paused, resumed and many queues, ages
 * on the storage's clock) and the worker registry behind `workers()` (same names, failing and
 * swallowed beats, stop during start, a database at schema version 2).
 *
 * Each storage here is made by this file (a temp SQLite file, a PostgreSQL schema, a MariaDB
 * database) so a test can also reach the tables with plain SQL: to corrupt a payload, or to
 * take a database back to schema version 2. Each test names the documented behaviour it checks
 * (docs/operations.md, src/queue/operator-types.ts).
 */
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { setTimeout as delay } from 'node:timers/promises';
import type BetterSqlite3 from 'better-sqlite3';
import { Queue } from '../../src/queue/queue.js';
import { InvalidArgumentError } from '../../src/errors.js';
import { SqliteStorage } from '../../src/storage/sqlite/sqlite-storage.js';
import { PostgresStorage } from '../../src/storage/postgres/postgres-storage.js';
import { MysqlStorage } from '../../src/storage/mysql/mysql-storage.js';
import type { Storage } from '../../src/storage/storage.js';
import type { Logger } from '../../src/types.js';
import { failedJob, jobInsert } from '../helpers/factories.js';
import { FaultyStorage } from '../helpers/faulty-storage.js';
import { removeSqliteFiles, tempSqlitePath } from '../helpers/sqlite-storage.js';
import { PG_URL, pgAdmin, testSchemaName } from '../helpers/postgres-storage.js';
import { createTestDatabase, dropTestDatabase, mysqlDatabaseUrl } from '../helpers/mysql-storage.js';
import { storageMatrix } from '../helpers/storages.js';
import { waitFor } from '../helpers/wait-for.js';
import { startWorker, stopAllWorkers } from '../helpers/workflow-harness.js';

const require = createRequire(import.meta.url);

/** A storage of this file: instances on one database, plain SQL on it, cleanup. */
interface RawStorage {
  storage: Storage;
  /** Another storage instance on the same database (another "process"). */
  another(): Storage;
  /** Runs SQL (several statements separated by `;`) on the database, outside the storage. */
  sql(text: string): Promise<void>;
  cleanup(): Promise<void>;
}

/** Makes a migrated storage of `driver` (optionally on an injected clock) with plain-SQL access. */
async function makeRaw(driver: string, label: string, clock?: () => number): Promise<RawStorage> {
  const made: Storage[] = [];
  const keep = <S extends Storage>(s: S): S => {
    made.push(s);
    return s;
  };
  const closeAll = async (): Promise<void> => {
    for (const s of made.splice(0)) await s.close().catch(() => {});
  };
  let open: () => Storage;
  let sql: (text: string) => Promise<void>;
  let drop: () => Promise<void>;
  if (driver === 'sqlite') {
    const path = tempSqlitePath(label);
    open = () => keep(new SqliteStorage(path, clock ? { clock } : {}));
    const Database = require('better-sqlite3') as typeof BetterSqlite3;
    sql = async (text) => {
      const db = new Database(path);
      try {
        db.pragma('busy_timeout = 5000');
        db.exec(text);
      } finally {
        db.close();
      }
    };
    drop = async () => removeSqliteFiles(path);
  } else if (driver === 'postgres') {
    const schema = testSchemaName(label);
    open = () => keep(new PostgresStorage(PG_URL, { schema, max: 4, ...(clock ? { clock } : {}) }));
    sql = async (text) => void (await pgAdmin(`SET search_path TO "${schema}"; ${text}`));
    drop = async () => void (await pgAdmin(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`));
  } else {
    const db = await createTestDatabase(label);
    const url = mysqlDatabaseUrl(db);
    open = () => keep(new MysqlStorage(url, { connectionLimit: 5, ...(clock ? { clock } : {}) }));
    const mysql = require('mysql2/promise') as { createConnection(o: { uri: string; multipleStatements: boolean }): Promise<{ query(s: string): Promise<unknown>; end(): Promise<void> }> };
    sql = async (text) => {
      const c = await mysql.createConnection({ uri: url, multipleStatements: true });
      try {
        await c.query(text);
      } finally {
        await c.end();
      }
    };
    drop = () => dropTestDatabase(db);
  }
  const storage = open();
  await storage.migrate();
  return {
    storage,
    another: open,
    sql,
    cleanup: async () => {
      await closeAll();
      await drop();
    },
  };
}

/** A logger that keeps the errors and warnings it is given. */
function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const keep = (level: string) => (message: string, fields?: Record<string, unknown>) => lines.push(`${level} ${message}: ${String(fields?.['error'] ?? '')}`);
  return { lines, debug() {}, info() {}, warn: keep('warn'), error: keep('error') };
}

/** Settles with `p`'s outcome, or 'timeout' after `ms`. */
async function within<T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), ms)));
  try {
    return await Promise.race([p, t]);
  } finally {
    clearTimeout(timer);
  }
}

/** The ids of every page of a listing walked to its end (at most `maxPages`), with `between` run after each page. */
async function walk(queue: Queue, opts: Parameters<Queue['listJobs']>[0], between: () => Promise<void> = async () => {}, maxPages = 1000): Promise<string[]> {
  const seen: string[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < maxPages; page++) {
    const p = await queue.listJobs({ ...opts, ...(cursor === undefined ? {} : { cursor }) });
    seen.push(...p.jobs.map((j) => j.id));
    if (p.nextCursor === undefined) return seen;
    cursor = p.nextCursor;
    await between();
  }
  throw new Error('listing did not end');
}

const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64url');

for (const [name] of storageMatrix()) {
  describe(`listing, queues and worker registry, adversarial (${name})`, () => {
    let raw: RawStorage;
    let queue: Queue;
    before(async () => {
      raw = await makeRaw(name, `listing-adv-${name}`);
      queue = new Queue(raw.storage);
    });
    afterEach(stopAllWorkers);
    after(() => raw.cleanup());

    it('search: %, _, \\, regex metacharacters, quotes and emoji are literal; NUL and lone surrogates are refused; 255 characters is the limit', async () => {
      const type = `srch${name}`;
      const errors = ['100% done', 'a_b', 'back\\slash', 'x.*+?^${}()|[]', "it's \"quoted\" ;--", 'emoji 🎉 boom', 'tab\there', 'z'.repeat(300), 'plain words'];
      for (const e of errors) await failedJob(raw.storage, { type }, e);
      const hits = async (search: string): Promise<string[]> => (await queue.listJobs({ type, search, limit: 500 })).jobs.map((j) => j.lastError ?? '').sort();
      assert.deepEqual(await hits('%'), ['100% done']);
      assert.deepEqual(await hits('_'), ['a_b']);
      assert.deepEqual(await hits('\\'), ['back\\slash']);
      assert.deepEqual(await hits('.*'), ['x.*+?^${}()|[]']);
      assert.deepEqual(await hits('|['), ['x.*+?^${}()|[]']);
      assert.deepEqual(await hits("'"), ["it's \"quoted\" ;--"]);
      assert.deepEqual(await hits('🎉'), ['emoji 🎉 boom']);
      assert.deepEqual(await hits('\t'), ['tab\there']);
      assert.deepEqual(await hits('PLAIN WORDS'), ['plain words']);
      assert.deepEqual(await hits('z'.repeat(255)), ['z'.repeat(300)]);
      assert.equal((await hits(type.toUpperCase())).length, errors.length, 'the type matches case-insensitively');
      for (const bad of ['', 'z'.repeat(256), 'a\u0000b', 'x\ud800', '\udc00y']) {
        await assert.rejects(queue.listJobs({ search: bad }), InvalidArgumentError, JSON.stringify(bad));
      }
    });

    it('filters: duplicate statuses list each job once; junk statuses, invalid Dates, bad limits and orders are refused; after > before lists nothing', async () => {
      const type = `filt${name}`;
      for (let i = 0; i < 3; i++) await failedJob(raw.storage, { type });
      assert.equal((await queue.listJobs({ type, status: ['failed', 'failed', 'failed'] })).jobs.length, 3);
      const now = Date.now();
      assert.equal((await queue.listJobs({ type, createdAfter: new Date(now + 60_000), createdBefore: new Date(now - 60_000) })).jobs.length, 0);
      assert.equal((await queue.listJobs({ type, createdAfter: new Date(-8.64e15) })).jobs.length, 3, 'the earliest Date');
      assert.equal((await queue.listJobs({ type, createdBefore: new Date(8.64e15) })).jobs.length, 3, 'the latest Date');
      const bad: Record<string, unknown>[] = [
        { status: [] }, { status: ['failed', 'bogus'] }, { status: 'FAILED' }, { status: [null] }, { status: 'failed ' },
        { createdAfter: new Date(NaN) }, { createdBefore: '2020-01-01' }, { createdAfter: Date.now() },
        { limit: 0 }, { limit: 501 }, { limit: 1.5 }, { limit: Number.NaN }, { limit: '10' }, { limit: Infinity },
        { order: 'DESC' }, { tenant: '' }, { tenant: 't'.repeat(256) }, { parentId: '' }, { queue: 'bad queue' }, { nope: 1 },
      ];
      for (const o of bad) await assert.rejects(queue.listJobs(o as never), InvalidArgumentError, JSON.stringify(o));
    });

    it('cursors: junk, standard base64, another order and oversize cursors are refused; a well-formed cursor pages from its key, also after its job is gone', async () => {
      const type = `curs${name}`;
      for (let i = 0; i < 5; i++) await failedJob(raw.storage, { type });
      const first = await queue.listJobs({ type, limit: 2 });
      const c = first.nextCursor!;
      const id = first.jobs[1]!.id;
      await assert.rejects(queue.listJobs({ type, cursor: c, order: 'asc' }), InvalidArgumentError);
      // A cursor is a keyset position: a well-formed one made by hand (any id text) pages from
      // there, so only what is not a cursor at all is refused.
      const refused = [b64('hello world'), b64(`desc${id}`), Buffer.from(`desc.${id}`).toString('base64'),
        '', b64('desc.'), b64(`desc.\u0000${id}`), 'A'.repeat(401), 5, null];
      for (const cur of refused) await assert.rejects(queue.listJobs({ type, cursor: cur as string }), InvalidArgumentError, String(cur));
      // A cursor names a position, not a row: it still pages after its job is gone.
      const rest = await queue.listJobs({ type, cursor: b64('desc.ffffffff-ffff-7fff-bfff-ffffffffffff') });
      assert.equal(rest.jobs.length, 5);
      // Injection text in a cursor is a bound value: it pages from that key and changes nothing.
      assert.equal((await queue.listJobs({ type, cursor: b64("desc.' OR 1=1 --") })).jobs.length, 0);
      assert.equal((await queue.listJobs({ type })).jobs.length, 5);
    });

    it('tenant and type filters are exact ("equal"): trailing spaces are not ignored, in listings and in bulk actions by the same filter', async () => {
      const tenant = `acme${name}`;
      const type = `pad${name}`;
      await queue.enqueue(type, {}, { tenant });
      await queue.enqueue(`${type} `, {}, { tenant: `${tenant} ` });
      await queue.enqueue(type, {}, { tenant: `${tenant}  ` });
      assert.deepEqual((await queue.listJobs({ tenant })).jobs.map((j) => j.tenant), [tenant], 'listJobs({ tenant })');
      assert.deepEqual((await queue.listJobs({ type: `${type} ` })).jobs.map((j) => j.type), [`${type} `], 'listJobs({ type })');
      const cancelled = await queue.cancelJobs({ tenant });
      assert.equal(cancelled.count, 1, 'cancelJobs({ tenant }) cancels only that tenant\'s job');
    });

    it('a row whose payloads are corrupt is listed without them, and does not hide the others', async () => {
      const type = `corr${name}`;
      const ids = (await raw.storage.jobInsertMany({ jobs: [0, 1, 2].map((i) => jobInsert({ type, argsJson: `{"n":${i}}`, metaJson: '{"m":1}' })) })).inserted;
      await raw.sql(`UPDATE sdj_jobs SET args = '{bad' WHERE id = '${ids[0]}'; UPDATE sdj_jobs SET meta = 'not json' WHERE id = '${ids[1]}'`);
      const jobs = (await queue.listJobs({ type, order: 'asc' })).jobs;
      assert.deepEqual(jobs.map((j) => j.id), ids);
      assert.equal(jobs[0]!.args, undefined);
      assert.deepEqual(jobs[2]!.args, { n: 2 });
    });

    it('a nextCursor is always accepted by the next listJobs call, also when its page ends on a row whose id is not a lowercase UUIDv7 (rows inserted by SQL, as in the upgrade fixtures)', async () => {
      const type = `legacy${name}`;
      const ids = ['legacy-00001', 'legacy-00002', 'legacy-00003', '01890A5D-AC96-774B-BCCE-B302099A8057'];
      await raw.storage.jobInsertMany({ jobs: ids.map((id) => jobInsert({ id, type })) });
      for (const order of ['desc', 'asc'] as const) {
        const seen = await walk(queue, { type, limit: 1, order });
        assert.deepEqual([...seen].sort(), [...ids].sort(), `${order}: every job once`);
      }
    });

    it('pages stay exact while another storage instance enqueues and a worker finishes jobs between pages, in both orders', async () => {
      const q = `churn${name}`;
      const other = new Queue(raw.another());
      other.register('churn', async () => {});
      queue.register('churn', async () => {});
      const initial: string[] = [];
      for (let i = 0; i < 120; i++) initial.push(await queue.enqueue('churn', { i }, { queue: q }));
      for (const order of ['desc', 'asc'] as const) {
        const w = startWorker(other, { queues: { [q]: { concurrency: 4 } } });
        let n = 0;
        const seen = await walk(queue, { queue: q, limit: 7, order }, async () => {
          for (let k = 0; k < 5; k++) await other.enqueue('churn', { n: n++ }, { queue: q });
          await delay(5);
        });
        await w.stop();
        assert.equal(new Set(seen).size, seen.length, `${order}: no job shown twice`);
        const shown = new Set(seen);
        assert.deepEqual(initial.filter((id) => !shown.has(id)), [], `${order}: every job there for the whole walk is shown`);
        const sorted = [...seen].sort();
        assert.deepEqual(seen, order === 'asc' ? sorted : sorted.reverse(), `${order}: in id order`);
      }
    });

    it('queues(): a paused queue with no jobs is listed, a resumed one with no jobs is not (docs: "every paused queue"), on every driver alike', async () => {
      await queue.pauseQueue('resumed-empty');
      await queue.resumeQueue('resumed-empty');
      await queue.pauseQueue('paused-empty');
      const qs = await queue.queues();
      assert.deepEqual(qs.find((x) => x.name === 'paused-empty'), { name: 'paused-empty', paused: true, pending: 0, running: 0, waiting: 0, failed: 0, pausedJobs: 0 });
      assert.equal(qs.find((x) => x.name === 'resumed-empty'), undefined);
    });

    it('queues(): delayed-only queues have no oldest age; a paused queue keeps its counts; 300 queues come back in code-unit order', async () => {
      await queue.enqueue('t', {}, { queue: 'only-delayed', delay: 3_600_000 });
      await queue.enqueue('t', {}, { queue: 'paused-full' });
      await queue.pauseQueue('paused-full');
      const names = Array.from({ length: 300 }, (_, i) => `${['Z', 'a', 'B', '0', 'a.', 'A-', 'A_', 'A:'][i % 8]}m${i}`);
      await raw.storage.jobInsertMany({ jobs: names.map((queueName) => jobInsert({ queue: queueName })) });
      const qs = await queue.queues();
      const got = qs.map((x) => x.name);
      assert.deepEqual(got, [...got].sort(), 'by name, in code-unit order');
      assert.ok(names.every((n) => got.includes(n)));
      const delayed = qs.find((x) => x.name === 'only-delayed')!;
      assert.equal(delayed.pending, 1);
      assert.equal('oldestPendingAgeMs' in delayed, false);
      const paused = qs.find((x) => x.name === 'paused-full')!;
      assert.equal(paused.paused, true);
      assert.equal(paused.pending, 1);
    });

    it('queues(): oldestPendingAgeMs is measured on the storage clock (an injected clock an hour ahead of the run time gives exactly an hour)', async () => {
      const at = { now: Date.UTC(2031, 5, 1) };
      const clocked = await makeRaw(name, `listing-adv-clock-${name}`, () => at.now);
      try {
        const q = new Queue(clocked.storage);
        await q.enqueue('t', {}, { queue: 'aged' });
        await q.enqueue('t', {}, { queue: 'aged', delay: 1_800_000 });
        await q.enqueue('t', {}, { queue: 'aged', delay: 7_200_000 });
        at.now += 3_600_000;
        const aged = (await q.queues()).find((x) => x.name === 'aged')!;
        assert.equal(aged.pending, 3);
        assert.equal(aged.oldestPendingAgeMs, 3_600_000);
        const listed = await q.listJobs({ queue: 'aged', createdAfter: new Date(at.now - 3_600_001), createdBefore: new Date(at.now - 3_599_999) });
        assert.equal(listed.jobs.length, 3, 'created_at on the same clock');
      } finally {
        await clocked.cleanup();
      }
    });

    it('workers(): two workers with the same name are both listed, with their running jobs; both leave on stop', async () => {
      const q = `dup${name}`;
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      queue.register('dup-hold', () => gate);
      const a = startWorker(queue, { name: 'same-name', queues: { [q]: { concurrency: 5 } } });
      const b = startWorker(queue, { name: 'same-name', queues: { [q]: { concurrency: 5 } } });
      for (let i = 0; i < 4; i++) await queue.enqueue('dup-hold', {}, { queue: q });
      const ws = await waitFor(async () => {
        const list = (await queue.workers()).filter((w) => w.name === 'same-name');
        return list.length === 2 && list.reduce((s, w) => s + w.running, 0) === 4 ? list : undefined;
      }, { message: 'both workers listed with 4 running jobs', timeout: 5_000 });
      assert.deepEqual(ws.map((w) => w.id).sort(), [a.worker.id, b.worker.id].sort());
      release();
      await a.stop();
      await b.stop();
      assert.deepEqual((await queue.workers()).filter((w) => w.name === 'same-name'), []);
    });

    it('workers(): a worker whose workerBeat always fails keeps running jobs and logs the failure; it registers once the beat works again', async () => {
      const faulty = new FaultyStorage(raw.storage);
      const rule = faulty.fail({ method: 'workerBeat', times: Infinity });
      const logger = recordingLogger();
      const fq = new Queue(faulty.storage, { logger });
      const q = `beatfail${name}`;
      let ran = 0;
      fq.register('bf', async () => void ran++);
      const w = startWorker(fq, { queues: { [q]: { concurrency: 2 } } });
      for (let i = 0; i < 5; i++) await fq.enqueue('bf', {}, { queue: q });
      await waitFor(() => ran === 5, { message: 'the 5 jobs ran', timeout: 5_000 });
      assert.ok(logger.lines.some((l) => l.startsWith('error refreshing the worker registry failed')), logger.lines.join('\n'));
      assert.equal((await queue.workers()).some((x) => x.id === w.worker.id), false);
      rule.remove();
      await waitFor(async () => (await queue.workers()).some((x) => x.id === w.worker.id), { message: 'registered after the fault', timeout: 5_000 });
      await w.stop();
    });

    it('workers(): stop() during start() leaves no registry row behind', async () => {
      for (let i = 0; i < 3; i++) {
        const w = queue.newWorker({ handleSignals: false, heartbeatInterval: 50, pollInterval: 20 });
        const started = w.start();
        if (i > 0) await delay(i * 15);
        await w.stop();
        await started;
        assert.equal((await queue.workers()).some((x) => x.id === w.id), false, `stop after ${i * 15} ms`);
      }
    });

    it('workers(): a live worker whose row expired (a pause longer than three lease periods) and was deleted by another worker\'s beat comes back with its original startedAt', async () => {
      const faulty = new FaultyStorage(raw.storage);
      const fq = new Queue(faulty.storage);
      const a = startWorker(fq, { name: 'paused-proc', leaseTimeout: 200, queues: { [`gc${name}`]: {} } });
      const before = await waitFor(async () => (await queue.workers()).find((x) => x.id === a.worker.id), { message: 'A registered', timeout: 5_000 });
      // A "GC pause": A's beats reach nobody (they claim success) for longer than its ttl (600 ms).
      const swallow = faulty.fail({ method: 'workerBeat', times: Infinity, respond: () => undefined });
      const bq = new Queue(raw.another());
      const b = startWorker(bq, { name: 'other-proc', leaseTimeout: 200, queues: { [`gc${name}`]: {} } });
      await waitFor(async () => !(await queue.workers()).some((x) => x.id === a.worker.id), { message: 'A expired', timeout: 5_000 });
      await delay(150); // B's beats delete A's expired row
      swallow.remove();
      const back = await waitFor(async () => (await queue.workers()).find((x) => x.id === a.worker.id), { message: 'A back', timeout: 5_000 });
      await a.stop();
      await b.stop();
      assert.equal(back.startedAt.getTime(), before.startedAt.getTime(), `startedAt moved by ${back.startedAt.getTime() - before.startedAt.getTime()} ms: the worker looks restarted`);
    });

    it('workers(): on a database migrated only to version 2 jobs still run, and workers() fails with an error that says to run migrate()', async () => {
      const old = await makeRaw(name, `listing-adv-v2-${name}`);
      try {
        const undo: Record<string, string> = {
          sqlite: 'DROP TABLE sdj_workers; DROP INDEX sdj_jobs_failed; DELETE FROM sdj_migrations WHERE version = 3',
          postgres: 'DROP TABLE sdj_workers; DROP INDEX sdj_jobs_history_failed; DELETE FROM sdj_migrations WHERE version = 3',
          mysql: 'DROP TABLE sdj_workers; DELETE FROM sdj_migrations WHERE version = 3',
        };
        await old.sql(undo[name]!);
        const logger = recordingLogger();
        const q = new Queue(old.another(), { logger });
        let ran = 0;
        q.register('v2', async () => void ran++);
        await q.enqueue('v2', {});
        const w = startWorker(q);
        await waitFor(() => ran === 1, { message: 'the job ran on the version-2 database', timeout: 5_000 });
        await w.stop();
        const err = await q.workers().then(() => undefined, (e: unknown) => e as Error);
        assert.ok(err, 'workers() rejects on a version-2 database');
        assert.match(err.message, /migrat/i, `the error names the way out; got: ${err.message}`);
      } finally {
        await old.cleanup();
      }
    });

    it('workers(): after migrate() on that version-2 database the registry works (stop() bounded meanwhile)', async () => {
      const old = await makeRaw(name, `listing-adv-v2m-${name}`);
      try {
        await old.sql(name === 'mysql' ? 'DROP TABLE sdj_workers; DELETE FROM sdj_migrations WHERE version = 3'
          : `DROP TABLE sdj_workers; DROP INDEX ${name === 'sqlite' ? 'sdj_jobs_failed' : 'sdj_jobs_history_failed'}; DELETE FROM sdj_migrations WHERE version = 3`);
        const s = old.another();
        await s.migrate();
        const q = new Queue(s);
        const w = startWorker(q);
        await waitFor(async () => (await q.workers()).some((x) => x.id === w.worker.id), { message: 'registered after migrate', timeout: 5_000 });
        assert.notEqual(await within(w.stop(), 5_000), 'timeout');
      } finally {
        await old.cleanup();
      }
    });
  });
}
