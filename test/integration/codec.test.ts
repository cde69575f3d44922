/**
 * Payload encryption (`QueueOptions.codec` with `encryptedCodec`) on every driver, through the
 * public API, with the database read directly: an encrypted deployment running plain jobs, a
 * workflow (steps, a failed step, a fan-out, a signal), failures, progress, a schedule and fleet
 * events leaves no sentinel text of any payload in any text column of any table; keys rotate
 * (old values read with a previous key, new ones written with the current one; a dropped key
 * fails its jobs with a typed error); a wrong key fails the job, not the worker, and `getJob`
 * still answers; plaintext rows from before encryption read; a codec that throws on encode
 * writes nothing; searches into ciphertext are refused.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, afterEach, before, describe, it } from 'node:test';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { encryptedCodec } from '../../src/core/encrypted-codec.js';
import { composeCodecs, type PayloadCodec } from '../../src/core/payload-codec.js';
import { CodecError, isDurableJobsError, noRetry, PayloadOpaqueError } from '../../src/errors.js';
import { Queue } from '../../src/queue/queue.js';
import { every } from '../../src/scheduler/schedules.js';
import type { FleetEvent } from '../../src/types.js';
import { sub } from '../../src/workflow/fan-out.js';
import { collect } from '../helpers/fleet-events.js';
import { uniqueName } from '../helpers/factories.js';
import { openRawDatabase, type RawDatabase } from '../helpers/raw-database.js';
import { storageMatrix } from '../helpers/storages.js';
import { waitFor } from '../helpers/wait-for.js';
import { startWorker, stopAllWorkers } from '../helpers/workflow-harness.js';

/** A unique marker text per payload kind; none may appear in any table. */
function sentinels(): Record<string, string> {
  const tag = randomBytes(4).toString('hex');
  const kinds = ['args', 'result', 'wfArgs', 'wfResult', 'stepOut', 'stepErr', 'childArgs', 'childResult', 'signal', 'jobErr', 'progress', 'schedArgs', 'retryErr'];
  return Object.fromEntries(kinds.map((k) => [k, `SENTINEL-${k}-${tag}`]));
}

function key(): Buffer {
  return randomBytes(32);
}

for (const [driver] of storageMatrix()) {
  describe(`payload codec: encryption (${driver})`, () => {
    let db: RawDatabase;
    before(async () => {
      db = await openRawDatabase(driver, `codec-${driver}`);
    });
    afterEach(stopAllWorkers);
    after(async () => {
      await db.cleanup();
    });

    it('an encrypted deployment stores no plaintext payload in any text column of any table', async () => {
      const S = sentinels();
      const codec = encryptedCodec({ key: key() });
      const queue = new Queue(db.storage, { codec });
      const q = uniqueName('enc');
      queue.register('plain', async (a: { secret: string }) => ({ echoed: a.secret.replace('args', 'result') }));
      queue.register('failing', async () => {
        throw new Error(S['jobErr']);
      });
      let flaky = 0;
      queue.register('flaky', async () => {
        if (flaky++ === 0) throw new Error(S['retryErr']);
        return 'ok';
      });
      queue.register('progress', async (_a: unknown, ctx) => {
        await ctx.progress(0.5, S['progress']!);
        return 'done';
      });
      queue.register('child', async (a: { c: string }) => `${S['childResult']}:${a.c}`);
      queue.register('ok-step', async () => S['stepOut']);
      queue.register('bad-step', async () => {
        throw noRetry(new Error(S['stepErr']));
      });
      queue.register('flow', async (a: { w: string }, ctx) => {
        const out = await ctx.call<string>('ok-step');
        let stepError = '';
        try {
          await ctx.call('bad-step');
        } catch (e) {
          stepError = (e as Error).message;
        }
        const kids = await ctx.fanOut<string>([sub('child', { c: `${S['childArgs']}-1` }), sub('child', { c: `${S['childArgs']}-2` })]);
        const signal = await ctx.waitForSignal<{ s: string }>('go');
        return { w: a.w, out, stepError, kids: kids.map((k) => k.value), signal: signal?.s, done: S['wfResult'] };
      });
      await queue.schedule(uniqueName('nightly'), every(24 * 3600_000), { type: 'plain', args: { secret: S['schedArgs'] }, queue: q });
      const stream = queue.events({ fleet: true });
      const w = startWorker(queue, { queues: { [q]: { concurrency: 4 } }, backoff: () => 0 });
      try {
        const plain = await queue.enqueue('plain', { secret: S['args'] }, { queue: q, meta: { note: 'meta stays plaintext' } });
        const failing = await queue.enqueue('failing', {}, { queue: q, retries: 0 });
        const flakyId = await queue.enqueue('flaky', {}, { queue: q, retries: 1 });
        const prog = await queue.enqueue('progress', {}, { queue: q });
        const flow = await queue.enqueue('flow', { w: S['wfArgs'] }, { queue: q });
        await queue.signal(flow, 'go', { s: S['signal'] });

        const seen = await collect(stream, (s: FleetEvent[]) => s.some((e) => e.type === 'job.completed' && e.job.id === plain) && s.some((e) => e.type === 'job.failed' && e.job.id === failing));
        const done = seen.find((e) => e.type === 'job.completed' && e.job.id === plain) as Extract<FleetEvent, { type: 'job.completed' }>;
        assert.deepEqual(done.job.args, { secret: S['args'] }, 'the fleet event decodes');

        assert.equal((await queue.waitForJob(plain, { timeout: 15_000 })).status, 'completed');
        const f = await queue.waitForJob(failing, { timeout: 15_000 });
        assert.equal(f.status, 'failed');
        assert.equal(f.lastError, S['jobErr']);
        const fl = await queue.waitForJob(flakyId, { timeout: 15_000 });
        assert.equal(fl.status, 'completed');
        assert.equal(fl.lastError, S['retryErr'], 'the retried error reads back');
        const p = await queue.waitForJob(prog, { timeout: 15_000 });
        assert.equal(p.progress?.message, S['progress']);
        const wf = await queue.waitForJob(flow, { timeout: 20_000 });
        assert.equal(wf.status, 'completed', wf.lastError);
        assert.deepEqual(wf.args, { w: S['wfArgs'] });
        assert.deepEqual(wf.result, {
          w: S['wfArgs'],
          out: S['stepOut'],
          stepError: S['stepErr'],
          kids: [`${S['childResult']}:${S['childArgs']}-1`, `${S['childResult']}:${S['childArgs']}-2`],
          signal: S['signal'],
          done: S['wfResult'],
        });
        const steps = await queue.getSteps(flow);
        assert.equal(steps.find((s) => s.name === 'bad-step')?.error, S['stepErr']);
        assert.equal(steps.find((s) => s.name === 'ok-step')?.output, S['stepOut']);
        const [sched] = (await queue.schedules()).filter((s) => s.options.queue === q);
        assert.deepEqual(sched?.options.args, { secret: S['schedArgs'] });
        await collect(stream, (s: FleetEvent[]) => s.some((e) => e.type === 'job.completed' && e.job.id === flow));
      } finally {
        await stream.return!();
        await w.stop();
      }

      const cells = await db.textCells();
      const tables = new Set(cells.map((c) => c.table));
      for (const t of ['sdj_steps', 'sdj_signals', 'sdj_schedules', 'sdj_events']) assert.ok(tables.has(t), `${t} has rows (${[...tables].join(', ')})`);
      for (const [kind, s] of Object.entries(S)) {
        const hits = cells.filter((c) => c.value.includes(s));
        assert.deepEqual(
          hits.map((h) => `${h.table}.${h.column}`),
          [],
          `the ${kind} sentinel is stored in plaintext`,
        );
      }
      const encoded = cells.filter((c) => c.value.startsWith(`sdj1:aes-256-gcm:v1.${codec.keyId}.`));
      const where = new Set(encoded.map((c) => `${c.table}.${c.column}`));
      for (const col of ['args', 'result', 'last_error', 'output', 'error', 'payload', 'options', 'progress_message']) {
        assert.ok([...where].some((w) => w.endsWith(`.${col}`)), `some ${col} column holds ciphertext (${[...where].join(', ')})`);
      }
    });

    it('rotation: a previous key reads old values, new ones use the current key, a dropped key fails the job with CodecError', async () => {
      const a = encryptedCodec({ key: key() });
      const bKey = key();
      const aKey = key();
      const codecA = encryptedCodec({ key: aKey });
      const codecB = encryptedCodec({ key: bKey, previousKeys: [aKey] });
      assert.notEqual(a.keyId, codecA.keyId);
      assert.deepEqual(codecB.keyIds, [codecB.keyId, codecA.keyId]);
      const q = uniqueName('rot');
      const echo = async (x: unknown): Promise<unknown> => x;
      const qa = new Queue(db.storage, { codec: codecA });
      qa.register('echo', echo);
      const doneA = await qa.enqueue('echo', { v: 'written with A, run with A' }, { queue: q });
      const w1 = startWorker(qa, { queues: { [q]: {} } });
      assert.equal((await qa.waitForJob(doneA, { timeout: 10_000 })).status, 'completed');
      await w1.stop();
      const pendingA = await qa.enqueue('echo', { v: 'written with A, run with B' }, { queue: q });
      assert.match((await db.storage.jobGet({ id: pendingA }))?.argsJson ?? '', new RegExp(`^sdj1:aes-256-gcm:v1\\.${codecA.keyId}\\.`));

      const qb = new Queue(db.storage, { codec: codecB });
      qb.register('echo', echo);
      assert.deepEqual((await qb.getJob(doneA))?.result, { v: 'written with A, run with A' }, 'an old result reads with the previous key');
      const newB = await qb.enqueue('echo', { v: 'written with B' }, { queue: q });
      assert.match((await db.storage.jobGet({ id: newB }))?.argsJson ?? '', new RegExp(`^sdj1:aes-256-gcm:v1\\.${codecB.keyId}\\.`), 'new writes use the current key');
      const w2 = startWorker(qb, { queues: { [q]: {} } });
      assert.deepEqual((await qb.waitForJob(pendingA, { timeout: 10_000 })).result, { v: 'written with A, run with B' });
      assert.deepEqual((await qb.waitForJob(newB, { timeout: 10_000 })).result, { v: 'written with B' });
      await w2.stop();
      assert.match((await db.storage.jobGet({ id: pendingA }))?.resultJson ?? '', new RegExp(`^sdj1:aes-256-gcm:v1\\.${codecB.keyId}\\.`), 'the result of an old job is written with the current key');

      // A dropped key: the job fails at once (no retry) with the typed error; nothing crashes.
      const oldOnly = await qa.enqueue('echo', { v: 'A only' }, { queue: q, retries: 5 });
      const qbOnly = new Queue(db.storage, { codec: encryptedCodec({ key: bKey }) });
      qbOnly.register('echo', echo);
      const errors: Error[] = [];
      qbOnly.onJobFail((_job, err) => void errors.push(err));
      const w3 = startWorker(qbOnly, { queues: { [q]: {} } });
      await waitFor(async () => (await qbOnly.getJob(oldOnly))?.status === 'failed', { timeout: 10_000, message: 'the job no key opens fails' });
      await w3.stop();
      const failed = await qbOnly.getJob(oldOnly);
      assert.equal(failed?.attempt, 1, 'failed on its first attempt, retries left unused');
      assert.equal(failed?.args, undefined);
      assert.match(failed?.lastError ?? '', new RegExp(`key id ${codecA.keyId}`));
      assert.ok(!(failed?.lastError ?? '').includes(aKey.toString('hex')) && !(failed?.lastError ?? '').includes(aKey.toString('base64')), 'the key is never named');
      assert.ok(errors.some((e) => isDurableJobsError(e, 'PAYLOAD_DECODE_FAILED') && e instanceof CodecError), `typed error: ${errors.map(String).join('; ')}`);
      // Keys fixed: the job runs again with retryJob.
      await qb.retryJob(oldOnly);
      const w4 = startWorker(qb, { queues: { [q]: {} } });
      assert.deepEqual((await qb.waitForJob(oldOnly, { timeout: 10_000 })).result, { v: 'A only' });
      await w4.stop();
    });

    it('a wrong key fails that job with PAYLOAD_DECODE_FAILED; the worker keeps running others; getJob and listJobs answer', async () => {
      const q = uniqueName('wrong');
      const writer = new Queue(db.storage, { codec: encryptedCodec({ key: key() }) });
      const reader = new Queue(db.storage, { codec: encryptedCodec({ key: key() }) });
      const ran: unknown[] = [];
      reader.register('work', async (x: unknown) => {
        ran.push(x);
        return x;
      });
      const errors: Error[] = [];
      reader.onJobFail((_job, err) => void errors.push(err));
      const bad = await writer.enqueue('work', { from: 'writer' }, { queue: q, retries: 3 });
      const w = startWorker(reader, { queues: { [q]: { concurrency: 2 } } });
      await waitFor(async () => (await reader.getJob(bad))?.status === 'failed', { timeout: 10_000, message: 'the unreadable job fails' });
      const good = await reader.enqueue('work', { from: 'reader' }, { queue: q });
      assert.equal((await reader.waitForJob(good, { timeout: 10_000 })).status, 'completed', 'the worker still runs jobs');
      await w.stop();
      assert.deepEqual(ran, [{ from: 'reader' }], 'the handler never saw the unreadable job');
      const err = errors.find((e) => isDurableJobsError(e, 'PAYLOAD_DECODE_FAILED'));
      assert.ok(err, `typed error: ${errors.map(String).join('; ')}`);
      assert.match(err.message, new RegExp(`args of job ${bad} cannot be decoded`));
      const job = await reader.getJob(bad);
      assert.equal(job?.status, 'failed');
      assert.equal(job?.args, undefined);
      assert.match(job?.lastError ?? '', /cannot be decoded/);
      const page = await reader.listJobs({ queue: q });
      assert.deepEqual(page.jobs.map((j) => j.id).sort(), [bad, good].sort(), 'the listing answers with both jobs');
      await assert.rejects(reader.waitForJob(bad), (e: unknown) => isDurableJobsError(e, 'PAYLOAD_DECODE_FAILED'));
    });

    it('plaintext rows written before encryption still read and run', async () => {
      const q = uniqueName('before');
      const plainQ = new Queue(db.storage);
      plainQ.register('echo', async (x: unknown) => x);
      plainQ.register('steps', async (_a: unknown, ctx) => ctx.call('echo', 'step output'));
      const done = await plainQ.enqueue('echo', { before: true }, { queue: q });
      const flow = await plainQ.enqueue('steps', null, { queue: q });
      const w = startWorker(plainQ, { queues: { [q]: {} } });
      await plainQ.waitForJob(done, { timeout: 10_000 });
      await plainQ.waitForJob(flow, { timeout: 10_000 });
      await w.stop();
      const pending = await plainQ.enqueue('echo', { stillPlain: 'yes' }, { queue: q });
      assert.equal((await db.storage.jobGet({ id: pending }))?.argsJson, '{"stillPlain":"yes"}');

      const enc = new Queue(db.storage, { codec: encryptedCodec({ key: key() }) });
      enc.register('echo', async (x: unknown) => x);
      assert.deepEqual((await enc.getJob(done))?.result, { before: true });
      assert.deepEqual((await enc.getSteps(flow)).map((s) => s.output), ['step output']);
      const w2 = startWorker(enc, { queues: { [q]: {} } });
      assert.deepEqual((await enc.waitForJob(pending, { timeout: 10_000 })).result, { stillPlain: 'yes' });
      await w2.stop();
    });

    it('odd text round-trips through the encrypted codec: NUL, lone surrogates, empty strings, non-BMP, a payload at the cap', async () => {
      const q = uniqueName('odd');
      const cap = 4096;
      const queue = new Queue(db.storage, { codec: encryptedCodec({ key: key() }), maxPayloadBytes: cap });
      queue.register('echo', async (x: unknown) => x);
      const atCap = 'é'.repeat((cap - 2) / 2); // JSON text of exactly `cap` bytes
      assert.equal(Buffer.byteLength(JSON.stringify(atCap)), cap);
      const values: unknown[] = [{ nul: 'a\u0000b' }, { lone: 'x\uD800y\uDC00z' }, '', { empty: '' }, { astral: '😀𝄞 \u{10FFFF}' }, atCap];
      const ids = await queue.enqueueBatch(values.map((args) => ({ type: 'echo', args, options: { queue: q } })));
      await assert.rejects(queue.enqueue('echo', `${atCap}x`, { queue: q }), (e: unknown) => isDurableJobsError(e, 'PAYLOAD_TOO_LARGE'), 'the cap applies to the plaintext');
      const w = startWorker(queue, { queues: { [q]: { concurrency: 4 } } });
      for (const [i, id] of ids.entries()) {
        const job = await queue.waitForJob(id, { timeout: 10_000 });
        assert.deepEqual(job.args, values[i]);
        assert.deepEqual(job.result, values[i]);
      }
      await w.stop();
      const stored = (await db.storage.jobGet({ id: ids[5]! }))?.argsJson ?? '';
      assert.ok(stored.startsWith('sdj1:aes-256-gcm:') && stored.length < cap * 1.4 + 100, `stored text of ${stored.length} characters for ${cap} bytes`);
    });

    it('a codec that throws on encode rejects the enqueue with PAYLOAD_ENCODE_FAILED and writes nothing', async () => {
      const q = uniqueName('throws');
      const broken: PayloadCodec = {
        name: 'broken',
        opaque: false,
        encode: () => {
          throw new Error('encoder down');
        },
        decode: (s) => s,
      };
      const queue = new Queue(db.storage, { codec: broken });
      queue.register('x', async () => 1);
      await assert.rejects(queue.enqueue('x', { a: 1 }, { queue: q }), (e: unknown) => e instanceof CodecError && e.code === 'PAYLOAD_ENCODE_FAILED' && /encoder down/.test(e.message));
      await assert.rejects(
        queue.enqueueBatch([{ type: 'x', args: null, options: { queue: q } }, { type: 'x', args: { b: 2 }, options: { queue: q } }]),
        (e: unknown) => isDurableJobsError(e, 'PAYLOAD_ENCODE_FAILED'),
      );
      assert.equal(await db.storage.jobCount({ queue: q }), 0, 'nothing was written');
    });

    it('a compression codec, alone and composed with encryption, round-trips through the database', async () => {
      const deflate: PayloadCodec = {
        name: 'deflate',
        opaque: true,
        encode: (text) => deflateRawSync(Buffer.from(text, 'utf8')).toString('base64'),
        decode: (stored) => inflateRawSync(Buffer.from(stored, 'base64')).toString('utf8'),
      };
      const big = { rows: Array.from({ length: 300 }, (_, i) => ({ id: i, state: 'unchanged', note: 'ñ😀' })) };
      for (const codec of [deflate, composeCodecs(deflate, encryptedCodec({ key: key() }))]) {
        const q = uniqueName('zip');
        const queue = new Queue(db.storage, { codec });
        queue.register('echo', async (x: unknown) => x);
        const id = await queue.enqueue('echo', big, { queue: q });
        const raw = (await db.storage.jobGet({ id }))?.argsJson ?? '';
        assert.ok(raw.startsWith(`sdj1:${codec.name}:`), raw.slice(0, 40));
        assert.ok(raw.length < JSON.stringify(big).length / 4, `${raw.length} stored characters`);
        const w = startWorker(queue, { queues: { [q]: {} } });
        assert.deepEqual((await queue.waitForJob(id, { timeout: 10_000 })).result, big);
        await w.stop();
      }
    });

    it('ctx.patched answers stay readable to the patch summary (counted in SQL) under encryption', async () => {
      const q = uniqueName('patch');
      const type = uniqueName('patched-flow');
      const queue = new Queue(db.storage, { codec: encryptedCodec({ key: key() }) });
      queue.register(type, async (_a: unknown, ctx) => (ctx.patched('send-sms') ? 'new' : 'old'));
      const id = await queue.enqueue(type, { secret: 'x' }, { queue: q });
      const w = startWorker(queue, { queues: { [q]: {} } });
      assert.equal((await queue.waitForJob(id, { timeout: 10_000 })).result, 'new');
      await w.stop();
      await waitFor(async () => (await queue.patchStatus({ type })).length > 0, { timeout: 5_000, message: 'the answer is stored' });
      const [status] = await queue.patchStatus({ type });
      assert.equal(status?.recordedNew, 1);
      assert.equal(status?.recordedOld, 0);
    });

    it('search into encrypted error texts is refused with PayloadOpaqueError (listJobs and the bulk actions)', async () => {
      const queue = new Queue(db.storage, { codec: encryptedCodec({ key: key() }) });
      await assert.rejects(queue.listJobs({ search: 'timeout' }), (e: unknown) => e instanceof PayloadOpaqueError && e.code === 'PAYLOAD_OPAQUE');
      await assert.rejects(queue.retryJobs({ search: 'timeout' }), (e: unknown) => isDurableJobsError(e, 'PAYLOAD_OPAQUE'));
      await assert.rejects(queue.deleteJobs({ search: 'x', status: 'failed' }), (e: unknown) => isDurableJobsError(e, 'PAYLOAD_OPAQUE'));
      assert.ok(Array.isArray((await queue.listJobs({ type: 'x' })).jobs), 'other filters work');
    });
  });
}
