/**
 * `pinoLogger(pino)` with a real pino instance writing to a stream read back: every line is one
 * JSON object with pino's level and msg, and every line about a job — a handler's `ctx.logger`,
 * the engine's own (an outcome that cannot be stored, a hook that threw) — carries the job's
 * jobId, type, queue, attempt and workerId.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { pinoLogger } from '../../src/core/pino-logger.js';
import { Queue } from '../../src/queue/queue.js';
import type { JobFinishItem } from '../../src/storage/storage.js';
import { FaultyStorage } from '../helpers/faulty-storage.js';
import { storageMatrix, type TestStorage } from '../helpers/storages.js';

const fast = { pollInterval: 20, maintenanceInterval: 50, handleSignals: false } as const;

type Line = Record<string, unknown>;

/** A pino logger at `debug` whose lines are parsed into `lines` as they are written. */
function capture(): { lines: Line[]; logger: ReturnType<typeof pino> } {
  const lines: Line[] = [];
  let rest = '';
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      const parts = (rest + chunk.toString('utf8')).split('\n');
      rest = parts.pop() ?? '';
      for (const p of parts) if (p !== '') lines.push(JSON.parse(p) as Line);
      cb();
    },
  });
  return { lines, logger: pino({ level: 'debug' }, stream) };
}

const byMsg = (lines: Line[], re: RegExp): Line[] => lines.filter((l) => typeof l['msg'] === 'string' && re.test(l['msg']));

for (const [name, make] of storageMatrix()) {
  describe(`pino logger (${name})`, () => {
    let ts: TestStorage;
    before(async () => {
      ts = await make(`pino-logger-${name}`);
    });
    after(() => ts.cleanup());

    it("a handler's ctx.logger and the engine's lines about a job carry the job's fields", async () => {
      const { lines, logger } = capture();
      const faulty = new FaultyStorage(ts.storage);
      const queue = new Queue(faulty.storage, { logger: pinoLogger(logger) });
      queue.register('talk', async (n: number, ctx) => {
        ctx.logger.info('talking', { n });
        ctx.logger.debug('details', { type: 'own-field-wins' });
        return n;
      });
      queue.register('huge', async () => 'too big for the database');
      queue.onJobComplete((job) => {
        if (job.type === 'talk') throw new Error('hook broke');
      });
      const q = 'pino';
      const talk = await queue.enqueue('talk', 7, { queue: q });
      const huge = await queue.enqueue('huge', null, { queue: q, retries: 0 });
      faulty.fail({ method: 'jobFinishMany', times: Infinity, error: 'packet-too-large', when: (p) => p.items.some((i: JobFinishItem) => i.jobId === huge && i.outcome === 'completed') });
      const worker = queue.newWorker({ ...fast, queues: { [q]: { concurrency: 2 } } });
      void worker.start();
      try {
        const [t, h] = await Promise.all([queue.waitForJob(talk, { timeout: 15_000 }), queue.waitForJob(huge, { timeout: 15_000 })]);
        assert.equal(t.status, 'completed');
        assert.equal(h.status, 'failed');
      } finally {
        await worker.stop();
      }
      const fields = (id: string, type: string) => ({ jobId: id, type, queue: q, attempt: 1, workerId: worker.id });
      const pick = (l: Line | undefined, keys: string[]) => Object.fromEntries(keys.map((k) => [k, l?.[k]]));
      const jobKeys = ['jobId', 'type', 'queue', 'attempt', 'workerId'];

      const [talking] = byMsg(lines, /^talking$/);
      assert.equal(talking?.['level'], 30, 'info is pino level 30');
      assert.deepEqual(pick(talking, jobKeys), fields(talk, 'talk'));
      assert.equal(talking?.['n'], 7, "the line's own fields are kept");
      const [details] = byMsg(lines, /^details$/);
      assert.equal(details?.['level'], 20, 'debug is pino level 20');
      assert.equal(details?.['type'], 'own-field-wins', "a line's own field comes after the job's");
      assert.equal(details?.['jobId'], talk);

      const [unstorable] = byMsg(lines, /outcome cannot be stored/);
      assert.equal(unstorable?.['level'], 50, 'error is pino level 50');
      assert.deepEqual(pick(unstorable, jobKeys), fields(huge, 'huge'));

      const [hook] = byMsg(lines, /hook threw/);
      assert.equal(hook?.['level'], 50);
      assert.deepEqual(pick(hook, ['jobId', 'type', 'queue', 'attempt']), { jobId: talk, type: 'talk', queue: q, attempt: 1 });

      const [started] = byMsg(lines, /^worker started$/);
      assert.equal(started?.['level'], 30);
      assert.equal(started?.['workerId'], worker.id);
      for (const l of lines) assert.equal(typeof l['time'], 'number', 'every line is pino JSON');
    });

    it("a worker's own logger is the one its handlers' ctx.logger writes to", async () => {
      const queueLines = capture();
      const workerLines = capture();
      const queue = new Queue(ts.storage, { logger: pinoLogger(queueLines.logger) });
      queue.register('say', async (_: null, ctx) => ctx.logger.warn('said'));
      const id = await queue.enqueue('say', null, { queue: 'pino-worker' });
      const worker = queue.newWorker({ ...fast, logger: pinoLogger(workerLines.logger.child({ component: 'jobs' })), queues: { 'pino-worker': { concurrency: 1 } } });
      void worker.start();
      try {
        await queue.waitForJob(id, { timeout: 15_000 });
      } finally {
        await worker.stop();
      }
      assert.equal(byMsg(queueLines.lines, /^said$/).length, 0);
      const [said] = byMsg(workerLines.lines, /^said$/);
      assert.equal(said?.['level'], 40, 'warn is pino level 40');
      assert.equal(said?.['component'], 'jobs', "the child logger's bindings stay");
      assert.equal(said?.['jobId'], id);
      assert.equal(said?.['workerId'], worker.id);
    });
  });
}
