/**
 * `sdj patches` on every driver (the built CLI as a child process): a run that predates a patch
 * keeps the verdict "not yet" until it is no longer in flight; `--json` carries the same
 * figures; `--deployed-at` moves the anchor; bad usage exits 2; nothing recorded prints a plain line.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Queue } from '../../src/queue/queue.js';
import type { JobContext } from '../../src/workflow/job-context.js';
import { uniqueName } from '../helpers/factories.js';
import { sharedStorage, type StorageEnv } from '../helpers/process-storage.js';
import { storageMatrix } from '../helpers/storages.js';
import { waitFor } from '../helpers/wait-for.js';
import { startWorker, stopAllWorkers } from '../helpers/workflow-harness.js';
import { assertBuilt, fails, ok, okJson, rowOf, sdj } from './run-cli.js';

/** The `--db` (and `--schema`) arguments naming a shared storage. */
function dbArgs(env: StorageEnv): string[] {
  if (env['SDJ_DIALECT'] === 'sqlite') return ['--db', env['SDJ_SQLITE_PATH']!];
  if (env['SDJ_DIALECT'] === 'postgres') return ['--db', env['SDJ_PG_URL']!, '--schema', env['SDJ_PG_SCHEMA']!];
  return ['--db', env['SDJ_MYSQL_URL']!];
}

interface PatchJson {
  type: string;
  patch: string;
  firstRecordedAt: string;
  inFlightNew: number;
  inFlightOld: number;
  inFlightPredating: number;
  recordedNew: number;
  recordedOld: number;
  safeToRemoveOldBranch: boolean;
}

for (const [dialect] of storageMatrix()) {
  describe(`sdj patches (${dialect})`, () => {
    it('says "not yet" while a run predating the patch is in flight, then "safe"', async () => {
      assertBuilt();
      const shared = await sharedStorage(dialect);
      try {
        const run = (...args: string[]) => sdj([...dbArgs(shared.env), ...args]);
        const q = uniqueName('cliq');
        const type = uniqueName('flow');
        const queue = new Queue(shared.storage);
        queue.register('A', () => 'a');
        queue.register('X', () => 'x');
        // v1 (no patch): waits for a signal after A. v2: asks patched('add-x') first.
        queue.register(type, async (_: unknown, ctx: JobContext<unknown>) => {
          if ((ctx.job.args as { v: number }).v === 2 && ctx.patched('add-x')) await ctx.call('X');
          await ctx.call('A');
          await ctx.waitForSignal('go');
        });
        const w = startWorker(queue, { queues: { [q]: { concurrency: 2 } } });
        const old = await queue.enqueue(type, { v: 1 }, { queue: q });
        await waitFor(async () => (await queue.getJob(old))?.status === 'waiting', { message: 'v1 run waiting' });
        ok(await run('patches'), 'nothing recorded');
        assert.equal(ok(await run('patches', '--type', type), 'nothing of the type').trim(), `No run of type ${type} has answered ctx.patched yet.`);
        const fresh = await queue.enqueue(type, { v: 2 }, { queue: q });
        await waitFor(async () => (await queue.getJob(fresh))?.status === 'waiting', { message: 'v2 run waiting' });

        const out = ok(await run('patches', '--type', type), 'patches');
        assert.match(out, /^TYPE\s+PATCH\s+FIRST RECORDED\s+IN FLIGHT NEW\s+IN FLIGHT OLD\s+NOT ASKED YET\s+ALL NEW\s+ALL OLD\s+VERDICT$/m);
        assert.deepEqual(rowOf(out, type).slice(1, 2), ['add-x']);
        assert.match(out, /1\s+0\s+1\s+1\s+0\s+not yet: 1 in-flight run may take the old branch$/m);
        const json = okJson<{ patches: PatchJson[] }>(await run('patches', '--type', type, '--patch', 'add-x', '--json'), 'patches --json');
        assert.equal(json.patches.length, 1);
        const [p] = json.patches;
        assert.deepEqual(
          { ...p, firstRecordedAt: typeof p?.firstRecordedAt },
          { type, patch: 'add-x', firstRecordedAt: 'string', inFlightNew: 1, inFlightOld: 0, inFlightPredating: 1, recordedNew: 1, recordedOld: 0, safeToRemoveOldBranch: false },
        );

        // An anchor before both runs: the v1 run no longer counts as predating (what `deployedAt` means).
        const early = okJson<{ patches: PatchJson[] }>(await run('patches', '--type', type, '--deployed-at', '2000-01-01T00:00:00Z', '--json'), '--deployed-at');
        assert.deepEqual([early.patches[0]?.inFlightPredating, early.patches[0]?.safeToRemoveOldBranch], [0, true]);
        fails(await run('patches', '--deployed-at', 'yesterday'), 2, /ISO 8601/, 'a bad --deployed-at');

        await queue.cancelJob(old);
        const after = ok(await run('patches', '--type', type, '--patch', 'add-x'), 'after the cancel');
        assert.match(after, /safe to remove the old branch$/m);
        assert.equal(okJson<{ patches: PatchJson[] }>(await run('patches', '--json'), 'all').patches.find((x) => x.type === type)?.safeToRemoveOldBranch, true);

        fails(await run('patches', '--type', ''), 2, /type must not be empty/, 'an empty type');
        fails(await run('patches', '--patch', 'x'.repeat(256)), 2, /patch id is longer than 255 characters/, 'a long patch id');
        await w.stop();
      } finally {
        await stopAllWorkers().catch(() => {});
        await shared.cleanup();
      }
    });
  });
}
