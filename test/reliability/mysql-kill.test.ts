/**
 * Dropped connections on MySQL/MariaDB: while three worker processes drain a backlog, the test
 * `KILL`s their server connections at random (preferring ones running a statement: claims,
 * completion batches, heartbeats). Every job completes, none is completed twice (a worker prints
 * `completed <id>` only when its fenced write applied), every job ran, and no worker crashes.
 * (The PostgreSQL counterpart, with a full server stop, is outage.test.ts.) Runs on the MySQL
 * server of the test matrix; it is part of the matrix only when STORAGE includes mysql.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import mysql from 'mysql2/promise';
import { Queue } from '../../src/queue/queue.js';
import { spawnFixture, type Child } from '../helpers/child.js';
import { MYSQL_URL, sharedStorage } from '../helpers/process-storage.js';
import { storageMatrix } from '../helpers/storages.js';
import { waitFor } from '../helpers/wait-for.js';

const FIXTURE = new URL('./fixtures/kill-worker.ts', import.meta.url).pathname;
const JOBS = 2000;

for (const [dialect] of storageMatrix().filter(([d]) => d === 'mysql')) {
  describe(`dropped connections (${dialect})`, () => {
    const kids: Child[] = [];
    after(async () => {
      for (const k of kids) if (k.proc.exitCode === null && k.proc.signalCode === null) k.proc.kill('SIGKILL');
      await Promise.all(kids.map((k) => k.exited));
    });

    it('KILL of worker connections mid-run: every job completes once, no worker crashes', async (t) => {
      const shared = await sharedStorage(dialect);
      const admin = await mysql.createConnection(MYSQL_URL);
      let stderr = '';
      try {
        for (const n of ['W1', 'W2', 'W3']) {
          const k = spawnFixture(FIXTURE, { ...shared.env, SDJ_WORKER_NAME: n, SDJ_LEASE_MS: '2000' });
          k.proc.stderr!.on('data', (d: Buffer) => (stderr += `${n}: ${d.toString()}`));
          kids.push(k);
        }
        await Promise.all(kids.map((k) => k.waitForLine(/^ready$/)));
        const queue = new Queue(shared.storage);
        const ids: string[] = [];
        for (let i = 0; i < JOBS; i += 500) {
          ids.push(...(await queue.enqueueBatch(Array.from({ length: 500 }, (_, j) => ({ type: 'note', args: { n: i + j, ms: 10 }, options: { retries: 20 } })))));
        }
        const db = new URL(shared.env['SDJ_MYSQL_URL']!).pathname.slice(1);
        let killed = 0;
        let done = false;
        const killer = (async () => {
          while (!done && killed < 40) {
            const [rows] = (await admin.query("SELECT id, command FROM information_schema.processlist WHERE db = ? AND id <> CONNECTION_ID()", [db])) as [{ id: number; command: string }[], unknown];
            const busy = rows.filter((r) => r.command === 'Query');
            const pool = busy.length > 0 ? busy : rows;
            const pick = pool[Math.floor(Math.random() * pool.length)];
            if (pick) {
              await admin.query(`KILL ${Number(pick.id)}`).catch(() => {});
              killed++;
            }
            await delay(pick ? 100 : 5);
          }
        })();
        try {
          await waitFor(async () => (await queue.stats().catch(() => undefined))?.completed === JOBS, { timeout: 120_000, message: 'every job completed' });
        } finally {
          done = true;
          await killer;
        }
        t.diagnostic(`connections killed: ${killed}`);
        assert.ok(killed >= 10, `killed ${killed} connections`);
        const counts = await waitFor(() => queue.stats().catch(() => undefined), { message: 'stats' });
        assert.deepEqual(counts, { pending: 0, running: 0, waiting: 0, completed: JOBS, failed: 0, cancelled: 0, paused: 0 });
        const completed = new Map<string, number>();
        const ran = new Set<string>();
        for (const k of kids) {
          for (const l of k.lines) {
            if (l.startsWith('completed ')) completed.set(l.slice(10), (completed.get(l.slice(10)) ?? 0) + 1);
            if (l.startsWith('ran ')) ran.add(l.slice(4));
          }
        }
        assert.deepEqual([...completed].filter(([, n]) => n > 1), [], 'no job completed twice');
        assert.deepEqual(ids.filter((id) => !ran.has(id)), [], 'every job ran');
        for (const [i, k] of kids.entries()) assert.equal(k.proc.exitCode, null, `worker W${i + 1} is alive; stderr: ${stderr}`);
        for (const k of kids) k.proc.kill('SIGTERM');
        assert.deepEqual(await Promise.all(kids.map((k) => k.exited)), [0, 0, 0], `workers stop cleanly; stderr: ${stderr}`);
      } finally {
        await admin.end();
        await shared.cleanup();
      }
    });
  });
}
