/**
 * The `sdj` suite for one database: every command run as a child process (dist/cli/main.js)
 * against data seeded with the library in the test process, checking the human output, the
 * `--json` output, the exit code and the error line. Each driver's test file calls
 * {@link runCliSuite} with a fresh, empty database of its own.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Queue } from '../../src/queue/queue.js';
import { every } from '../../src/scheduler/schedules.js';
import { SKIP_PARENT_UNFINISHED } from '../../src/storage/shared/contract-messages.js';
import type { Storage } from '../../src/storage/storage.js';
import { completedJob, failedJob, fanOutParent, insertJob, newId, uniqueName } from '../helpers/factories.js';
import { assertBuilt, fails, ok, okJson, rowOf, sdj } from './run-cli.js';

/** A fresh, empty (not migrated) database for the suite. */
export interface CliDatabase {
  /** The connection arguments: `--db <url-or-file>` and maybe `--schema <s>`. */
  args: string[];
  /** A storage on the same database, for seeding and checking (opened after `sdj migrate`). */
  open: () => Storage;
  /** Drops what the suite made (after the storages are closed). */
  cleanup: () => Promise<void>;
}

interface JobJson {
  id: string;
  status: string;
  queue: string;
  type: string;
  lastError?: string;
}

/** Registers the suite for one driver. */
export function runCliSuite(driver: string, makeDatabase: () => Promise<CliDatabase>): void {
  describe(`sdj on ${driver}`, () => {
    let db: CliDatabase;
    let storage: Storage;
    let queue: Queue;
    const q = uniqueName('cli');
    const kidsQueue = uniqueName('cli_kids');
    const schedule = uniqueName('cli_sched');
    const workerName = uniqueName('cli_worker');
    const ids = { failed: [] as string[], completed: '', pending: '', parent: '', kids: [] as string[] };
    const run = (...args: string[]) => sdj([...db.args, ...args]);
    /** Runs read-only invocations at once (each is a process; the database serves them together). */
    const runAll = (...argLists: string[][]) => Promise.all(argLists.map((a) => run(...a)));

    before(async () => {
      assertBuilt();
      db = await makeDatabase();
    });
    after(async () => {
      await storage?.close();
      await db?.cleanup();
    });

    it('migrate creates the tables, and again is a no-op', async () => {
      assert.match(ok(await run('migrate'), 'migrate'), /is migrated\.$/m);
      assert.deepEqual(okJson(await run('migrate', '--json'), 'migrate --json')['migrated'], true);
      storage = db.open();
      queue = new Queue(storage);
      // Seed: two failed jobs, one completed, one pending, a workflow waiting on three sub-jobs
      // and a schedule.
      for (let i = 0; i < 2; i++) ids.failed.push((await failedJob(storage, { queue: q, type: 'send-email' }, 'SMTP timeout after 30s')).id);
      ids.completed = (await completedJob(storage, { queue: q, type: 'report' })).id;
      // The workflow's parent is claimed from q, so it goes in before any pending job of q.
      const wf = await fanOutParent(storage, { n: 3, childQueue: kidsQueue }, { queue: q, type: 'workflow' });
      ids.parent = wf.parentId;
      ids.kids = wf.childIds;
      ids.pending = await insertJob(storage, { queue: q, type: 'send-email', argsJson: '{"to":"a@example.com"}' });
      await queue.schedule(schedule, every(3_600_000), { type: 'hourly-report', queue: q });
    });

    it('status shows every queue with its depth and its limits', async () => {
      const limited = uniqueName('limited');
      await queue.setQueueLimits(limited, { concurrency: 5, rateLimit: { limit: 10, period: 500 } });
      const [human, json] = await runAll(['status'], ['status', '--json']);
      await queue.setQueueLimits(limited, null);
      const out = ok(human!, 'status');
      assert.match(out, /^QUEUE\s+PAUSED\s+PENDING\s+RUNNING\s+WAITING\s+FAILED\s+OLDEST PENDING\s+LIMITS$/m);
      assert.match(out, new RegExp(`^${limited}\\s+no\\s+0\\s+0\\s+0\\s+0\\s+-\\s+0/5 running, 10 per 500ms$`, 'm'));
      assert.equal(rowOf(out, q).at(-1), '-', 'a queue without limits');
      assert.ok(!out.includes('\u001b['), 'no colour when stdout is not a terminal');
      assert.deepEqual(rowOf(out, q).slice(1, 6), ['no', '1', '0', '1', '2']);
      assert.deepEqual(rowOf(out, kidsQueue).slice(1, 6), ['no', '3', '0', '0', '0']);
      const { queues } = okJson<{ queues: { name: string; pending: number; failed: number; waiting: number; paused: boolean }[] }>(json!, 'status --json');
      const mine = queues.find((x) => x.name === q);
      assert.deepEqual({ pending: mine?.pending, failed: mine?.failed, waiting: mine?.waiting, paused: mine?.paused }, { pending: 1, failed: 2, waiting: 1, paused: false });
    });

    it('jobs list filters, pages and searches', async () => {
      const [all, failedJson, twoJson, searchJson, firstPage, none] = await runAll(
        ['jobs', 'list', '--queue', q],
        ['jobs', 'list', '--queue', q, '--status', 'failed', '--json'],
        ['jobs', 'list', '--queue', q, '--status', 'failed,completed', '--json'],
        ['jobs', 'list', '--search', 'smtp TIMEOUT', '--json'],
        ['jobs', 'list', '--queue', q, '--limit', '2'],
        ['jobs', 'list', '--queue', uniqueName('none')],
      );
      const out = ok(all!, 'jobs list');
      assert.match(out, /^ID\s+TYPE\s+QUEUE\s+STATUS\s+ATTEMPT\s+CREATED\s+LAST ERROR$/m);
      for (const id of [...ids.failed, ids.completed, ids.pending, ids.parent]) assert.match(out, new RegExp(`^${id}\\s`, 'm'));
      assert.deepEqual(rowOf(out, ids.failed[0]!).slice(1, 4), ['send-email', q, 'failed']);
      assert.match(rowOf(out, ids.failed[0]!).at(-1)!, /SMTP timeout after 30s/);

      const failed = okJson<{ jobs: JobJson[] }>(failedJson!, 'list --status failed --json');
      assert.deepEqual(failed.jobs.map((j) => j.id).sort(), [...ids.failed].sort());
      const two = okJson<{ jobs: JobJson[] }>(twoJson!, 'two statuses');
      assert.equal(two.jobs.length, 3);
      const search = okJson<{ jobs: JobJson[] }>(searchJson!, 'search');
      assert.deepEqual(search.jobs.map((j) => j.id).sort(), [...ids.failed].sort());

      // Pages of two, oldest first, until no cursor: every job of the queue once.
      const seen: string[] = [];
      let cursor: string | undefined;
      for (let i = 0; i < 10; i++) {
        const page = okJson<{ jobs: JobJson[]; nextCursor?: string }>(
          await run('jobs', 'list', '--queue', q, '--limit', '2', '--asc', '--json', ...(cursor === undefined ? [] : ['--cursor', cursor])),
          'page',
        );
        seen.push(...page.jobs.map((j) => j.id));
        cursor = page.nextCursor;
        if (cursor === undefined) break;
      }
      assert.deepEqual(seen, [...ids.failed, ids.completed, ids.parent, ids.pending]);
      const first = ok(firstPage!, 'human page');
      assert.match(first, /^More jobs: add --cursor \S+$/m);
      assert.equal(ok(none!, 'empty').trim(), 'No jobs match.');
    });

    it('jobs show prints the job, its steps and its sub-jobs', async () => {
      const unknown = newId();
      const [human, json, pendingOut, unknownOut, unknownJson] = await runAll(
        ['jobs', 'show', ids.parent],
        ['jobs', 'show', ids.parent, '--json'],
        ['jobs', 'show', ids.pending],
        ['jobs', 'show', unknown],
        ['jobs', 'show', unknown, '--json'],
      );
      const out = ok(human!, 'jobs show');
      assert.match(out, new RegExp(`^Job ${ids.parent}\\s+workflow$`, 'm'));
      assert.match(out, /^\s+status\s+waiting$/m);
      assert.match(out, /^Steps \(1\)$/m);
      assert.match(out, /^\s*0\s+fan-out\s+completed\s/m);
      assert.match(out, /^Sub-jobs \(3\)$/m);
      for (const k of ids.kids) assert.match(out, new RegExp(`^${k}\\s+child\\s+pending`, 'm'));
      const doc = okJson<{ job: JobJson; steps: { index: number; name: string }[]; children: JobJson[] }>(json!, 'show --json');
      assert.equal(doc.job.id, ids.parent);
      assert.deepEqual(doc.steps.map((s) => [s.index, s.name]), [[0, 'fan-out']]);
      assert.deepEqual(doc.children.map((c) => c.id), ids.kids);
      const pending = ok(pendingOut!, 'show pending');
      assert.match(pending, /^\s+args\s+\{"to":"a@example.com"\}$/m);
      fails(unknownOut!, 1, new RegExp(`^sdj: job ${unknown} not found$`), 'show unknown');
      fails(unknownJson!, 1, /not found/, 'show unknown --json');
    });

    it('jobs retry: one by id, many by filter, and refusals', async () => {
      assert.equal(ok(await run('jobs', 'retry', ids.failed[0]!), 'retry one').trim(), `Retried job ${ids.failed[0]}.`);
      assert.equal((await queue.getJob(ids.failed[0]!))?.status, 'pending');
      const bulk = okJson<{ count: number; skipped: unknown[] }>(await run('jobs', 'retry', '--status', 'failed', '--queue', q, '--json'), 'retry bulk');
      assert.deepEqual(bulk, { action: 'retry', count: 1, skipped: [] });
      assert.equal((await queue.getJob(ids.failed[1]!))?.status, 'pending');
      assert.equal(ok(await run('jobs', 'retry', '--status', 'failed', '--queue', q), 'retry none').trim(), 'Retried 0 jobs.');
      const refused = await runAll(['jobs', 'retry', ids.pending], ['jobs', 'retry', newId()], ['jobs', 'retry', '--status', 'pending']);
      fails(refused[0]!, 1, /pending/, 'retry a pending job');
      fails(refused[1]!, 1, /not found/, 'retry unknown');
      fails(refused[2]!, 2, /retryJobs acts on failed, cancelled jobs only/, 'retry pending by filter');
    });

    it('jobs cancel: one by id (twice), many by filter', async () => {
      assert.equal(ok(await run('jobs', 'cancel', ids.pending), 'cancel one').trim(), `Cancelled job ${ids.pending}.`);
      assert.equal((await queue.getJob(ids.pending))?.status, 'cancelled');
      assert.match(ok(await run('jobs', 'cancel', ids.pending), 'cancel again'), /already cancelled; nothing to cancel/);
      assert.deepEqual(okJson(await run('jobs', 'cancel', ids.pending, '--json'), 'cancel again --json'), { id: ids.pending, action: 'cancel', done: false, status: 'cancelled' });
      const bulk = okJson<{ count: number }>(await run('jobs', 'cancel', '--status', 'pending', '--queue', q, '--json'), 'cancel bulk');
      assert.equal(bulk.count, 2, 'the two retried jobs');
      fails(await run('jobs', 'cancel', newId()), 1, /not found/, 'cancel unknown');
    });

    it('jobs delete: one by id, refusals, many by filter with what was left alone', async () => {
      assert.equal(ok(await run('jobs', 'delete', ids.completed), 'delete one').trim(), `Deleted job ${ids.completed}.`);
      assert.equal(await queue.getJob(ids.completed), undefined);
      const [unfinished, unknown] = await runAll(['jobs', 'delete', ids.parent], ['jobs', 'delete', newId()]);
      fails(unfinished!, 1, /waiting|unfinished|not finished/, 'delete an unfinished workflow');
      fails(unknown!, 1, /not found/, 'delete unknown');
      await queue.cancelJob(ids.kids[0]!);
      // A fail-fast fan-out may cancel the siblings with it: every cancelled sub-job is left alone.
      const cancelled = (await queue.listJobs({ parentId: ids.parent, status: 'cancelled' })).jobs.map((j) => j.id);
      assert.ok(cancelled.includes(ids.kids[0]!));
      const out = ok(await run('jobs', 'delete', '--status', 'cancelled', '--queue', kidsQueue), 'delete bulk with a skip');
      assert.match(out, new RegExp(`^Deleted 0 jobs; ${cancelled.length} left alone:$`, 'm'));
      for (const id of cancelled) assert.equal(rowOf(out, id).slice(1).join('  '), SKIP_PARENT_UNFINISHED);
      const bulk = okJson<{ count: number }>(await run('jobs', 'delete', '--status', 'cancelled', '--queue', q, '--json'), 'delete bulk');
      assert.equal(bulk.count, 3);
    });

    it('queues pause and resume', async () => {
      assert.equal(ok(await run('queues', 'pause', q), 'pause').trim(), `Paused queue ${q}.`);
      assert.equal(rowOf(ok(await run('status'), 'status paused'), q)[1], 'paused');
      assert.deepEqual(okJson(await run('queues', 'resume', q, '--json'), 'resume --json'), { queue: q, paused: false });
      const { queues } = okJson<{ queues: { name: string; paused: boolean }[] }>(await run('status', '--json'), 'status resumed');
      assert.equal(queues.find((x) => x.name === q)?.paused, false);
    });

    it('schedules and workers', async () => {
      await storage.workerBeat({ id: newId(), name: workerName, host: 'cli-host', pid: 4242, queues: [q, kidsQueue], running: 1, ttlMs: 600_000 });
      const [sh, sJson, wh, wJson] = await runAll(['schedules'], ['schedules', '--json'], ['workers'], ['workers', '--json']);
      const s = ok(sh!, 'schedules');
      assert.match(s, /^NAME\s+TYPE\s+SCHEDULE\s+NEXT FIRE\s+LAST FIRE$/m);
      const row = rowOf(s, schedule);
      assert.equal(row[1], 'hourly-report');
      assert.match(row[3]!, /^(in \d+[sm]|in 1h|now)$/, 'every hour: the next slot is within the hour');
      assert.equal(row[4], 'never');
      const sj = okJson<{ schedules: { name: string; nextRunAt: string }[] }>(sJson!, 'schedules --json');
      assert.ok(!Number.isNaN(Date.parse(sj.schedules.find((x) => x.name === schedule)?.nextRunAt ?? '')));

      const w = ok(wh!, 'workers');
      assert.match(w, /^NAME\s+HOST\s+PID\s+QUEUES\s+RUNNING\s+STARTED\s+LAST SEEN\s+ID$/m);
      assert.deepEqual(rowOf(w, workerName).slice(1, 5), ['cli-host', '4242', `${q},${kidsQueue}`, '1']);
      const wj = okJson<{ workers: { name: string; pid: number; queues: string[] }[] }>(wJson!, 'workers --json');
      assert.deepEqual(wj.workers.find((x) => x.name === workerName)?.queues, [q, kidsQueue]);
    });

    it('prune deletes finished jobs by age', async () => {
      const done = await completedJob(storage);
      assert.equal(ok(await run('prune', '--older-than', '7d'), 'prune 7d').trim(), 'Deleted 0 finished jobs.');
      const { deleted } = okJson<{ deleted: number }>(await run('prune', '--older-than', '0', '--json'), 'prune 0');
      assert.ok(deleted >= 1, `deleted ${deleted}`);
      assert.equal(await queue.getJob(done.id), undefined);
    });

    it('events follows the jobs of other processes as they happen, one JSON object per line', async () => {
      const eq = uniqueName('cli_events');
      let exited = false;
      const follower = run('events', '--queue', eq, '--count', '3', '--json').finally(() => (exited = true));
      // Another process's work: this one enqueues and runs jobs until the follower has shown 3
      // events (workers start sharing events within a few seconds of a subscriber's start).
      const producer = new Queue(storage);
      producer.register('cli-evented', async (n: number) => n + 1);
      const worker = producer.newWorker({ queues: { [eq]: { concurrency: 1 } }, pollInterval: 20, maintenanceInterval: 100, handleSignals: false });
      const running = worker.start();
      const deadline = Date.now() + 30_000;
      try {
        for (let n = 0; !exited && Date.now() < deadline; n++) {
          const id = await producer.enqueue('cli-evented', n, { queue: eq });
          await producer.waitForJob(id, { timeout: 10_000 });
        }
      } finally {
        await worker.stop();
        await running;
      }
      const out = ok(await follower, 'events --count 3 --json');
      const events = out.trim().split('\n').map((l) => JSON.parse(l) as { type: string; job?: { id: string; queue: string }; jobId?: string; queue?: string });
      assert.equal(events.length, 3, out);
      const order = ['job.enqueued', 'job.started', 'job.completed'];
      const last = new Map<string, number>();
      for (const e of events) {
        assert.ok(order.includes(e.type), `a lifecycle event of the jobs run: ${e.type}`);
        assert.equal(e.job?.queue ?? e.queue, eq, 'only the queue asked for');
        const id = e.job?.id ?? e.jobId ?? '';
        assert.ok(order.indexOf(e.type) > (last.get(id) ?? -1), `events of job ${id} in their order`);
        last.set(id, order.indexOf(e.type));
      }
      fails(await run('events', '--count', '0'), 2, /^sdj: .*--count.*whole number from 1/, 'bad --count');
    });

    it('a value the library refuses is bad usage', async () => {
      // Parsed and refused before any statement, but with the database configured.
      fails(await run('jobs', 'list', '--cursor', 'nope!'), 2, /^sdj: cursor must be the nextCursor of a previous page/, 'bad cursor');
    });
  });
}
