/**
 * `ctx.patched` survives SIGKILL on every driver: a worker process running v2 code is killed
 * right after `patched('add-x')` answered `true` (before its answer may be stored), during the
 * step X that the answer led to (answer stored, X not checkpointed), and right after X's
 * checkpoint was stored. A fresh worker process reclaims the job and completes it: the answer is
 * still `true`, X is checkpointed once, and no DeterminismError is raised.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from '../../src/queue/queue.js';
import type { Storage } from '../../src/storage/storage.js';
import { sharedStorage } from '../helpers/process-storage.js';
import { spawnFixture, type Child } from '../helpers/child.js';
import { storageMatrix } from '../helpers/storages.js';
import { waitFor } from '../helpers/wait-for.js';

const FIXTURE = new URL('./fixtures/patched-worker.ts', import.meta.url).pathname;

/** A fresh side-effect log: its path, a counter of one line, and removal. */
function sideLog(): { path: string; count: (line: string) => number; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'sdj-patched-crash-'));
  const path = join(dir, 'effects.log');
  const lines = (): string[] => (existsSync(path) ? readFileSync(path, 'utf8').split('\n').filter(Boolean) : []);
  return { path, count: (line) => lines().filter((l) => l === line).length, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** The job's step names (by index) and stored answers. */
async function stored(s: Storage, id: string): Promise<{ steps: string[]; answers: string[] }> {
  const rows = (await s.stepList({ jobId: id })).sort((a, b) => a.stepIndex - b.stepIndex);
  return {
    steps: rows.filter((r) => r.stepIndex >= 0).map((r) => r.stepName),
    answers: rows.filter((r) => r.stepIndex < 0).map((r) => `${r.stepName}=${r.outputJson}`),
  };
}

for (const [dialect] of storageMatrix()) {
  describe(`ctx.patched crash recovery (${dialect})`, () => {
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

    for (const mode of ['kill-after-patched', 'hang-x', 'kill-after-x'] as const) {
      it(`killed (${mode}): a fresh worker completes the run on the same branch`, async () => {
        const shared = await sharedStorage(dialect);
        const effects = sideLog();
        try {
          const queue = new Queue(shared.storage);
          const id = await queue.enqueue('patched-wf', {}, { retries: 3 });
          const a = spawn({ ...shared.env, SDJ_LOG: effects.path, SDJ_MODE: mode, SDJ_LEASE_MS: '1000' });
          assert.equal(await a.waitForLine(new RegExp(`^patched ${id} `)), `patched ${id} true`);
          if (mode === 'hang-x') {
            await a.waitForLine(/^in-step X$/);
            // The answer is stored before the process dies; X is not checkpointed.
            await waitFor(async () => (await stored(shared.storage, id)).answers.length === 1, { message: 'the answer is stored' });
            a.proc.kill('SIGKILL');
          }
          await a.exited;
          const before = await stored(shared.storage, id);
          if (mode === 'kill-after-x') assert.deepEqual(before, { steps: ['A', 'X'], answers: ['patched:add-x=true'] }, 'X is stored after its answer');
          if (mode === 'hang-x') assert.deepEqual(before, { steps: ['A'], answers: ['patched:add-x=true'] });
          if (mode === 'kill-after-patched') assert.deepEqual(before.steps, ['A']);

          const b = spawn({ ...shared.env, SDJ_LOG: effects.path, SDJ_LEASE_MS: '1000' });
          const job = await queue.waitForJob(id, { timeout: 30_000 });
          b.proc.kill('SIGTERM');
          await b.exited;
          assert.equal(job.status, 'completed', job.lastError);
          assert.equal(job.result, true, 'the answer did not change');
          assert.ok(!b.lines.some((l) => l.startsWith('failed ')), b.lines.join('\n'));
          assert.ok(b.lines.includes(`patched ${id} true`));
          assert.deepEqual(await stored(shared.storage, id), { steps: ['A', 'X', 'B'], answers: ['patched:add-x=true'] });
          assert.equal(effects.count('step A'), 1, 'A is never run again');
          assert.equal(effects.count('step X'), mode === 'kill-after-x' ? 1 : mode === 'hang-x' ? 2 : 1);
          assert.equal(effects.count('step B'), 1);
        } finally {
          effects.remove();
          await shared.cleanup();
        }
      });
    }
  });
}
