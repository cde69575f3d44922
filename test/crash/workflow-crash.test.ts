/**
 * Workflows survive SIGKILL: real worker processes are killed during a step, during the insert
 * of a 5,000-child fan-out, and between the last child's completion and the parent's resume.
 * Side effects are appended to a file by the fixture, so the counts survive the kill.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { Queue } from '../../src/queue/queue.js';
import type { Storage } from '../../src/storage/storage.js';
import { sharedStorage } from '../helpers/process-storage.js';
import { spawnFixture, type Child } from '../helpers/child.js';
import { storageMatrix } from '../helpers/storages.js';

const FIXTURE = new URL('./fixtures/workflow-worker.ts', import.meta.url).pathname;
const CHILDREN = 5_000;

/** A fresh side-effect log file and a reader of its lines. */
function sideLog(): { path: string; lines: () => string[]; count: (line: string) => number; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'sdj-wf-crash-'));
  const path = join(dir, 'effects.log');
  const lines = (): string[] => (existsSync(path) ? readFileSync(path, 'utf8').split('\n').filter(Boolean) : []);
  return { path, lines, count: (line) => lines().filter((l) => l === line).length, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** The state of a fan-out parent: its status, how many children, and its checkpoints. */
async function fanOutState(s: Storage, id: string): Promise<{ status: string; children: number; steps: number; total: number | undefined }> {
  const row = await s.jobGet({ id });
  const kids = await s.jobList({ parentId: id, limit: CHILDREN + 10 });
  const steps = await s.stepList({ jobId: id });
  const fanOutId = steps[0]?.outputJson ? (JSON.parse(steps[0].outputJson) as string) : undefined;
  const fo = fanOutId ? await s.fanOutGet({ id: fanOutId }) : undefined;
  return { status: row?.status ?? 'missing', children: kids.length, steps: steps.length, total: fo?.total };
}

for (const [dialect] of storageMatrix()) {
  describe(`workflow crash recovery (${dialect})`, () => {
    const children: Child[] = [];
    const spawn = (env: Record<string, string>): Child => {
      const c = spawnFixture(FIXTURE, env);
      children.push(c);
      return c;
    };
    after(async () => {
      for (const c of children) c.proc.kill('SIGKILL');
      await Promise.all(children.map((c) => c.exited));
    });

    it('killed during a step: completed steps do not re-run and the workflow completes after restart', async () => {
      const shared = await sharedStorage(dialect);
      const effects = sideLog();
      try {
        const queue = new Queue(shared.storage);
        const id = await queue.enqueue('crash-wf', 10, { retries: 3 });
        const a = spawn({ ...shared.env, SDJ_LOG: effects.path, SDJ_MODE: 'hang-step', SDJ_LEASE_MS: '1000' });
        await a.waitForLine(/^in-step s2$/);
        a.proc.kill('SIGKILL');
        await a.exited;
        assert.deepEqual(effects.lines(), ['step s1', 'step s2']);
        assert.equal((await shared.storage.stepList({ jobId: id })).length, 1, 'only s1 was checkpointed');
        const b = spawn({ ...shared.env, SDJ_LOG: effects.path, SDJ_LEASE_MS: '1000' });
        const job = await queue.waitForJob(id, { timeout: 30_000 });
        b.proc.kill('SIGTERM');
        await b.exited;
        assert.equal(job.status, 'completed');
        assert.deepEqual(job.result, [11, 12, 13]);
        assert.equal(job.attempt, 2, 'the reclaim consumed one attempt');
        assert.deepEqual(
          [effects.count('step s1'), effects.count('step s2'), effects.count('step s3')],
          [1, 2, 1],
          'the checkpointed s1 never re-ran; the interrupted s2 ran again',
        );
      } finally {
        effects.remove();
        await shared.cleanup();
      }
    });

    it(`killed during the insert of a ${CHILDREN}-child fan-out: all children and a waiting parent, or none and a running one`, async () => {
      const shared = await sharedStorage(dialect);
      const effects = sideLog();
      const outcomes: string[] = [];
      try {
        const queue = new Queue(shared.storage);
        // Calibrate: how long from the fixture announcing the fan-out to the suspension commit.
        const calId = await queue.enqueue('big-fan', CHILDREN);
        // A long lease here: under load the 5000-row insert can outlast a short one, and a run
        // whose heartbeat waited past its lease is treated as lost (no suspension is reported).
        const cal = spawn({ ...shared.env, SDJ_LOG: effects.path, SDJ_QUEUES: 'default:1', SDJ_LEASE_MS: '30000' });
        await cal.waitForLine(new RegExp(`^fanning-out ${calId}$`));
        const t0 = Date.now();
        await cal.waitForLine(new RegExp(`^suspended ${calId} fan-out$`));
        const insertMs = Date.now() - t0;
        cal.proc.kill('SIGKILL');
        await cal.exited;
        await queue.cancelJob(calId);
        // Then kill at points spread over that window (and just past it).
        const waits = [0, 0.2, 0.4, 0.6, 0.75, 0.9, 1.0, 1.3].map((f) => Math.round(f * insertMs));
        let lastId = '';
        for (const [round, wait] of waits.entries()) {
          const id = await queue.enqueue('big-fan', CHILDREN, { retries: 5 });
          lastId = id;
          // The worker serves only the parent queue: the children stay pending and countable.
          const c = spawn({ ...shared.env, SDJ_LOG: effects.path, SDJ_QUEUES: 'default:1', SDJ_LEASE_MS: '1000' });
          await c.waitForLine(new RegExp(`^fanning-out ${id}$`));
          if (wait > 0) await delay(wait);
          c.proc.kill('SIGKILL');
          await c.exited;
          const st = await fanOutState(shared.storage, id);
          const none = st.status === 'running' && st.children === 0 && st.steps === 0 && st.total === undefined;
          const all = st.status === 'waiting' && st.children === CHILDREN && st.steps === 1 && st.total === CHILDREN;
          assert.ok(none || all, `torn fan-out after a kill at +${wait} ms: ${JSON.stringify(st)}`);
          outcomes.push(`+${wait}ms: ${none ? 'none' : 'all'}`);
          // Keep only the last round's workflow (and its children) for the restart below.
          if (round < waits.length - 1) await queue.cancelJob(id);
        }
        // Whatever state the last round left, a restarted worker finishes the workflow.
        const w = spawn({ ...shared.env, SDJ_LOG: effects.path, SDJ_QUEUES: 'default:1,kids:200', SDJ_LEASE_MS: '1000' });
        const job = await queue.waitForJob(lastId, { timeout: 120_000 });
        w.proc.kill('SIGTERM');
        await w.exited;
        assert.equal(job.status, 'completed');
        assert.equal(job.result, CHILDREN);
        assert.equal(effects.count(`resumed ${lastId}`), 1);
        console.log(`# fan-out insert (~${insertMs} ms) kills (${dialect}): ${outcomes.join(', ')}`);
      } finally {
        effects.remove();
        await shared.cleanup();
      }
    });

    it('killed after the last child finished but before the parent resumed: the parent resumes exactly once', async () => {
      const shared = await sharedStorage(dialect);
      const effects = sideLog();
      try {
        const queue = new Queue(shared.storage);
        const id = await queue.enqueue('fan3', {}, { retries: 3 });
        const a = spawn({ ...shared.env, SDJ_LOG: effects.path, SDJ_MODE: 'kill-after-last-child', SDJ_LEASE_MS: '1000' });
        await a.waitForLine(/^killing after the last child$/);
        await a.exited;
        const kids = await shared.storage.jobList({ parentId: id, limit: 10 });
        assert.deepEqual(
          kids.map((k) => k.status),
          ['completed', 'completed', 'completed'],
        );
        const parent = await shared.storage.jobGet({ id });
        assert.ok(parent?.status === 'pending' || parent?.status === 'running', `parent is ${parent?.status}`);
        assert.equal(effects.count(`resumed ${id}`), 0, 'the dead process never resumed the parent');
        const b = spawn({ ...shared.env, SDJ_LOG: effects.path, SDJ_LEASE_MS: '1000' });
        const job = await queue.waitForJob(id, { timeout: 30_000 });
        b.proc.kill('SIGTERM');
        await b.exited;
        assert.equal(job.status, 'completed');
        assert.deepEqual(job.result, [0, 2, 4]);
        assert.equal(effects.count(`resumed ${id}`), 1, 'the parent resumed exactly once');
        assert.equal(effects.count('step after'), 1);
      } finally {
        effects.remove();
        await shared.cleanup();
      }
    });

    it('cancelJob in this process aborts the handler running in a worker process within a few seconds', async () => {
      const shared = await sharedStorage(dialect);
      try {
        const queue = new Queue(shared.storage);
        const id = await queue.enqueue('abortable', {});
        // Lease 6 s: the fixture heartbeats every 1.5 s, which is how a cancel reaches it.
        const c = spawn({ ...shared.env, SDJ_LOG: '/dev/null', SDJ_LEASE_MS: '6000' });
        await c.waitForLine(new RegExp(`^waiting-abort ${id}$`));
        const t0 = Date.now();
        await queue.cancelJob(id);
        const line = await c.waitForLine(new RegExp(`^aborted ${id} `), 8_000);
        const took = Date.now() - t0;
        c.proc.kill('SIGTERM');
        await c.exited;
        assert.equal(line, `aborted ${id} JobCancelledError`);
        assert.ok(took < 4_000, `aborted ${took} ms after the cancel`);
        assert.equal((await queue.getJob(id))?.status, 'cancelled');
      } finally {
        await shared.cleanup();
      }
    });
  });
}
