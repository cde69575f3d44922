/**
 * The dashboard's job detail (`GET api/jobs/<id>`) on every driver, through its fetch handler,
 * against a real database with a real worker: a workflow's signals (consumed and buffered, with
 * their payloads and times), their payloads hidden with the args when `redact.args` is set (a
 * signal's payload is an input) and kept when only results are hidden, and every field the
 * page's timeline is built from.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { dashboard, type Dashboard } from '../../src/dashboard/index.js';
import { Queue } from '../../src/queue/queue.js';
import { uniqueName } from '../helpers/factories.js';
import { storageMatrix, type TestStorage } from '../helpers/storages.js';
import { waitFor } from '../helpers/wait-for.js';
import { startWorker, stopAllWorkers } from '../helpers/workflow-harness.js';
import { getJson, postJson } from './requests.js';

interface SignalJ { seq: number; name: string; payload?: unknown; sentAt: string; consumedAt?: string; redacted?: string[] }
interface StepJ { index: number; name: string; status: string; output?: unknown; at: string; redacted?: string[] }
interface Detail {
  job: { id: string; status: string; attempt: number; maxRetries: number; createdAt: string; runAt: string; startedAt?: string; completedAt?: string; args?: unknown; redacted?: string[] };
  steps: StepJ[];
  signals: SignalJ[];
  children: { jobs: unknown[] };
}

const ms = (iso: string | undefined): number => {
  assert.equal(typeof iso, 'string', 'an ISO instant');
  const t = Date.parse(iso!);
  assert.ok(!Number.isNaN(t), `${iso} parses`);
  return t;
};

for (const [name, make] of storageMatrix()) {
  describe(`dashboard job detail (${name})`, () => {
    let ts: TestStorage;
    let queue: Queue;
    const uis: Dashboard[] = [];
    const q = uniqueName('detail');
    const type = uniqueName('approval');
    const open = (o: Parameters<typeof dashboard>[1]): Dashboard => {
      const ui = dashboard(queue, o);
      uis.push(ui);
      return ui;
    };
    let flowId = '';

    before(async () => {
      ts = await make(`dashboard-detail-${name}`);
      queue = new Queue(ts.storage);
      queue.register('double', async (n: number) => n * 2);
      queue.register(type, async (_: { who: string }, ctx) => {
        const doubled = await ctx.call<number>('double', 21);
        const approval = await ctx.waitForSignal<{ by: string }>('approve');
        return { doubled, approved: approval !== undefined };
      });
      // A workflow that received a buffered signal it never waits for, then one it consumed.
      flowId = await queue.enqueue(type, { who: 'arg-secret' }, { queue: q, retries: 3 });
      await queue.signal(flowId, 'noise', ['n', 1]);
      const w = startWorker(queue, { queues: { [q]: { concurrency: 2 } } });
      try {
        await waitFor(async () => (await queue.getJob(flowId))?.status === 'waiting', { message: 'waits for "approve"' });
        const ui = open({ insecure: true });
        const waiting = await getJson<Detail>(ui, `/api/jobs/${flowId}`);
        assert.equal(waiting.status, 200);
        assert.deepEqual(waiting.body.signals.map((s) => [s.name, s.payload, s.consumedAt]), [['noise', ['n', 1], undefined]]);
        assert.equal((await postJson(ui, `/api/jobs/${flowId}/signal`, { name: 'approve', payload: { by: 'signal-secret' } })).status, 200);
        assert.equal((await queue.waitForJob(flowId, { timeout: 10_000 })).status, 'completed');
      } finally {
        await w.stop();
      }
    });
    afterEach(stopAllWorkers);
    after(async () => {
      for (const ui of uis) ui.close();
      await ts.cleanup();
    });

    it('serves the signals, consumed and buffered, oldest first, with payloads and times', async () => {
      const ui = open({ insecure: true });
      const { status, body } = await getJson<Detail>(ui, `/api/jobs/${flowId}`);
      assert.equal(status, 200);
      assert.deepEqual(
        body.signals.map((s) => [s.name, s.payload, s.consumedAt !== undefined]),
        [
          ['noise', ['n', 1], false],
          ['approve', { by: 'signal-secret' }, true],
        ],
      );
      assert.ok(body.signals[1]!.seq > body.signals[0]!.seq);
      assert.equal('consumedAt' in body.signals[0]!, false, 'buffered: no consumedAt');
      assert.ok(ms(body.signals[1]!.consumedAt) >= ms(body.signals[1]!.sentAt));
      assert.equal(body.signals.some((s) => 'redacted' in s), false);

      // A job without signals has an empty list.
      const plain = await queue.enqueue('double', 1, { queue: uniqueName('idle') });
      assert.deepEqual((await getJson<Detail>(ui, `/api/jobs/${plain}`)).body.signals, []);
      await queue.cancelJob(plain);
    });

    it('carries every field the timeline is built from, in a consistent order', async () => {
      const ui = open({ insecure: true });
      const { body } = await getJson<Detail>(ui, `/api/jobs/${flowId}`);
      const j = body.job;
      assert.equal(j.status, 'completed');
      assert.equal(j.maxRetries, 3);
      assert.equal(typeof j.attempt, 'number');
      const created = ms(j.createdAt);
      ms(j.runAt);
      const started = ms(j.startedAt);
      const completed = ms(j.completedAt);
      assert.ok(created <= started && started <= completed);
      assert.deepEqual(
        body.steps.map((s) => [s.index, s.name, s.status]),
        [
          [0, 'double', 'completed'],
          [1, 'signal:approve', 'completed'],
        ],
      );
      for (const s of body.steps) assert.ok(ms(s.at) >= created && ms(s.at) <= completed, `${s.name} recorded during the job`);
      const approve = body.signals.find((s) => s.name === 'approve')!;
      const step = body.steps[1]!;
      assert.ok(ms(approve.sentAt) <= ms(approve.consumedAt));
      assert.ok(ms(approve.consumedAt) <= completed);
      // A wait's checkpoint is dated when the wait began (it was waiting before the signal was sent).
      assert.ok(ms(step.at) <= ms(approve.sentAt));
      for (const s of body.signals) assert.ok(ms(s.sentAt) >= created);
    });

    it('hides signal payloads with the args (redact.args), keeps them when only results are hidden', async () => {
      const red = open({ insecure: true, redact: { args: true } });
      const hidden = await getJson<Detail>(red, `/api/jobs/${flowId}`);
      assert.equal(hidden.status, 200);
      for (const s of hidden.body.signals) {
        assert.equal('payload' in s, false, `${s.name}: payload hidden`);
        assert.deepEqual(s.redacted, ['payload']);
        assert.ok(s.sentAt, 'the rest of the signal is still there');
      }
      assert.deepEqual(hidden.body.signals.map((s) => s.name), ['noise', 'approve']);
      assert.equal(hidden.body.steps[1]!.output, undefined, 'the signal step output (the same payload) is hidden too');
      assert.equal(hidden.body.steps[0]!.output, 42, 'a result is not an input');
      const text = JSON.stringify(hidden.body);
      assert.ok(!text.includes('signal-secret') && !text.includes('arg-secret'), 'no input payload anywhere in the answer');

      const all = open({ insecure: true, redact: true });
      const none = await getJson<Detail>(all, `/api/jobs/${flowId}`);
      assert.ok(none.body.signals.every((s) => !('payload' in s) && s.redacted?.includes('payload')));

      const results = open({ insecure: true, redact: { results: true } });
      const kept = await getJson<Detail>(results, `/api/jobs/${flowId}`);
      assert.deepEqual(kept.body.signals.map((s) => s.payload), [['n', 1], { by: 'signal-secret' }]);
      assert.equal(kept.body.signals.some((s) => 'redacted' in s), false);
    });
  });
}
