/**
 * PostgreSQL: batch writes larger than one statement can carry. A batch's payloads travel as
 * text arrays, one bound parameter each; past about 512 M characters the client cannot even
 * build the parameter (and the server takes at most 1 GB per message). Batches of 520 payloads
 * of 1 MiB each — within the default `maxPayloadBytes` and the worker's batch sizes — must still
 * apply whole: finishes, inserts and checkpoints.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Fence, JobInsert } from '../../src/storage/storage.js';
import { applied, bigJson, claim, jobInsert, mustGet, uniqueName } from '../helpers/factories.js';
import { makePostgresStorage } from '../helpers/postgres-storage.js';
import type { TestStorage } from '../helpers/storages.js';

/** Items per batch (just past what one client-side string can hold), and bytes per payload (the default payload cap). */
const N = 520;
const BYTES = 1024 * 1024;

describe('postgres: batches beyond one statement', () => {
  let ts: TestStorage | undefined;
  before(async () => {
    ts = await makePostgresStorage('pg-big-batches');
  });
  after(async () => {
    await ts?.cleanup();
  });

  /** Inserts `n` small jobs into a fresh queue and claims them all. */
  async function running(n: number): Promise<Fence[]> {
    const s = ts!.storage;
    const queue = uniqueName('q');
    await s.jobInsertMany({ jobs: Array.from({ length: n }, () => jobInsert({ queue })) });
    const rows = await claim(s, queue, n, { workerId: 'big' });
    assert.equal(rows.length, n);
    return rows.map((r) => ({ jobId: r.id, workerId: 'big', runCount: r.runCount }));
  }

  it(`finishes ${N} runs with 1 MiB results in one call`, async () => {
    const s = ts!.storage;
    const fences = await running(N);
    const big = bigJson(BYTES);
    const res = applied(await s.jobFinishMany({ items: fences.map((f) => ({ ...f, outcome: 'completed', resultJson: big })) }));
    assert.equal(res.filter(Boolean).length, N);
    for (const f of [fences[0]!, fences[N >> 1]!, fences[N - 1]!]) {
      const row = await mustGet(s, f.jobId);
      assert.equal(row.status, 'completed');
      assert.ok(row.resultJson === big, 'result changed in the round trip');
    }
    assert.equal((await s.jobCountByStatus({})).completed, N);
  });

  it(`inserts ${N} jobs with 1 MiB args in one call, atomically`, async () => {
    const s = ts!.storage;
    const queue = uniqueName('q');
    const big = bigJson(BYTES);
    const jobs: JobInsert[] = Array.from({ length: N }, () => jobInsert({ queue, argsJson: big }));
    assert.equal((await s.jobInsertMany({ jobs })).inserted.length, N);
    assert.ok((await mustGet(s, jobs[N - 1]!.id)).argsJson === big, 'args changed in the round trip');
    // A clash in the last statement of a batch (20 MiB: three statements) rolls back the ones before it.
    const key = uniqueName('key');
    await s.jobInsertMany({ jobs: [jobInsert({ queue, uniqueKey: key })] });
    const clashing = Array.from({ length: 20 }, (_, i) => jobInsert({ queue: uniqueName('q'), argsJson: big, uniqueKey: i === 19 ? key : null }));
    await assert.rejects(s.jobInsertMany({ jobs: clashing }), { code: 'DUPLICATE_JOB' });
    assert.equal(await s.jobGet({ id: clashing[0]!.id }), undefined, 'a failed batch inserted part of its jobs');
  });

  it(`records ${N} checkpoints with 1 MiB outputs in one call`, async () => {
    const s = ts!.storage;
    assert.ok(s.stepRecordMany, 'the PostgreSQL driver writes checkpoints in batches');
    const fences = await running(N);
    const big = bigJson(BYTES);
    const items = fences.map((fence) => ({ fence, step: { jobId: fence.jobId, stepIndex: 0, stepName: 's', status: 'completed' as const, outputJson: big, error: null } }));
    const res = await s.stepRecordMany({ items });
    assert.equal(res.filter(Boolean).length, N);
    const [step] = await s.stepList({ jobId: fences[N - 1]!.jobId });
    assert.ok(step?.outputJson === big, 'output changed in the round trip');
  });
});
