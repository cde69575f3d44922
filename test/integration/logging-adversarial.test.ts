/**
 * `pinoLogger` and the job fields under abuse: fields named like pino's own keys (`level`,
 * `time`, `msg`, `pid`, `hostname`) cannot corrupt a line; `err` objects and circular fields are
 * written; a `ctx.call` step's logger and a handler logging after its worker stopped still carry
 * the job's fields; an object that is not a pino logger is refused up front.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { pinoLogger, type PinoLike } from '../../src/core/pino-logger.js';
import { Queue } from '../../src/queue/queue.js';
import { storageMatrix, type TestStorage } from '../helpers/storages.js';
import { uniqueName } from '../helpers/factories.js';

const fast = { pollInterval: 20, maintenanceInterval: 50, handleSignals: false } as const;

type Line = Record<string, unknown>;

/** A pino logger at `debug`; `raw` holds the written text, `lines` the parsed lines. */
function capture(): { lines: Line[]; raw: string[]; logger: ReturnType<typeof pino> } {
  const lines: Line[] = [];
  const raw: string[] = [];
  let rest = '';
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      const parts = (rest + chunk.toString('utf8')).split('\n');
      rest = parts.pop() ?? '';
      for (const p of parts) {
        if (p === '') continue;
        raw.push(p);
        lines.push(JSON.parse(p) as Line);
      }
      cb();
    },
  });
  return { lines, raw, logger: pino({ level: 'debug' }, stream) };
}

const byMsg = (lines: Line[], msg: string): Line[] => lines.filter((l) => l['msg'] === msg);

for (const [name, make] of storageMatrix()) {
  describe(`logging, adversarial (${name})`, () => {
    let ts: TestStorage;
    before(async () => {
      ts = await make(`logging-adv-${name}`);
    });
    after(() => ts.cleanup());

    it("fields named like pino's keys cannot replace the line's level, time or msg; err and circular fields are written", async () => {
      const { lines, raw, logger } = capture();
      const queue = new Queue(ts.storage, { logger: pinoLogger(logger) });
      const q = uniqueName('clash');
      queue.register('clash', async (_: null, ctx) => {
        const circular: Record<string, unknown> = { name: 'loop' };
        circular['self'] = circular;
        ctx.logger.info('clashing', { level: 'high', time: 'noon', msg: 'not the message', pid: 'p', hostname: 'h', v: 9, kept: 1 });
        ctx.logger.error('with err', { err: new Error('boom'), circular });
      });
      const id = await queue.enqueue('clash', null, { queue: q });
      const worker = queue.newWorker({ ...fast, queues: { [q]: { concurrency: 1 } } });
      void worker.start();
      try {
        assert.equal((await queue.waitForJob(id, { timeout: 15_000 })).status, 'completed');
      } finally {
        await worker.stop();
      }
      const [line] = byMsg(lines, 'clashing');
      assert.ok(line, `the line is found by its own message: ${raw.filter((r) => r.includes('clashing')).join('\n')}`);
      assert.equal(line['level'], 30, "the line's level stays pino's");
      assert.equal(typeof line['time'], 'number', "the line's time stays pino's");
      assert.equal(typeof line['pid'], 'number');
      assert.equal(line['fields.level'], 'high');
      assert.equal(line['fields.time'], 'noon');
      assert.equal(line['fields.msg'], 'not the message');
      assert.equal(line['fields.hostname'], 'h');
      assert.equal(line['kept'], 1);
      assert.equal(line['jobId'], id);
      const rawLine = raw.find((r) => r.includes('"clashing"'))!;
      assert.equal(rawLine.match(/"level":/g)?.length, 1, 'one level key in the written JSON');

      const [withErr] = byMsg(lines, 'with err');
      assert.equal(withErr?.['level'], 50);
      assert.equal((withErr?.['err'] as Line | undefined)?.['message'], 'boom', "pino's err serializer ran");
      assert.equal((withErr?.['circular'] as Line | undefined)?.['self'], '[Circular]');
      assert.equal(withErr?.['jobId'], id);
    });

    it("a ctx.call step's logger and a handler logging after its worker stopped carry the job's fields", async () => {
      const { lines, logger } = capture();
      const queue = new Queue(ts.storage, { logger: pinoLogger(logger.child({ component: 'jobs' })) });
      const q = uniqueName('fields');
      let late!: () => void;
      const lateGate = new Promise<void>((r) => (late = r));
      let logged!: () => void;
      const lateLogged = new Promise<void>((r) => (logged = r));
      let inside!: () => void;
      const running = new Promise<void>((r) => (inside = r));
      queue.register('inner', async (n: number, ctx) => {
        ctx.logger.info('in step', { n });
        return n + 1;
      });
      queue.register('outer', async (_: null, ctx) => {
        await ctx.call('inner', 1);
        inside();
        await lateGate; // ignores its abortSignal
        ctx.logger.warn('after stop');
        logged();
      });
      const id = await queue.enqueue('outer', null, { queue: q });
      const worker = queue.newWorker({ ...fast, drainTimeout: 50, queues: { [q]: { concurrency: 1 } } });
      void worker.start();
      await running;
      await worker.stop();
      late();
      await lateLogged;
      const expected = { jobId: id, type: 'outer', queue: q, attempt: 1, workerId: worker.id, component: 'jobs' };
      const pick = (l: Line | undefined) => Object.fromEntries(Object.keys(expected).map((k) => [k, l?.[k]]));
      const [step] = byMsg(lines, 'in step');
      assert.deepEqual(pick(step), expected, "the step's ctx.logger carries the running job's fields");
      assert.equal(step?.['n'], 1);
      const [afterStop] = byMsg(lines, 'after stop');
      assert.deepEqual(pick(afterStop), expected);
      assert.equal(afterStop?.['level'], 40);
    });

    it('an object that is not a pino logger is refused when the adapter is made', () => {
      for (const bad of [undefined, null, {}, { info() {}, warn() {}, error() {} }, console.log]) {
        assert.throws(() => pinoLogger(bad as unknown as PinoLike), { name: 'InvalidArgumentError' });
      }
    });
  });
}
