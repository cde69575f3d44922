/**
 * The job page's API attacked with what operators will feed it, on every driver, through the
 * dashboard's fetch handler: a workflow with 5,000 checkpoints and a job with hundreds of
 * signals (each answer holds one bounded page, the rest reachable page by page, the newest
 * included); checkpoint outputs and signal payloads at the payload cap and a 60 KB step error
 * (left out of the page with their size, served whole one by one, `redact` still applying); a
 * fan-out with 10,000 sub-jobs whose rows carry 50 KB args and 60 KB errors (slim rows, 100 a
 * page); a deleted and a pruned job (a clear 404 on every job route); a workflow retried from its
 * failed step (its old checkpoints keep their first times); prune with every bad age, with
 * `olderThan: 0` while a worker is finishing jobs, read-only and denied; signals sent with bad
 * bodies, to finished and unknown jobs, read-only and denied (nothing sent).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, afterEach, before, describe, it } from 'node:test';
import { dashboard, type Dashboard, type DashboardOptions } from '../../src/dashboard/index.js';
import { encryptedCodec } from '../../src/core/encrypted-codec.js';
import { noRetry } from '../../src/errors.js';
import { Queue } from '../../src/queue/queue.js';
import { DEFAULT_MAX_PAYLOAD_BYTES } from '../../src/storage/codec.js';
import { claim, fanOutParent, fenceOf, insertJob, runningJob, stepRow, uniqueName } from '../helpers/factories.js';
import { storageMatrix, type TestStorage } from '../helpers/storages.js';
import { startWorker, stopAllWorkers } from '../helpers/workflow-harness.js';
import { getJson, ORIGIN, postJson } from './requests.js';

interface StepJ { index: number; name: string; status: string; output?: unknown; error?: string; at: string; clipped?: Record<string, number>; redacted?: string[] }
interface SignalJ { seq: number; name: string; payload?: unknown; sentAt: string; consumedAt?: string; clipped?: Record<string, number>; redacted?: string[] }
interface ChildJ { id: string; type: string; status: string; lastError?: string; args?: unknown; result?: unknown; meta?: unknown }
interface Detail {
  job: { id: string; status: string; startedAt?: string; lastError?: string };
  steps: StepJ[];
  stepsNext?: number;
  signals: SignalJ[];
  signalsNext?: number;
  children: { jobs: ChildJ[]; nextCursor?: string };
}
interface Problem { error: { code: string; message: string } }

/** The page's answer with its size in characters. */
async function detail(ui: Dashboard, path: string): Promise<{ status: number; body: Detail; size: number }> {
  const res = await ui.fetch(new Request(`${ORIGIN}/api/jobs/${path}`));
  const text = await res.text();
  return { status: res.status, body: JSON.parse(text) as Detail, size: text.length };
}

for (const [name, make] of storageMatrix()) {
  describe(`dashboard job page under attack (${name})`, () => {
    let ts: TestStorage;
    let queue: Queue;
    const uis: Dashboard[] = [];
    const open = (o: DashboardOptions = { insecure: true }): Dashboard => {
      const ui = dashboard(queue, o);
      uis.push(ui);
      return ui;
    };

    before(async () => {
      ts = await make(`dashboard-attack-job-${name}`);
      queue = new Queue(ts.storage);
    });
    afterEach(stopAllWorkers);
    after(async () => {
      for (const ui of uis) ui.close();
      await ts.cleanup();
    });

    it('5,000 checkpoints: each answer holds a bounded page, every checkpoint is reachable once', async () => {
      const ui = open();
      const { fence } = await runningJob(ts.storage, { type: uniqueName('long') });
      const n = 5_000;
      const out = JSON.stringify('o'.repeat(1_000));
      const items = Array.from({ length: n }, (_, i) => ({ fence, step: stepRow(fence.jobId, i, { stepName: `s${i}`, outputJson: out }) }));
      for (let i = 0; i < n; i += 1_000) assert.ok((await ts.storage.stepRecordMany({ items: items.slice(i, i + 1_000) })).every(Boolean));
      const id = fence.jobId;
      const first = await detail(ui, id);
      assert.equal(first.status, 200);
      assert.equal(first.body.steps.length, 100, 'one page of checkpoints');
      assert.equal(first.body.stepsNext, 99);
      assert.ok(first.size < 150_000, `the answer is bounded (${first.size} characters)`);
      const seen: number[] = first.body.steps.map((s) => s.index);
      let next: number | undefined = first.body.stepsNext;
      while (next !== undefined) {
        const page = await detail(ui, `${id}?stepsAfter=${next}`);
        assert.equal(page.status, 200);
        assert.ok(page.body.steps.length <= 100);
        seen.push(...page.body.steps.map((s) => s.index));
        next = page.body.stepsNext;
      }
      assert.deepEqual(seen, Array.from({ length: n }, (_, i) => i), 'every checkpoint once, in order');
      for (const bad of ['x', '1.5', '-2', '99999999999', '1e3', '']) {
        const r = await getJson<Problem>(ui, `/api/jobs/${id}?stepsAfter=${encodeURIComponent(bad)}`);
        if (bad === '') assert.equal(r.status, 200, 'empty: the first page');
        else assert.equal(r.status, 400, `stepsAfter=${bad}`);
      }
      await queue.cancelJob(id);
    });

    it('hundreds of signals: 100 a page, the newest reachable', async () => {
      const ui = open();
      const id = await queue.enqueue(uniqueName('noisy'), {}, { queue: uniqueName('noisy') });
      for (let i = 0; i < 250; i += 25) await Promise.all(Array.from({ length: 25 }, (_, k) => queue.signal(id, `s${i + k}`, i + k)));
      await queue.signal(id, 'newest', 'sent last');
      const first = await detail(ui, id);
      assert.equal(first.body.signals.length, 100);
      assert.equal(first.body.signalsNext, first.body.signals[99]!.seq);
      const all = [...first.body.signals];
      let next: number | undefined = first.body.signalsNext;
      while (next !== undefined) {
        const page = await detail(ui, `${id}?signalsAfter=${next}`);
        assert.equal(page.status, 200);
        all.push(...page.body.signals);
        next = page.body.signalsNext;
      }
      assert.equal(all.length, 251);
      assert.equal(new Set(all.map((s) => s.seq)).size, 251, 'each once');
      assert.deepEqual([all.at(-1)!.name, all.at(-1)!.payload], ['newest', 'sent last'], 'the newest is reachable');
      for (const bad of ['x', '-1', '1.5', '99999999999999999']) {
        assert.equal((await getJson(ui, `/api/jobs/${id}?signalsAfter=${bad}`)).status, 400, `signalsAfter=${bad}`);
      }
      await queue.cancelJob(id);
    });

    it('payloads at the cap and a 60 KB error: left out of the page with their size, served whole one by one, redact applying', async () => {
      const ui = open();
      const huge = 'x'.repeat(DEFAULT_MAX_PAYLOAD_BYTES - 2);
      const error = `first line\n${'e'.repeat(60_000)}`;
      const { fence } = await runningJob(ts.storage, { type: uniqueName('heavy') });
      const id = fence.jobId;
      const steps = [
        stepRow(id, 0, { stepName: 'big-0', outputJson: JSON.stringify(huge) }),
        stepRow(id, 1, { stepName: 'small', outputJson: JSON.stringify({ ok: 1 }) }),
        stepRow(id, 2, { stepName: 'big-2', outputJson: JSON.stringify(huge) }),
        stepRow(id, 3, { stepName: 'broke', status: 'failed', error }),
        stepRow(id, 4, { stepName: 'signal:big', outputJson: JSON.stringify(huge) }),
      ];
      for (const step of steps) assert.ok(await ts.storage.stepRecord({ fence, step }));
      await queue.signal(id, 'big', huge);
      await queue.signal(id, 'small', [1]);
      const page = await detail(ui, id);
      assert.equal(page.status, 200);
      assert.ok(page.size < 60_000, `the page is bounded (${page.size} characters)`);
      const byIndex = new Map(page.body.steps.map((s) => [s.index, s]));
      assert.equal('output' in byIndex.get(0)!, false, 'a large output is left out');
      assert.deepEqual(byIndex.get(0)!.clipped, { output: DEFAULT_MAX_PAYLOAD_BYTES });
      assert.deepEqual(byIndex.get(1)!.output, { ok: 1 });
      assert.equal(byIndex.get(1)!.clipped, undefined);
      assert.ok(byIndex.get(3)!.error!.startsWith('first line\n'), 'a long error keeps its start');
      assert.ok(byIndex.get(3)!.error!.length <= 4_096);
      assert.deepEqual(byIndex.get(3)!.clipped, { error: Buffer.byteLength(error) });
      const sig = page.body.signals.find((s) => s.name === 'big')!;
      assert.equal('payload' in sig, false);
      assert.deepEqual(sig.clipped, { payload: DEFAULT_MAX_PAYLOAD_BYTES });
      assert.deepEqual(page.body.signals.find((s) => s.name === 'small')!.payload, [1]);

      // Each one whole, on its own.
      const whole = await getJson<{ step: StepJ }>(ui, `/api/jobs/${id}/steps/0`);
      assert.equal(whole.status, 200);
      assert.equal(whole.body.step.output, huge);
      assert.equal((await getJson<{ step: StepJ }>(ui, `/api/jobs/${id}/steps/3`)).body.step.error, error);
      const wholeSignal = await getJson<{ signal: SignalJ }>(ui, `/api/jobs/${id}/signals/${sig.seq}`);
      assert.equal(wholeSignal.status, 200);
      assert.equal(wholeSignal.body.signal.payload, huge);
      for (const bad of ['steps/5', 'steps/-1', 'steps/x', 'steps/1.5', `signals/${sig.seq + 1_000_000}`, 'signals/0', 'signals/x']) {
        const r = await getJson<Problem>(ui, `/api/jobs/${id}/${bad}`);
        assert.ok(r.status === 404 || r.status === 400, `${bad}: ${r.status}`);
      }

      // redact applies to the single reads too.
      const hidden = open({ insecure: true, redact: true });
      const redStep = (await getJson<{ step: StepJ }>(hidden, `/api/jobs/${id}/steps/0`)).body.step;
      assert.equal('output' in redStep, false);
      assert.deepEqual(redStep.redacted, ['output']);
      const redError = (await getJson<{ step: StepJ }>(hidden, `/api/jobs/${id}/steps/3`)).body.step;
      assert.equal('error' in redError, false);
      const redSignal = (await getJson<{ signal: SignalJ }>(hidden, `/api/jobs/${id}/signals/${sig.seq}`)).body.signal;
      assert.equal('payload' in redSignal, false);
      const redPage = await detail(hidden, id);
      assert.ok(!JSON.stringify(redPage.body).includes('xxxxxxxxxx'), 'nothing of the payloads in a redacted page');
      assert.ok(redPage.body.steps.every((s) => !('clipped' in s && s.clipped !== undefined && ('output' in s.clipped || 'error' in s.clipped))), 'a hidden field is not said to be clipped');
      await queue.cancelJob(id);
    });

    it('a fan-out with 10,000 sub-jobs: slim rows, 100 a page, every one reachable once', async () => {
      const ui = open();
      const wide = await fanOutParent(ts.storage, { n: 10_000, child: { argsJson: '{"i":1}' } });
      const first = await detail(ui, wide.parentId);
      assert.equal(first.body.children.jobs.length, 100);
      assert.ok(first.body.children.nextCursor);
      const seen = first.body.children.jobs.map((j) => j.id);
      let cursor: string | undefined = first.body.children.nextCursor;
      while (cursor !== undefined) {
        const r: { status: number; body: { jobs: ChildJ[]; nextCursor?: string } } = await getJson<{ jobs: ChildJ[]; nextCursor?: string }>(ui, `/api/jobs/${wide.parentId}/children?cursor=${encodeURIComponent(cursor)}`);
        assert.equal(r.status, 200);
        assert.ok(r.body.jobs.length <= 100);
        seen.push(...r.body.jobs.map((j) => j.id));
        cursor = r.body.nextCursor;
      }
      assert.deepEqual(seen, wide.childIds, 'every sub-job once, in fan-out order');
      assert.equal((await getJson(ui, `/api/jobs/${wide.parentId}/children?cursor=bogus!`)).status, 400);
      await queue.cancelJob(wide.parentId);

      // Rows of a sub-job tree carry no payloads and one short line of error.
      const parent = await insertJob(ts.storage, { queue: uniqueName('p') });
      const kidQueue = uniqueName('heavy-kids');
      const args = JSON.stringify({ blob: 'a'.repeat(50_000) });
      for (let i = 0; i < 120; i++) await insertJob(ts.storage, { queue: kidQueue, parentId: parent, argsJson: args, metaJson: args });
      const rows = await claim(ts.storage, kidQueue, 120);
      const longError = `${'E'.repeat(60_000)}\nsecond line`;
      await ts.storage.jobFinishMany({ items: rows.map((r) => ({ ...fenceOf(r), outcome: 'failed' as const, error: longError })) });
      const heavy = await detail(ui, parent);
      assert.equal(heavy.body.children.jobs.length, 100);
      assert.ok(heavy.size < 150_000, `sub-job rows are slim (${heavy.size} characters)`);
      for (const k of heavy.body.children.jobs) {
        assert.equal(k.status, 'failed');
        assert.ok(!('args' in k) && !('meta' in k) && !('result' in k), 'no payload in a row');
        assert.ok(k.lastError!.length <= 300 && k.lastError!.startsWith('EEEE') && !k.lastError!.includes('second line'), 'one short line of error');
      }
      const rest = await getJson<{ jobs: ChildJ[] }>(ui, `/api/jobs/${parent}/children?cursor=${encodeURIComponent(heavy.body.children.nextCursor!)}`);
      assert.equal(rest.body.jobs.length, 20);
      assert.ok(rest.body.jobs.every((k) => !('args' in k)));
      // The job itself keeps its whole error text (one job, under the payload cap).
      assert.equal((await detail(ui, rows[0]!.id)).body.job.lastError, longError);
      const redacted = open({ insecure: true, redact: { errors: true } });
      assert.ok((await detail(redacted, parent)).body.children.jobs.every((k) => !('lastError' in k)), 'redact.errors hides row errors');
      await queue.cancelJob(parent);
    });

    it('a queue whose codec has the wrong key: the page still answers, saying what it cannot read', async () => {
      const writer = new Queue(ts.storage, { codec: encryptedCodec({ key: randomBytes(32) }) });
      const reader = new Queue(ts.storage, { codec: encryptedCodec({ key: randomBytes(32) }) });
      const { fence } = await runningJob(writer.storage, { type: uniqueName('sealed'), argsJson: JSON.stringify({ card: '4111' }) });
      assert.ok(await writer.storage.stepRecord({ fence, step: stepRow(fence.jobId, 0, { stepName: 'charge', outputJson: JSON.stringify({ card: '4111' }) }) }));
      await writer.signal(fence.jobId, 'secret', { card: '4111' });
      const ui = dashboard(reader, { insecure: true });
      uis.push(ui);
      const page = await detail(ui, fence.jobId);
      assert.equal(page.status, 200);
      assert.ok(!JSON.stringify(page.body).includes('4111'), 'nothing decoded by the wrong key');
      assert.match(String(page.body.steps[0]!.output), /cannot be decoded/);
      assert.match(String(page.body.signals[0]!.payload), /cannot be decoded/);
      const one = await getJson<{ step: StepJ }>(ui, `/api/jobs/${fence.jobId}/steps/0`);
      assert.equal(one.status, 200);
      await queue.cancelJob(fence.jobId);
    });

    it('a deleted or pruned job: a clear 404 on every job route', async () => {
      const ui = open();
      const type = uniqueName('gone');
      const q = uniqueName('gone');
      queue.register(type, async (_: unknown, ctx) => ctx.waitForSignal('go'));
      const ids = [await queue.enqueue(type, {}, { queue: q }), await queue.enqueue(type, {}, { queue: q })];
      for (const id of ids) await queue.signal(id, 'go', 1);
      const w = startWorker(queue, { queues: { [q]: { concurrency: 2 } } });
      for (const id of ids) assert.equal((await queue.waitForJob(id, { timeout: 10_000 })).status, 'completed');
      await w.stop();
      const [signal] = (await detail(ui, ids[0]!)).body.signals;
      assert.equal((await postJson(ui, `/api/jobs/${ids[0]}/delete`)).status, 200);
      assert.ok((await queue.prune({ olderThan: 0 })) >= 1);
      for (const id of ids) {
        for (const path of [id, `${id}?stepsAfter=0`, `${id}/steps/0`, `${id}/signals/${signal!.seq}`, `${id}/children`]) {
          const r = await getJson<Problem>(ui, `/api/jobs/${path}`);
          assert.equal(r.status, 404, path);
          assert.equal(r.body.error.code, 'JOB_NOT_FOUND');
          assert.equal(r.body.error.message, `job ${id} not found`, 'says which job, once');
        }
      }
    });

    it('a workflow retried from its failed step: its old checkpoints keep their first times, before the last run', async () => {
      const ui = open();
      const type = uniqueName('resume');
      const q = uniqueName('resume');
      const state = { fail: true };
      queue.register(type, async (_: unknown, ctx) => {
        const first = await ctx.call<number>('first-step-' + type, 1);
        if (state.fail) throw noRetry(new Error('second step broke'));
        return first;
      });
      queue.register('first-step-' + type, async (n: number) => n + 1);
      const id = await queue.enqueue(type, {}, { queue: q, retries: 0 });
      const w = startWorker(queue, { queues: { [q]: { concurrency: 1 } } });
      assert.equal((await queue.waitForJob(id, { timeout: 10_000 })).status, 'failed');
      const before1 = (await detail(ui, id)).body;
      state.fail = false;
      assert.equal((await postJson(ui, `/api/jobs/${id}/retry`, { fromFailedStep: true })).status, 200);
      assert.equal((await queue.waitForJob(id, { timeout: 10_000 })).status, 'completed');
      await w.stop();
      const after1 = (await detail(ui, id)).body;
      assert.equal(after1.steps[0]!.at, before1.steps[0]!.at, 'the kept checkpoint keeps its time');
      assert.ok(Date.parse(after1.steps[0]!.at) <= Date.parse(after1.job.startedAt!), 'older than the last run');
    });

    it('prune: every bad age refused with nothing deleted; 0 while a worker finishes jobs deletes no live job', async () => {
      const ui = open();
      const done = await queue.enqueue(uniqueName('done'), {}, { queue: uniqueName('done') });
      await queue.cancelJob(done);
      for (const bad of [-1, 1.5, 2 ** 60, Number.MAX_SAFE_INTEGER + 1, '5', null, true, {}, [0]]) {
        const r = await postJson<Problem>(ui, '/api/prune', { olderThan: bad });
        assert.equal(r.status, 400, `olderThan ${JSON.stringify(bad)}`);
        assert.equal(r.body.error.code, 'INVALID_ARGUMENT');
      }
      const raw = await ui.fetch(
        new Request(`${ORIGIN}/api/prune`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-sdj-dashboard': '1' }, body: '{"olderThan":1e400}' }),
      );
      assert.equal(raw.status, 400, 'Infinity');
      assert.ok(await queue.getJob(done), 'nothing deleted by a refused prune');

      // Read-only and denied: refused, nothing deleted.
      assert.equal((await postJson<Problem>(open({ insecure: true, readOnly: true }), '/api/prune', { olderThan: 0 })).body.error.code, 'READ_ONLY');
      const asked: string[] = [];
      const denied = open({ authorize: (_r, a) => (asked.push(a), a === 'view') });
      const refused = await postJson<Problem>(denied, '/api/prune', { olderThan: 0 });
      assert.equal(refused.status, 403);
      assert.deepEqual(asked, ['prune']);
      assert.ok(await queue.getJob(done));

      // While a worker is finishing jobs: live jobs stay, every run ends normally.
      const type = uniqueName('busy');
      const q = uniqueName('busy');
      const ran = new Map<string, number>();
      queue.register(type, async (n: number) => {
        ran.set(String(n), (ran.get(String(n)) ?? 0) + 1);
        return n;
      });
      const completed = new Set<string>();
      let wake: () => void = () => undefined;
      const off = queue.onJobComplete((j) => {
        if (j.type !== type) return;
        completed.add(j.id);
        wake();
      });
      const ids = await queue.enqueueBatch(Array.from({ length: 40 }, (_, i) => ({ type, args: i, options: { queue: q } })));
      const w = startWorker(queue, { queues: { [q]: { concurrency: 4 } } });
      let deleted = 0;
      while (completed.size < ids.length) {
        // Prune again at each completion, racing the worker's next ones.
        const completion = new Promise<void>((resolve) => (wake = resolve));
        const r = await postJson<{ deleted: number }>(ui, '/api/prune', { olderThan: 0 });
        assert.equal(r.status, 200);
        deleted += r.body.deleted;
        for (const id of ids) {
          const j = await queue.getJob(id);
          assert.ok(j === undefined ? completed.has(id) : true, `${id} deleted only after it completed`);
        }
        if (completed.size < ids.length) await completion;
      }
      await w.stop();
      off();
      assert.equal(completed.size, 40);
      assert.deepEqual([...ran.values()].filter((c) => c !== 1), [], 'every job ran once');
      assert.ok(deleted >= 1);
      assert.equal((await postJson<{ deleted: number }>(ui, '/api/prune', { olderThan: -0 })).status, 200);
    });

    it('signals from the page: bad bodies, finished and unknown jobs, read-only and denied send nothing', async () => {
      const ui = open();
      const id = await queue.enqueue(uniqueName('sig'), {}, { queue: uniqueName('sig') });
      const bodies: unknown[] = [{}, { name: 5 }, { name: '' }, { name: 'a\u0000b' }, { name: 'x\ud800' }, { name: ['a'] }, { name: 'n', payload: JSON.parse('['.repeat(70) + ']'.repeat(70)) as unknown }];
      for (const b of bodies) {
        const r = await postJson<Problem>(ui, `/api/jobs/${id}/signal`, b);
        assert.equal(r.status, 400, JSON.stringify(b).slice(0, 40));
      }
      assert.equal((await postJson(open({ insecure: true, readOnly: true }), `/api/jobs/${id}/signal`, { name: 'ro' })).status, 403);
      assert.equal((await postJson(open({ authorize: (_r, a) => a !== 'signal' }), `/api/jobs/${id}/signal`, { name: 'no' })).status, 403);
      assert.deepEqual(await queue.getSignals(id), [], 'nothing sent');
      assert.equal((await postJson(ui, `/api/jobs/${id}/signal`, { name: 'ok', payload: { a: '\u0000' } })).status, 200);
      assert.deepEqual((await queue.getSignals(id)).map((s) => [s.name, s.payload]), [['ok', { a: '\u0000' }]]);
      await queue.cancelJob(id);
      assert.equal((await postJson<Problem>(ui, `/api/jobs/${id}/signal`, { name: 'late' })).status, 409);
      assert.equal((await postJson<Problem>(ui, '/api/jobs/00000000-0000-7000-8000-000000000000/signal', { name: 'x' })).status, 404);
      assert.equal((await queue.getSignals(id)).length, 1);
    });
  });
}
