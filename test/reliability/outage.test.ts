/**
 * @storage postgres
 * Database outages on a PRIVATE PostgreSQL cluster (initdb'd for this file; stopping the
 * machine's shared server would break the other test files running in parallel):
 *
 * 1. The server is stopped (`pg_ctl stop -m fast`) for several seconds in the middle of a run
 *    and started again: the worker processes log, back off, reconnect (the LISTEN connection
 *    too) and finish every job; none crashes; no job is lost or completed twice.
 * 2. `pg_terminate_backend` kills the workers' connections while they claim and while they
 *    write completion batches (and their LISTEN connections): same promises.
 *
 * "Completed twice" is checked on the workers' side: a worker prints `completed <id>` only when
 * its fenced completion applied, so no id may appear twice across processes. Each handler
 * writes a row to `outage_effects` first, so every job is seen to have run at least once.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import pg from 'pg';
import { Queue } from '../../src/queue/queue.js';
import { channelFor } from '../../src/storage/postgres/executor.js';
import { PostgresStorage } from '../../src/storage/postgres/postgres-storage.js';
import type { JobCounts } from '../../src/types.js';
import { LISTENER_PING, listenSql } from '../../src/storage/postgres/queries/admin.js';
import { spawnFixture, type Child } from '../helpers/child.js';
import { waitFor } from '../helpers/wait-for.js';
import { startPrivatePostgres, type PrivatePostgres } from './support/private-postgres.js';

const FIXTURE = new URL('./fixtures/outage-worker.ts', import.meta.url).pathname;
const WORKERS = 3;
const APP = 'sdj-outage-worker';

/** One isolated run: a schema on the private cluster, its storage and worker processes. */
interface Rig {
  schema: string;
  storage: PostgresStorage;
  queue: Queue;
  admin: pg.Client;
  kids: Child[];
  stderr: string[];
}

describe('PostgreSQL outages (private cluster)', () => {
  let cluster: PrivatePostgres | undefined;
  const rigs: Rig[] = [];

  before(async () => {
    cluster = await startPrivatePostgres();
  });

  after(async () => {
    for (const r of rigs) {
      for (const k of r.kids) if (k.proc.exitCode === null && k.proc.signalCode === null) k.proc.kill('SIGKILL');
      await Promise.all(r.kids.map((k) => k.exited));
      await r.storage.close().catch(() => {});
      await r.admin.end().catch(() => {});
    }
    await cluster?.destroy();
  });

  async function rig(pollMs: number): Promise<Rig> {
    assert.ok(cluster, 'the private cluster is running');
    const schema = `sdj_outage_${randomBytes(4).toString('hex')}`;
    const admin = new pg.Client({ connectionString: cluster.url });
    admin.on('error', () => {}); // the outage test kills this connection too; it reconnects below
    await admin.connect();
    const storage = new PostgresStorage(cluster.url, { schema, max: 4 });
    await storage.migrate();
    await admin.query(`CREATE TABLE "${schema}".outage_effects (job_id text NOT NULL, worker text NOT NULL, at bigint NOT NULL)`);
    const url = `${cluster.url}?application_name=${APP}`;
    const r: Rig = { schema, storage, queue: new Queue(storage), admin, kids: [], stderr: [] };
    rigs.push(r);
    for (let i = 1; i <= WORKERS; i++) {
      const kid = spawnFixture(FIXTURE, { SDJ_PG_URL: url, SDJ_PG_SCHEMA: schema, SDJ_WORKER_NAME: `W${i}`, SDJ_LEASE_MS: '2000', SDJ_POLL_MS: String(pollMs) });
      kid.proc.stderr!.on('data', (d: Buffer) => r.stderr.push(`W${i}: ${d.toString()}`));
      r.kids.push(kid);
    }
    await Promise.all(r.kids.map((k) => k.waitForLine(/^ready$/)));
    return r;
  }

  /** Job counts, or undefined while the database is unreachable. */
  async function counts(r: Rig): Promise<JobCounts | undefined> {
    return r.queue.stats().catch(() => undefined);
  }

  async function enqueue(r: Rig, n: number, ms: number): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < n; i += 250) {
      const batch = Array.from({ length: Math.min(250, n - i) }, (_, j) => ({ type: 'effect', args: { n: i + j, ms }, options: { retries: 20 } }));
      ids.push(...(await r.queue.enqueueBatch(batch)));
    }
    return ids;
  }

  /** The common verdict: all completed, each at most once by a worker, each ran, nobody crashed. */
  async function verify(r: Rig, ids: string[]): Promise<void> {
    const c = await counts(r);
    assert.deepEqual(c, { pending: 0, running: 0, waiting: 0, completed: ids.length, failed: 0, cancelled: 0, paused: 0 }, 'every job completed');
    const seen = new Map<string, number>();
    for (const k of r.kids) for (const l of k.lines) if (l.startsWith('completed ')) seen.set(l.slice(10), (seen.get(l.slice(10)) ?? 0) + 1);
    const twice = [...seen].filter(([, n]) => n > 1);
    assert.deepEqual(twice, [], 'no job completed twice');
    // A completion that committed while its connection died is not seen by its worker: at most once, not exactly.
    assert.ok(seen.size >= ids.length * 0.9, `workers saw ${seen.size} of ${ids.length} completions`);
    const ran = await r.admin.query<{ job_id: string }>(`SELECT DISTINCT job_id FROM "${r.schema}".outage_effects`);
    const ranIds = new Set(ran.rows.map((x) => x.job_id));
    assert.deepEqual(ids.filter((id) => !ranIds.has(id)), [], 'every job ran (has a side effect)');
    for (const [i, k] of r.kids.entries()) {
      assert.equal(k.proc.exitCode, null, `worker W${i + 1} is still alive (no crash); stderr: ${r.stderr.join('')}`);
      assert.equal(k.proc.signalCode, null, `worker W${i + 1} was not killed by a signal`);
    }
    for (const k of r.kids) k.proc.kill('SIGTERM');
    const codes = await Promise.all(r.kids.map((k) => k.exited));
    assert.deepEqual(codes, r.kids.map(() => 0), `workers stop cleanly; stderr: ${r.stderr.join('')}`);
  }

  /**
   * How many worker backends hold a LISTEN on the rig's channel: idle connections whose last
   * statement was the LISTEN or the listener's periodic health-check ping (nothing else runs on
   * the dedicated listener connection).
   */
  async function listeners(r: Rig): Promise<number> {
    const res = await r.admin.query<{ n: string }>(
      "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1 AND query = ANY($2::text[]) AND state = 'idle'",
      [APP, [listenSql(channelFor(r.schema)), LISTENER_PING]],
    );
    return Number(res.rows[0]?.n ?? 0);
  }

  /** Waits until every worker listens; on timeout the error lists the workers' backends. */
  async function waitForListeners(r: Rig, what: string): Promise<void> {
    try {
      await waitFor(async () => (await listeners(r)) === WORKERS, { timeout: 30_000, message: what });
    } catch (e) {
      const all = await r.admin.query('SELECT pid, state, left(query, 60) AS query FROM pg_stat_activity WHERE application_name = $1', [APP]);
      const logs = r.kids.map((k, i) => `W${i + 1}: ${k.lines.filter((l) => (l.startsWith('log ') && /listen/.test(l)) || !/^(log|completed|ready)/.test(l)).slice(-12).join(' | ')}`);
      throw new Error(`${(e as Error).message}\nbackends: ${JSON.stringify(all.rows)}\n${logs.join('\n')}`, { cause: e });
    }
  }

  it('a server stop mid-run: workers back off, reconnect (LISTEN too) and finish every job once', async () => {
    assert.ok(cluster);
    // A slow poll: after the restart, prompt pickup of a new job proves LISTEN/NOTIFY is back.
    const r = await rig(8000);
    await waitFor(async () => (await listeners(r)) === WORKERS, { timeout: 20_000, message: 'every worker listens' });
    const ids = await enqueue(r, 2000, 20);
    await waitFor(async () => ((await counts(r))?.completed ?? 0) >= 300, { timeout: 60_000, message: '300 jobs completed before the outage' });
    const logged = r.kids.map((k) => k.lines.length);
    const stoppedAt = Date.now();
    await cluster.stop();
    const reach = await r.storage.clockNow().then(() => 'reachable').catch(() => 'unreachable');
    assert.equal(reach, 'unreachable', 'the server is down');
    // Every worker notices (a failed claim, heartbeat or completion is logged)...
    await waitFor(() => r.kids.every((k, i) => k.lines.slice(logged[i]).some((l) => l.startsWith('log warn') || l.startsWith('log error'))), { timeout: 20_000, message: 'every worker logged the outage' }).catch((e: Error) => {
      const tails = r.kids.map((k, i) => `W${i + 1} (exit ${String(k.proc.exitCode)}): ${k.lines.slice(logged[i]).slice(-4).join(' | ')}`);
      throw new Error(`${e.message}\n${tails.join('\n')}\nstderr: ${r.stderr.join('').slice(-2000)}`);
    });
    // ...and the outage lasts 5 s in all: longer than the 2 s lease, so running jobs' leases expire.
    await delay(Math.max(0, 5000 - (Date.now() - stoppedAt)));
    await cluster.start();
    await r.admin.end().catch(() => {});
    r.admin = new pg.Client({ connectionString: cluster.url });
    r.admin.on('error', () => {});
    await r.admin.connect();

    await waitFor(async () => ((await counts(r))?.completed ?? 0) === ids.length, { timeout: 90_000, message: 'every job completed after the restart' });
    await waitForListeners(r, 'every worker re-established its LISTEN connection');
    for (let i = 0; i < 3; i++) {
      const t0 = Date.now();
      const [probe] = await enqueue(r, 1, 1);
      const job = await r.queue.waitForJob(probe!, { timeout: 10_000, pollInterval: 20 });
      assert.equal(job.status, 'completed');
      assert.ok(Date.now() - t0 < 4000, `probe ${i} took ${Date.now() - t0} ms: woken by NOTIFY, not by the 8 s poll`);
      ids.push(probe!);
    }
    await verify(r, ids);
  });

  it('pg_terminate_backend during claims, completion batches and LISTEN: every job completes once', async (t) => {
    const r = await rig(1000);
    const ids = await enqueue(r, 1500, 15);
    const killed = { claim: 0, finish: 0, listen: 0 };
    const limit = { claim: 12, finish: 12, listen: WORKERS };
    let done = false;
    const terminator = (async () => {
      const deadline = Date.now() + 150_000;
      while (!done && Date.now() < deadline) {
        const res = await r.admin.query<{ pid: number; query: string; state: string }>(
          "SELECT pid, query, state FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid() AND (state = 'active' OR query LIKE 'LISTEN %')",
          [APP],
        );
        let hit = false;
        for (const b of res.rows) {
          const kind = b.query.includes('SKIP LOCKED') && b.query.includes('attempt = j.attempt + 1') && b.state === 'active'
            ? 'claim'
            : b.query.includes('AS i(job_id, worker_id') && b.state === 'active'
              ? 'finish'
              : b.query.startsWith('LISTEN ')
                ? 'listen'
                : undefined;
          if (kind === undefined || killed[kind] >= limit[kind]) continue;
          const t = await r.admin.query<{ ok: boolean }>('SELECT pg_terminate_backend($1) AS ok', [b.pid]);
          if (t.rows[0]?.ok) killed[kind]++;
          hit = true;
          break;
        }
        // Spread the damage over the run; poll fast to catch statements in flight.
        await delay(hit ? 150 : 2);
      }
    })();
    const enough = (): boolean => killed.claim >= 3 && killed.finish >= 3 && killed.listen >= 1;
    try {
      // Keep work flowing until each kind of connection was caught in flight a few times.
      await waitFor(
        async () => {
          const c = await counts(r);
          if (!c) return false;
          const open = c.pending + c.running;
          if (!enough() && open < 300 && ids.length < 8000) ids.push(...(await enqueue(r, 500, 15)));
          return c.completed === ids.length && enough();
        },
        { timeout: 150_000, message: 'every job completed' },
      );
    } finally {
      done = true;
      await terminator;
    }
    t.diagnostic(`connections terminated: ${JSON.stringify(killed)}`);
    assert.ok(killed.claim >= 1, `terminated at least one connection during a claim (${JSON.stringify(killed)})`);
    assert.ok(killed.finish >= 1, `terminated at least one connection during a completion batch (${JSON.stringify(killed)})`);
    assert.ok(killed.listen >= 1, `terminated at least one LISTEN connection (${JSON.stringify(killed)})`);
    assert.ok(r.kids.some((k) => k.lines.some((l) => l.startsWith('log warn') || l.startsWith('log error'))), 'the workers logged the dropped connections');
    await waitForListeners(r, 'every worker listens again');
    await verify(r, ids);
  });
});
