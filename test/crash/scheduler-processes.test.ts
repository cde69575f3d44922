/**
 * Three processes share one database, each running the scheduler on `every(1000)`: over a
 * few seconds every slot becomes exactly one job (slot keys unique, none missing between the
 * first and the last). Then all three are killed (SIGKILL), stay down for several slots, and
 * three new processes catch up with exactly one fire (the default `'latest'` policy) before
 * firing every slot again.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Queue } from '../../src/queue/queue.js';
import { sharedStorage } from '../helpers/process-storage.js';
import { spawnFixture, type Child } from '../helpers/child.js';
import { storageMatrix } from '../helpers/storages.js';
import { waitFor } from '../helpers/wait-for.js';
import { assertConsecutive, iso, jobsOf, uniqueSlots } from '../helpers/schedule-helpers.js';

const FIXTURE = new URL('./fixtures/scheduler-worker.ts', import.meta.url).pathname;
const PERIOD = 1000;

for (const [dialect] of storageMatrix()) {
  describe(`three scheduler processes (${dialect})`, () => {
    it('fire each slot of every(1000) exactly once, and catch up once after all were down', async () => {
      const shared = await sharedStorage(dialect);
      const queue = new Queue(shared.storage);
      const kids: Child[] = [];
      const spawn = (names: string[]): Child[] => {
        const made = names.map((n) => spawnFixture(FIXTURE, { ...shared.env, SDJ_WORKER_NAME: n, SDJ_EVERY_MS: String(PERIOD) }));
        kids.push(...made);
        return made;
      };
      const slotsNow = async (): Promise<number[]> => uniqueSlots(await jobsOf(queue, 'tick'));
      try {
        // Phase 1: three schedulers for about five seconds.
        const first = spawn(['S1', 'S2', 'S3']);
        await Promise.all(first.map((k) => k.waitForLine(/^ready$/)));
        await waitFor(async () => (await slotsNow()).length >= 5, { timeout: 30_000, message: 'five slots fired' });
        for (const k of first) k.proc.kill('SIGKILL');
        await Promise.all(first.map((k) => k.exited));
        const phase1 = await slotsNow();
        assertConsecutive(phase1, PERIOD, 'three schedulers');
        const lastBefore = phase1.at(-1)!;
        const info = (await queue.schedules()).find((s) => s.name === 'tick')!;
        assert.equal(info.nextRunAt.getTime(), lastBefore + PERIOD, 'the next slot was never fired by the killed processes');

        // Down for more than three slots.
        const killedAt = await shared.storage.clockNow();
        await waitFor(async () => (await shared.storage.clockNow()) >= killedAt + 3 * PERIOD + 200, { timeout: 10_000, message: 'downtime' });
        assert.equal((await slotsNow()).length, phase1.length, 'nothing fires while every scheduler is down');

        // Phase 2: three new schedulers re-define the same schedule (keeping its due slot) and catch up.
        const restartAt = await shared.storage.clockNow();
        const second = spawn(['S4', 'S5', 'S6']);
        await Promise.all(second.map((k) => k.waitForLine(/^ready$/)));
        await waitFor(async () => (await slotsNow()).filter((s) => s > lastBefore).length >= 3, { timeout: 30_000, message: 'three fires after restart' });
        for (const k of second) k.proc.kill('SIGTERM');
        assert.deepEqual(await Promise.all(second.map((k) => k.exited)), [0, 0, 0], 'graceful exits');

        const all = await slotsNow();
        const afterRestart = all.filter((s) => s > lastBefore);
        const catchUp = afterRestart[0]!;
        assert.ok(
          catchUp >= restartAt - PERIOD,
          `one catch-up fire — the latest missed slot ${iso(catchUp)} — not every slot missed since ${iso(lastBefore + PERIOD)}`,
        );
        assertConsecutive(afterRestart, PERIOD, 'after the catch-up');
        assert.deepEqual(all, [...phase1, ...afterRestart]);
        const runs = kids.flatMap((k) => k.lines.filter((l) => l.startsWith('ran ')).map((l) => l.split(' ')[2]!));
        assert.equal(new Set(runs).size, runs.length, 'no slot ran twice');
      } finally {
        for (const k of kids) if (k.proc.exitCode === null && k.proc.signalCode === null) k.proc.kill('SIGKILL');
        await Promise.all(kids.map((k) => k.exited));
        await shared.cleanup();
      }
    });
  });
}
