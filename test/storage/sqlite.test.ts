/**
 * SQLite driver: the storage conformance suite, plus what only SQLite has — several instances
 * and processes on one WAL file, a user-supplied `Database` (and enqueue inside its
 * transaction), `':memory:'`, migration ledger behaviour, busy errors and pragmas.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import type BetterSqlite3 from 'better-sqlite3';
import { DuplicateJobError, InvalidArgumentError, SchemaTooNewError, StorageClosedError, StorageError } from '../../src/errors.js';
import { openDatabase } from '../../src/storage/sqlite/connection.js';
import { SqliteStorage } from '../../src/storage/sqlite/sqlite-storage.js';
import { MIGRATIONS } from '../../src/storage/sqlite/migrations.generated.js';
import type { Storage } from '../../src/storage/storage.js';
import { runStorageConformance } from '../conformance/index.js';
import { applied, claim, claimOne, insertJob, jobInsert, mustGet, newId, runningJob, stepRow, uniqueName } from '../helpers/factories.js';
import { makeSqliteStorage, removeSqliteFiles, tempSqlitePath } from '../helpers/sqlite-storage.js';

const Database = createRequire(import.meta.url)('better-sqlite3') as typeof BetterSqlite3;
const DRIVER_MODULE = fileURLToPath(new URL('../../src/storage/sqlite/sqlite-storage.ts', import.meta.url));

runStorageConformance('sqlite', makeSqliteStorage);

/** Temp files made by this file, removed at the end. */
const paths: string[] = [];
function tempPath(label: string): string {
  const p = tempSqlitePath(`sqlite-test-${label}`);
  paths.push(p);
  return p;
}
after(() => {
  for (const p of paths) removeSqliteFiles(p);
});

/** A child process running an inline ES module under tsx, started on "go" on stdin. */
interface Proc {
  proc: ChildProcess;
  /** Resolves with the first stdout line matching `re`. */
  line(re: RegExp): Promise<string>;
  exited: Promise<number | null>;
}

function spawnInline(code: string, args: string[]): Proc {
  const proc = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code, DRIVER_MODULE, ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const waiters: { re: RegExp; resolve: (l: string) => void }[] = [];
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  createInterface({ input: proc.stdout! }).on('line', (l) => {
    lines.push(l);
    for (const w of [...waiters]) {
      if (w.re.test(l)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(l);
      }
    }
  });
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  return {
    proc,
    exited,
    line(re) {
      const hit = lines.find((l) => re.test(l));
      if (hit !== undefined) return Promise.resolve(hit);
      return new Promise((resolve, reject) => {
        waiters.push({ re, resolve });
        void exited.then((c) => reject(new Error(`child exited (${c}) before printing ${re}; stderr:\n${stderr}`)));
      });
    },
  };
}

/** Child: waits for "go", then claims and completes jobs of a queue until none is pending. */
const CLAIMER = `
const [mod, path, queue] = process.argv.slice(1);
const { SqliteStorage } = await import(mod);
const s = new SqliteStorage(path);
const workerId = 'proc-' + process.pid;
console.log('ready');
await new Promise((r) => process.stdin.once('data', r));
const claimed = [];
for (;;) {
  const rows = await s.jobClaim({ workerId, queues: [{ name: queue, limit: 3 }], leaseMs: 60000 });
  if (rows.length > 3) throw new Error('over-claim ' + rows.length);
  if (rows.length === 0) {
    if ((await s.jobCountByStatus({ queue })).pending === 0) break;
    continue;
  }
  for (const r of rows) claimed.push(r.id);
  const res = await s.jobFinishMany({ items: rows.map((r) => ({ jobId: r.id, workerId, runCount: r.runCount, outcome: 'completed', resultJson: JSON.stringify(workerId) })) });
  if (res.some((at) => at === null)) throw new Error('a finish did not apply');
  // Like a worker running handlers between claims: without a pause, one process can take the
  // whole backlog in a tight loop before the other's busy handler ever finds the lock free.
  await new Promise((r) => setTimeout(r, 1));
}
console.log('claimed ' + JSON.stringify(claimed));
await s.close();
`;

/** Child: waits for "go", then migrates the file. */
const MIGRATOR = `
const [mod, path] = process.argv.slice(1);
const { SqliteStorage } = await import(mod);
console.log('ready');
await new Promise((r) => process.stdin.once('data', r));
const s = new SqliteStorage(path);
await s.migrate();
console.log('migrated');
await s.close();
`;

async function startAll(procs: Proc[]): Promise<void> {
  await Promise.all(procs.map((p) => p.line(/^ready$/)));
  for (const p of procs) p.proc.stdin!.end('go\n');
}

describe('sqlite: several instances and processes on one file', () => {
  it('several instances in one process drain one backlog, no job claimed twice', async () => {
    const ts = await makeSqliteStorage('sqlite-multi-instance');
    try {
      const q = uniqueName('q');
      const jobs = Array.from({ length: 400 }, () => jobInsert({ queue: q }));
      await ts.storage.jobInsertMany({ jobs });
      const insts = [ts.storage, ...(await Promise.all([1, 2, 3, 4].map(() => ts.another())))];
      const owner = new Map<string, string>();
      const dupes: string[] = [];
      await Promise.all(
        insts.map(async (s, i) => {
          const workerId = `w${i}`;
          for (;;) {
            const rows = await s.jobClaim({ workerId, queues: [{ name: q, limit: 4 }], leaseMs: 60_000 });
            assert.ok(rows.length <= 4);
            if (rows.length === 0) return;
            for (const r of rows) {
              if (owner.has(r.id)) dupes.push(r.id);
              owner.set(r.id, workerId);
            }
            // Interleave other writes between claims: heartbeats and finishes.
            await s.jobHeartbeat({ workerId, runs: rows.map((r) => ({ jobId: r.id, runCount: r.runCount })), leaseMs: 60_000 });
            const res = applied(await s.jobFinishMany({ items: rows.map((r) => ({ jobId: r.id, workerId, runCount: r.runCount, outcome: 'completed' as const, resultJson: null })) }));
            assert.ok(res.every(Boolean));
          }
        }),
      );
      assert.deepEqual(dupes, []);
      assert.equal(owner.size, 400);
      assert.equal(new Set(owner.values()).size, insts.length, 'every instance claimed something');
      const counts = await ts.storage.jobCountByStatus({ queue: q });
      assert.equal(counts.completed, 400);
    } finally {
      await ts.cleanup();
    }
  });

  it('two child processes claim from one backlog without claiming any job twice', { timeout: 120_000 }, async () => {
    const path = tempPath('two-proc');
    const s = new SqliteStorage(path);
    try {
      await s.migrate();
      const q = uniqueName('q');
      const ids: string[] = [];
      for (let b = 0; b < 6; b++) {
        const batch = Array.from({ length: 250 }, () => jobInsert({ queue: q }));
        await s.jobInsertMany({ jobs: batch });
        ids.push(...batch.map((j) => j.id));
      }
      const procs = [spawnInline(CLAIMER, [path, q]), spawnInline(CLAIMER, [path, q])];
      await startAll(procs);
      const outputs = await Promise.all(procs.map((p) => p.line(/^claimed /)));
      assert.deepEqual(await Promise.all(procs.map((p) => p.exited)), [0, 0]);
      const sets = outputs.map((l) => JSON.parse(l.slice('claimed '.length)) as string[]);
      const [a, b] = sets as [string[], string[]];
      const inA = new Set(a);
      assert.equal(inA.size, a.length, 'process A claimed a job twice');
      assert.equal(new Set(b).size, b.length, 'process B claimed a job twice');
      assert.deepEqual(b.filter((id) => inA.has(id)), [], 'jobs claimed by both processes');
      assert.equal(a.length + b.length, ids.length);
      assert.ok(a.length > 0 && b.length > 0, `both processes claimed (${a.length} / ${b.length})`);
      const rows = await s.jobList({ queue: q, limit: 10_000 });
      for (const r of rows) {
        assert.equal(r.status, 'completed');
        assert.equal(r.runCount, 1);
      }
    } finally {
      await s.close();
    }
  });

  it('concurrent migrate() from several instances and several processes all succeed', { timeout: 120_000 }, async () => {
    const path = tempPath('concurrent-migrate');
    const procs = [0, 1, 2, 3].map(() => spawnInline(MIGRATOR, [path]));
    await startAll(procs);
    const local = [0, 1, 2, 3].map(() => new SqliteStorage(path));
    await Promise.all(local.map((s) => s.migrate()));
    await Promise.all(procs.map((p) => p.line(/^migrated$/)));
    assert.deepEqual(await Promise.all(procs.map((p) => p.exited)), [0, 0, 0, 0]);
    for (const s of local) await s.close();
    const raw = new Database(path, { readonly: true });
    try {
      const ledger = raw.prepare('SELECT version, name FROM sdj_migrations ORDER BY version').all();
      assert.deepEqual(ledger, MIGRATIONS.map((m) => ({ version: m.version, name: m.name })));
      assert.equal(raw.pragma('journal_mode', { simple: true }), 'wal');
    } finally {
      raw.close();
    }
  });
});

describe('sqlite: migrations', () => {
  it('migrate() on an existing, populated database changes nothing and keeps the data', async () => {
    const path = tempPath('remigrate');
    const s = new SqliteStorage(path);
    await s.migrate();
    const id = await insertJob(s, { queue: uniqueName('q'), argsJson: '{"keep":true}' });
    await s.close();
    const s2 = new SqliteStorage(path);
    await s2.migrate();
    await s2.migrate();
    assert.equal((await mustGet(s2, id)).argsJson, '{"keep":true}');
    await s2.close();
    const raw = new Database(path, { readonly: true });
    try {
      assert.equal((raw.prepare('SELECT COUNT(*) AS n FROM sdj_migrations').get() as { n: number }).n, MIGRATIONS.length);
    } finally {
      raw.close();
    }
  });

  it('refuses a schema newer than the code with SchemaTooNewError, writing nothing', async () => {
    const path = tempPath('too-new');
    const s = new SqliteStorage(path);
    await s.migrate();
    const raw = new Database(path);
    const known = MIGRATIONS.length;
    raw.prepare('INSERT INTO sdj_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(known + 41, 'from_the_future', Date.now());
    const s2 = new SqliteStorage(path);
    await assert.rejects(s2.migrate(), (e) => e instanceof SchemaTooNewError && e.found === known + 41 && e.known === known);
    assert.equal((raw.prepare('SELECT COUNT(*) AS n FROM sdj_migrations').get() as { n: number }).n, known + 1);
    raw.close();
    await s2.close();
    await s.close();
  });
});

describe('sqlite: connections', () => {
  it("works on ':memory:' (one private database per instance)", async () => {
    const s = new SqliteStorage(':memory:');
    await s.migrate();
    const { fence } = await runningJob(s);
    assert.deepEqual(applied(await s.jobFinishMany({ items: [{ ...fence, outcome: 'completed', resultJson: '"mem"' }] })), [true]);
    assert.equal((await mustGet(s, fence.jobId)).resultJson, '"mem"');
    const other = new SqliteStorage(':memory:');
    await assert.rejects(other.jobGet({ id: fence.jobId }), StorageError, 'another :memory: instance has no tables');
    await other.close();
    await s.close();
  });

  it('uses a user Database without closing it, and applies busyTimeoutMs only when given', async () => {
    const path = tempPath('user-db');
    const db = new Database(path);
    db.pragma('journal_mode = WAL');
    const s = new SqliteStorage(db, { busyTimeoutMs: 1234 });
    assert.equal(db.pragma('busy_timeout', { simple: true }), 1234);
    await s.migrate();
    const { fence } = await runningJob(s);
    assert.deepEqual(applied(await s.jobFinishMany({ items: [{ ...fence, outcome: 'completed', resultJson: null }] })), [true]);
    await s.close();
    assert.equal(db.open, true, 'the user database stays open');
    assert.equal((db.prepare('SELECT status FROM sdj_jobs WHERE id = ?').get(fence.jobId) as { status: string }).status, 'completed');
    await assert.rejects(s.jobGet({ id: fence.jobId }), StorageClosedError);
    const s2 = new SqliteStorage(db);
    assert.equal(db.pragma('busy_timeout', { simple: true }), 1234, 'left as configured');
    await s2.close();
    db.close();
  });

  it('sets WAL, busy_timeout and synchronous=NORMAL on files it opens', async () => {
    const path = tempPath('pragmas');
    const s = new SqliteStorage(path, { busyTimeoutMs: 2500 });
    await s.migrate();
    const raw = new Database(path, { readonly: true });
    assert.equal(raw.pragma('journal_mode', { simple: true }), 'wal');
    raw.close();
    await s.close();
  });

  it('configures the connections it opens (temp_store=MEMORY among them), and leaves a user Database as it is', () => {
    const path = tempPath('connection-pragmas');
    const { db, owned } = openDatabase(path, { busyTimeoutMs: 2500 });
    try {
      assert.equal(owned, true);
      assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
      assert.equal(db.pragma('busy_timeout', { simple: true }), 2500);
      assert.equal(db.pragma('synchronous', { simple: true }), 1, 'NORMAL');
      assert.equal(db.pragma('temp_store', { simple: true }), 2, 'MEMORY: temporary b-trees of a statement stay in memory');
    } finally {
      db.close();
    }
    const mine = new Database(tempPath('connection-pragmas-user'));
    try {
      assert.equal(openDatabase(mine as never, {}).owned, false);
      assert.equal(mine.pragma('temp_store', { simple: true }), 0, 'a user Database keeps its own setting');
    } finally {
      mine.close();
    }
  });

  it('rejects bad arguments', () => {
    assert.throws(() => new SqliteStorage(''), InvalidArgumentError);
    assert.throws(() => new SqliteStorage({} as never), InvalidArgumentError);
    assert.throws(() => new SqliteStorage(':memory:', { busyTimeoutMs: -1 }), InvalidArgumentError);
  });

  it('close() is idempotent and later calls reject with StorageClosedError', async () => {
    const s = new SqliteStorage(':memory:');
    await s.migrate();
    await s.close();
    await s.close();
    await assert.rejects(s.clockNow(), StorageClosedError);
    await assert.rejects(s.jobClaim({ workerId: 'w', queues: [{ name: 'q', limit: 1 }], leaseMs: 1000 }), StorageClosedError);
    await assert.rejects(s.migrate(), StorageClosedError);
  });

  it('turns a lock held elsewhere past busy_timeout into a StorageError carrying SQLITE_BUSY', async () => {
    const path = tempPath('busy');
    const s = new SqliteStorage(path, { busyTimeoutMs: 50 });
    await s.migrate();
    const raw = new Database(path);
    raw.exec('BEGIN IMMEDIATE');
    try {
      await assert.rejects(s.jobInsertMany({ jobs: [jobInsert()] }), (e) => {
        assert.ok(e instanceof StorageError);
        assert.match(String((e.cause as { code?: unknown }).code), /^SQLITE_BUSY/);
        return true;
      });
      // Reads still work while another connection writes (WAL).
      assert.deepEqual(await s.jobList({ limit: 10 }), []);
    } finally {
      raw.exec('ROLLBACK');
      raw.close();
    }
    assert.equal((await s.jobInsertMany({ jobs: [jobInsert()] })).inserted.length, 1);
    await s.close();
  });

  it('uses the injected clock for run_at, leases and created_at', async () => {
    let now = 1_000_000;
    const s = new SqliteStorage(':memory:', { clock: () => now });
    await s.migrate();
    const q = uniqueName('q');
    const id = await insertJob(s, { queue: q, delayMs: 500 });
    assert.equal((await mustGet(s, id)).runAt, 1_000_500);
    assert.deepEqual(await claim(s, q, 1), []);
    now += 500;
    const row = await claimOne(s, q, id, { leaseMs: 100 });
    assert.equal(row.startedAt, 1_000_500);
    assert.equal(row.leaseExpiresAt, 1_000_600);
    now += 100;
    assert.deepEqual(await s.jobReclaimExpired({ limit: 10 }), [], 'the lease is valid through its last millisecond');
    now += 1;
    assert.equal((await s.jobReclaimExpired({ limit: 10 }))[0]?.id, id);
    await s.close();
  });
});

describe('sqlite: enqueue inside the user transaction (tx)', () => {
  function setup(label: string): { path: string; db: BetterSqlite3.Database; s: SqliteStorage } {
    const path = tempPath(label);
    const db = new Database(path);
    db.pragma('journal_mode = WAL');
    db.exec('CREATE TABLE orders (id TEXT PRIMARY KEY)');
    const s = new SqliteStorage(path);
    return { path, db, s };
  }

  it('commits the jobs with the user transaction and rolls them back with it', async () => {
    const { db, s } = setup('tx-commit');
    await s.migrate();
    const q = uniqueName('q');
    const kept = jobInsert({ queue: q });
    let pending: Promise<{ inserted: string[] }> | undefined;
    db.transaction(() => {
      db.prepare('INSERT INTO orders (id) VALUES (?)').run('o1');
      pending = s.jobInsertMany({ jobs: [kept], tx: db });
    })();
    assert.deepEqual(await pending, { inserted: [kept.id], ids: [kept.id] });
    assert.equal((await mustGet(s, kept.id)).status, 'pending', 'visible to other connections after commit');

    const dropped = jobInsert({ queue: q });
    assert.throws(() =>
      db.transaction(() => {
        db.prepare('INSERT INTO orders (id) VALUES (?)').run('o2');
        void s.jobInsertMany({ jobs: [dropped], tx: db });
        throw new Error('user rollback');
      })(),
    );
    assert.equal(await s.jobGet({ id: dropped.id }), undefined, 'rolled back with the user transaction');
    assert.equal(db.prepare('SELECT COUNT(*) AS n FROM orders').pluck().get(), 1);
    await s.close();
    db.close();
  });

  it('a duplicate inside the user transaction rejects and undoes only the batch', async () => {
    const { db, s } = setup('tx-dup');
    await s.migrate();
    const key = uniqueName('key');
    await insertJob(s, { uniqueKey: key });
    const other = jobInsert();
    let pending: Promise<unknown> | undefined;
    db.transaction(() => {
      db.prepare('INSERT INTO orders (id) VALUES (?)').run('o1');
      pending = s.jobInsertMany({ jobs: [other, jobInsert({ uniqueKey: key })], tx: db });
      pending.catch(() => {});
    })();
    await assert.rejects(pending!, (e) => e instanceof DuplicateJobError && e.uniqueKey === key);
    assert.equal(await s.jobGet({ id: other.id }), undefined);
    assert.equal(db.prepare('SELECT COUNT(*) AS n FROM orders').pluck().get(), 1, 'the user transaction committed the rest');
    await s.close();
    db.close();
  });

  it("accepts the storage's own Database as tx, and rejects another file's", async () => {
    const { db, s } = setup('tx-own');
    await s.migrate();
    const own = new SqliteStorage(db);
    const j = jobInsert();
    assert.deepEqual(await own.jobInsertMany({ jobs: [j], tx: db }), { inserted: [j.id], ids: [j.id] });
    const elsewhere = new Database(tempPath('tx-elsewhere'));
    await assert.rejects(s.jobInsertMany({ jobs: [jobInsert()], tx: elsewhere }), InvalidArgumentError);
    await assert.rejects(s.jobInsertMany({ jobs: [jobInsert()], tx: { not: 'a db' } as never }), InvalidArgumentError);
    elsewhere.close();
    await own.close();
    await s.close();
    db.close();
  });
});

describe('sqlite: wake-ups', () => {
  it('jobSuspend waiting for a signal that is already buffered goes straight back to pending', async () => {
    const s = new SqliteStorage(':memory:');
    await s.migrate();
    const { fence } = await runningJob(s);
    await s.signalSend({ jobId: fence.jobId, name: 'go', payloadJson: '1' });
    assert.equal(await s.jobSuspend({ fence, step: null, wakeAt: null, waitSignal: 'go' }), true);
    const row = await mustGet(s, fence.jobId);
    assert.equal(row.status, 'pending');
    assert.equal(row.attempt, 0);
    await s.close();
  });

  it('the recovery sweep wakes a parent still waiting on a decided fan-out, but not one waiting on a later step', async () => {
    const path = tempPath('sweep');
    const s = new SqliteStorage(path);
    await s.migrate();
    const raw = new Database(path);
    const suspendOn = async (): Promise<{ parent: string; fanOutId: string; child: string }> => {
      const { fence } = await runningJob(s);
      const fanOutId = newId();
      const child = jobInsert({ queue: uniqueName('q'), parentId: fence.jobId, fanOutId, fanOutIndex: 0 });
      assert.equal(
        await s.jobSuspendFanOut({
          fence,
          step: stepRow(fence.jobId, 0, { outputJson: JSON.stringify(fanOutId) }),
          fanOut: { id: fanOutId, strategy: 'fail-fast', threshold: null, timeoutMs: null },
          children: [child],
        }),
        true,
      );
      return { parent: fence.jobId, fanOutId, child: child.id };
    };
    // Simulate a decision whose resume was lost: decide the fan-out behind the driver's back.
    const a = await suspendOn();
    raw.prepare("UPDATE sdj_fan_outs SET status = 'succeeded', decided_at = 1, succeeded = 1 WHERE id = ?").run(a.fanOutId);
    // A parent whose decided fan-out is followed by a later (sleep) step is not woken by it.
    const b = await suspendOn();
    raw.prepare("UPDATE sdj_fan_outs SET status = 'succeeded', decided_at = 1, succeeded = 1 WHERE id = ?").run(b.fanOutId);
    raw.prepare("INSERT INTO sdj_steps (job_id, step_index, step_name, status, output, created_at) VALUES (?, 1, 'sleep', 'waiting', '1', 1)").run(b.parent);
    const woken = await s.jobWakeDue({ limit: 100 });
    assert.ok(woken.includes(a.parent));
    assert.ok(!woken.includes(b.parent));
    assert.equal((await mustGet(s, a.parent)).status, 'pending');
    assert.equal((await mustGet(s, b.parent)).status, 'waiting');
    assert.deepEqual(await s.jobWakeDue({ limit: 100 }), [], 'woken once');
    raw.close();
    await s.close();
  });
});

describe('sqlite: fan-out counters', () => {
  it('a retried failed child leaves its fan-out counters and is counted once when it ends', async () => {
    const s = new SqliteStorage(':memory:');
    await s.migrate();
    const { fence } = await runningJob(s);
    const fanOutId = newId();
    const q = uniqueName('q');
    const kids = [0, 1].map((i) => jobInsert({ queue: q, parentId: fence.jobId, fanOutId, fanOutIndex: i }));
    assert.equal(
      await s.jobSuspendFanOut({
        fence,
        step: stepRow(fence.jobId, 0, { stepName: 'fan-out', outputJson: JSON.stringify(fanOutId) }),
        fanOut: { id: fanOutId, strategy: 'collect-all', threshold: null, timeoutMs: null },
        children: kids,
      }),
      true,
    );
    const a = await claimOne(s, q, kids[0]!.id);
    assert.deepEqual(applied(await s.jobFinishMany({ items: [{ jobId: a.id, workerId: a.lockedBy!, runCount: a.runCount, outcome: 'failed', error: 'x' }] })), [true]);
    assert.equal((await s.fanOutGet({ id: fanOutId }))?.failed, 1);
    await s.jobRetry({ id: a.id });
    assert.equal((await s.fanOutGet({ id: fanOutId }))?.failed, 0);
    // The retried child runs again, alongside its sibling.
    const rows = await claim(s, q, 5);
    assert.deepEqual(rows.map((r) => r.id).sort(), kids.map((k) => k.id).sort());
    const items = rows.map((r) => ({ jobId: r.id, workerId: r.lockedBy!, runCount: r.runCount, outcome: 'completed' as const, resultJson: null }));
    assert.deepEqual(applied(await s.jobFinishMany({ items })), [true, true]);
    const f = await s.fanOutGet({ id: fanOutId });
    assert.deepEqual([f?.status, f?.succeeded, f?.failed, f?.cancelled], ['succeeded', 2, 0, 0]);
    assert.equal((await mustGet(s, fence.jobId)).status, 'pending');
    await s.close();
  });
});

describe('sqlite: storage interface', () => {
  it('is a Storage with the sqlite dialect, waking workers through dataVersion()', async () => {
    const s: Storage = new SqliteStorage(':memory:');
    assert.equal(s.dialect, 'sqlite');
    assert.equal(typeof s.dataVersion, 'function');
    assert.equal(s.listen, undefined, 'no listen(): SQLite has no cross-process push');
    await s.close();
    assert.ok(existsSync(DRIVER_MODULE));
  });
});
