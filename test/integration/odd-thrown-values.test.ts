/**
 * Handlers throw odd values, and the engine still records a failure with a storable text, on
 * every driver: an Error whose `message` getter throws, an Error whose `message` is not a string
 * (a number, an object), an object whose JSON and string forms both throw. The job must end
 * `failed` on its first (and last) attempt with the handler run once and the same text on every
 * driver — not wait for its lease to expire and run again (a throwing message), nor have its
 * text refused by the driver (a number on MySQL, an object on SQLite and MySQL) or mangled
 * (SQLite stored the number 42 as "42.0") — and a step that throws such a value records a
 * failed step with that text.
 */
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Queue } from '../../src/queue/queue.js';
import { noRetry } from '../../src/errors.js';
import { storageMatrix, type TestStorage } from '../helpers/storages.js';
import { startWorker, stopAllWorkers } from '../helpers/workflow-harness.js';

const quick = { pollInterval: 20, maintenanceInterval: 50, heartbeatInterval: 100, leaseTimeout: 1500, drainTimeout: 1000 } as const;

/** An Error whose message getter throws. */
class NastyMessage extends Error {
  override get message(): string {
    throw new Error('the message getter exploded');
  }
}

function numericMessage(): Error {
  const e = new Error('x');
  (e as { message: unknown }).message = 42;
  return e;
}

function objectMessage(): Error {
  const e = new Error('x');
  (e as { message: unknown }).message = { code: 'E_ODD', detail: 'an object as message' };
  return e;
}

/** JSON.stringify throws (toJSON throws) and String() throws (no prototype). */
function unprintable(): unknown {
  const o = Object.create(null) as Record<string, unknown>;
  o.toJSON = () => {
    throw new Error('no json');
  };
  return o;
}

const UNREADABLE = 'a thrown object whose message cannot be read';

/** Each odd value, and the text stored for it (the same on every driver). */
const cases: { label: string; make: () => unknown; text: string }[] = [
  { label: 'an Error whose message getter throws', make: () => new NastyMessage(), text: UNREADABLE },
  { label: 'an Error whose message is a number', make: numericMessage, text: '42' },
  { label: 'an Error whose message is an object', make: objectMessage, text: '{"code":"E_ODD","detail":"an object as message"}' },
  { label: 'a value that neither JSON nor String can print', make: unprintable, text: UNREADABLE },
];

for (const [name, make] of storageMatrix()) {
  describe(`odd thrown values (${name})`, () => {
    let ts: TestStorage;
    before(async () => {
      ts = await make(`odd-thrown-${name}`);
    });
    afterEach(stopAllWorkers);
    after(() => ts.cleanup());

    cases.forEach((c, i) => {
      it(`a job that throws ${c.label} ends failed with a text, its handler run once`, async () => {
        const queue = new Queue(ts.storage);
        let runs = 0;
        const type = `odd-${i}`;
        queue.register(type, () => {
          runs++;
          throw c.make();
        });
        const q = `odd-q-${i}`;
        const id = await queue.enqueue(type, null, { retries: 0, queue: q });
        const w = startWorker(queue, { ...quick, queues: { [q]: { concurrency: 1 } } });
        const job = await queue.waitForJob(id, { timeout: 15_000 });
        await w.stop();
        assert.equal(job.status, 'failed');
        assert.equal(job.lastError, c.text, "the failure is the handler's, not a lost lease nor a driver's refusal");
        assert.equal(runs, 1, 'the handler ran once');
      });

      it(`a workflow step that throws noRetry(${c.label}) records a failed step with a text`, async () => {
        const queue = new Queue(ts.storage);
        const type = `odd-flow-${i}`;
        const step = `odd-step-${i}`;
        queue.register(step, () => {
          throw noRetry(c.make());
        });
        queue.register(type, async (_: null, ctx) => {
          try {
            await ctx.call(step);
          } catch {
            return 'caught';
          }
          return 'not thrown';
        });
        const q = `odd-flow-q-${i}`;
        const id = await queue.enqueue(type, null, { retries: 0, queue: q });
        const w = startWorker(queue, { ...quick, queues: { [q]: { concurrency: 1 } } });
        const job = await queue.waitForJob(id, { timeout: 15_000 });
        await w.stop();
        assert.equal(job.status, 'completed', `the handler caught the step failure (last error: ${job.lastError ?? 'none'})`);
        assert.equal(job.result, 'caught');
        const steps = await ts.storage.stepList({ jobId: id });
        assert.equal(steps.length, 1, 'the failed step is recorded');
        assert.equal(steps[0]!.status, 'failed');
        assert.equal(steps[0]!.error, c.text);
      });
    });
  });
}
