/**
 * Every option of the public API is checked up front, on every driver: a bad value gets an
 * `InvalidArgumentError` whose message names the field — thrown by what is built synchronously
 * (`new Queue`, `queue.newWorker`, `retryAfter`), a rejection from async methods — and nothing
 * is built or written. Durations that arm a timer stop at 2^31 − 1 ms ("about 24.8 days");
 * durations stored in the database may be longer (up to 100 years).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Queue } from '../../src/queue/queue.js';
import { every } from '../../src/scheduler/schedules.js';
import { InvalidArgumentError, PayloadTooLargeError, retryAfter } from '../../src/errors.js';
import type { WorkerOptions } from '../../src/worker/worker.js';
import { storageMatrix, type TestStorage } from '../helpers/storages.js';

const DAY = 24 * 3600 * 1000;
const TIMER_MAX = 2 ** 31 - 1;
const CENTURY = 100 * 365 * DAY;
const noop = (): void => {};
const logger = { debug: noop, info: noop, warn: noop, error: noop };

/** Asserts `fn` throws synchronously an InvalidArgumentError whose message matches every pattern. */
function throwsInvalid(fn: () => unknown, label: string, ...patterns: RegExp[]): void {
  let thrown: unknown;
  try {
    fn();
  } catch (e) {
    thrown = e;
  }
  assert.ok(thrown instanceof InvalidArgumentError, `${label}: expected InvalidArgumentError, got ${String(thrown)}`);
  for (const re of patterns) assert.match(thrown.message, re, label);
}

/** Asserts `fn` returns a promise that rejects with an InvalidArgumentError matching every pattern. */
async function rejectsInvalid(fn: () => unknown, label: string, ...patterns: RegExp[]): Promise<void> {
  let p: unknown;
  try {
    p = fn();
  } catch (e) {
    assert.fail(`${label}: threw synchronously (${String(e)}) instead of rejecting`);
  }
  assert.ok(p instanceof Promise, `${label}: returns a promise`);
  await assert.rejects(p, (e: unknown) => e instanceof InvalidArgumentError && patterns.every((re) => re.test(e.message)), label);
}

for (const [name, make] of storageMatrix()) {
  describe(`option validation (${name})`, () => {
    let ts: TestStorage;
    let queue: Queue;
    before(async () => {
      ts = await make(`options-${name}`);
      queue = new Queue(ts.storage);
    });
    after(() => ts.cleanup());

    it('Queue options: each bad value throws, naming the field', () => {
      const bad: [string, unknown, RegExp][] = [
        ['defaultRetries -5', { defaultRetries: -5 }, /defaultRetries/],
        ['defaultRetries 2.5', { defaultRetries: 2.5 }, /defaultRetries/],
        ['defaultRetries NaN', { defaultRetries: NaN }, /defaultRetries/],
        ['defaultRetries as a string', { defaultRetries: '3' }, /defaultRetries/],
        ['defaultRetries above 10000', { defaultRetries: 10_001 }, /defaultRetries/],
        ['maxPayloadBytes NaN', { maxPayloadBytes: NaN }, /maxPayloadBytes/],
        ['maxPayloadBytes 0', { maxPayloadBytes: 0 }, /maxPayloadBytes/],
        ['maxPayloadBytes -1', { maxPayloadBytes: -1 }, /maxPayloadBytes/],
        ['maxPayloadBytes 1.5', { maxPayloadBytes: 1.5 }, /maxPayloadBytes/],
        ['maxPayloadBytes Infinity', { maxPayloadBytes: Infinity }, /maxPayloadBytes/],
        ['maxPayloadBytes 1 TiB', { maxPayloadBytes: 2 ** 40 }, /maxPayloadBytes/],
        ['logger {}', { logger: {} }, /logger/],
        ['logger without error()', { logger: { debug: noop, info: noop, warn: noop } }, /logger/],
        ['logger as a string', { logger: 'console' }, /logger/],
        ['unknown option', { retries: 3 }, /unknown option "retries"/],
        ['options null', null, /queue options/],
      ];
      for (const [label, options, field] of bad) throwsInvalid(() => new Queue(ts.storage, options as never), label, field);
      throwsInvalid(() => new Queue(undefined as never), 'no storage', /storage/);
      assert.doesNotThrow(() => new Queue(ts.storage, { defaultRetries: 0, maxPayloadBytes: 1, logger }));
    });

    it('worker options: each bad value throws, naming the field; timer durations stop at about 24.8 days', () => {
      const bad: [string, WorkerOptions, ...RegExp[]][] = [
        ['leaseTimeout of 30 days', { leaseTimeout: 30 * DAY }, /leaseTimeout/, /24\.8 days/],
        ['leaseTimeout NaN', { leaseTimeout: NaN }, /leaseTimeout/],
        ['leaseTimeout below 200 ms', { leaseTimeout: 100 }, /leaseTimeout/],
        ['heartbeatInterval of 30 days', { heartbeatInterval: 30 * DAY }, /heartbeatInterval/, /24\.8 days/],
        ['heartbeatInterval equal to the lease', { leaseTimeout: 1000, heartbeatInterval: 1000 }, /heartbeatInterval/, /half of leaseTimeout/],
        ['heartbeatInterval above the lease', { leaseTimeout: 1000, heartbeatInterval: 5000 }, /heartbeatInterval/, /half of leaseTimeout/],
        ['heartbeatInterval above half the lease', { leaseTimeout: 1000, heartbeatInterval: 501 }, /heartbeatInterval/, /half of leaseTimeout/],
        ['heartbeatInterval above half the default lease', { heartbeatInterval: 20_000 }, /heartbeatInterval/, /30000/],
        ['pollInterval of 30 days', { pollInterval: 30 * DAY }, /pollInterval/, /24\.8 days/],
        ['pollInterval 0', { pollInterval: 0 }, /pollInterval/],
        ['maintenanceInterval of 30 days', { maintenanceInterval: 30 * DAY }, /maintenanceInterval/, /24\.8 days/],
        ['maintenanceInterval Infinity', { maintenanceInterval: Infinity }, /maintenanceInterval/],
        ['drainTimeout of 30 days', { drainTimeout: 30 * DAY }, /drainTimeout/, /24\.8 days/],
        ['drainTimeout -1', { drainTimeout: -1 }, /drainTimeout/],
        ['name of 5000 characters', { name: 'w'.repeat(5000) }, /name/, /200/],
        ['name of 201 characters', { name: 'w'.repeat(201) }, /name/, /200/],
        ['empty name', { name: '' }, /name/],
        ['name with NUL', { name: 'a\u0000b' }, /name/, /control/],
        ['name with a newline', { name: 'a\nb' }, /name/, /control/],
        ['name with a lone surrogate', { name: 'a\uD800b' }, /name/, /surrogate/],
        ['name as a number', { name: 42 as never }, /name/],
        ['scheduler as a string', { scheduler: 'yes' as never }, /scheduler/],
        ['handleSignals as a number', { handleSignals: 1 as never }, /handleSignals/],
        ['backoff as a number', { backoff: 5 as never }, /backoff/],
        ['logger {}', { logger: {} as never }, /logger/],
        ['concurrency 0', { queues: { default: { concurrency: 0 } } }, /concurrency/],
        ['unknown option', { lease: 5 } as never, /unknown option "lease"/],
      ];
      for (const [label, options, ...patterns] of bad) throwsInvalid(() => queue.newWorker({ handleSignals: false, ...options }), label, ...patterns);
      // At the limits: accepted.
      assert.ok(queue.newWorker({ handleSignals: false, leaseTimeout: TIMER_MAX, heartbeatInterval: Math.floor(TIMER_MAX / 2), drainTimeout: TIMER_MAX }));
      assert.ok(queue.newWorker({ handleSignals: false, leaseTimeout: 1000, heartbeatInterval: 500, name: 'ü'.repeat(150) + '🙂'.repeat(25) }));
    });

    it('enqueue and waitForJob: timer durations stop at about 24.8 days, stored ones at 100 years; async methods reject', async () => {
      await rejectsInvalid(() => queue.enqueue('x', {}, { queue: 'optq', timeout: 30 * DAY }), 'job timeout of 30 days', /timeout/, /24\.8 days/);
      await rejectsInvalid(() => queue.enqueue('x', {}, { queue: 'optq', delay: CENTURY + 1 }), 'delay over 100 years', /delay/, /100 years/);
      await rejectsInvalid(() => queue.enqueue('x', {}, { queue: 'optq', retries: 10_001 }), 'retries over 10000', /retries/);
      await rejectsInvalid(
        () => queue.enqueueBatch([{ type: 'x', options: { queue: 'optq' } }, { type: 'x', options: { queue: 'optq', timeout: TIMER_MAX + 1 } }]),
        'a batch with one timeout over the limit',
        /timeout/,
      );
      assert.equal((await ts.storage.jobList({ queue: 'optq', limit: 10 })).length, 0, 'nothing was written');

      // Stored durations may be longer than a timer can wait.
      const later = await queue.enqueue('x', {}, { queue: 'optq', delay: 30 * DAY, timeout: TIMER_MAX });
      const job = await queue.getJob(later);
      assert.ok(job && job.runAt.getTime() >= Date.now() + 29 * DAY, 'a 30-day delay is stored');
      await queue.cancelJob(later);

      await rejectsInvalid(() => queue.waitForJob(later, { pollInterval: 30 * DAY }), 'waitForJob pollInterval of 30 days', /pollInterval/, /24\.8 days/);
      await rejectsInvalid(() => queue.waitForJob(later, { timeout: NaN }), 'waitForJob timeout NaN', /timeout/);
      assert.equal((await queue.waitForJob(later, { timeout: 30 * DAY })).status, 'cancelled', 'a 30-day waitForJob timeout is accepted');
    });

    it('retryAfter: only values the library cannot store are refused', () => {
      for (const [label, ms] of [
        ['1e19', 1e19],
        ['just over 100 years', CENTURY + 1],
        ['NaN', NaN],
        ['Infinity', Infinity],
        ['-1', -1],
        ['a string', '5' as never],
      ] as [string, number][]) {
        throwsInvalid(() => retryAfter(ms, new Error('x')), `retryAfter(${label})`, /retryAfter/);
      }
      assert.equal(retryAfter(CENTURY, new Error('x')).delayMs, CENTURY, 'as given, however long, up to 100 years');
      assert.equal(retryAfter(30 * DAY, new Error('x')).delayMs, 30 * DAY);
    });

    it('maxPayloadBytes is enforced (a NaN can no longer switch the cap off)', async () => {
      const small = new Queue(ts.storage, { maxPayloadBytes: 1000 });
      await assert.rejects(small.enqueue('x', 'y'.repeat(3000), { queue: 'capq' }), PayloadTooLargeError);
      assert.equal((await ts.storage.jobList({ queue: 'capq', limit: 10 })).length, 0);
    });

    it('schedules with overlap: false: the name leaves room for its unique key; a name at that limit runs', async () => {
      const every1h = every(3_600_000);
      await rejectsInvalid(() => queue.schedule('s'.repeat(243), every1h, { overlap: false, queue: 'schq' }), 'a 243-character name with overlap: false', /schedule name/, /242/, /overlap: false/);
      assert.equal((await queue.schedules()).length, 0, 'nothing was stored');
      const name = 's'.repeat(242);
      await queue.schedule(name, every1h, { overlap: false, queue: 'schq' });
      await queue.schedule('t'.repeat(255), every1h, { queue: 'schq' });
      assert.deepEqual((await queue.schedules()).map((s) => s.name.length).sort(), [242, 255]);
      await queue.unschedule(name);
      await queue.unschedule('t'.repeat(255));
    });

    it('defaultRetries is stored as given on every driver', async () => {
      const q0 = new Queue(ts.storage, { defaultRetries: 0 });
      const q7 = new Queue(ts.storage, { defaultRetries: 7 });
      const a = await q0.enqueue('x', {}, { queue: 'retq' });
      const b = await q7.enqueue('x', {}, { queue: 'retq' });
      assert.equal((await q0.getJob(a))?.maxRetries, 0);
      assert.equal((await q7.getJob(b))?.maxRetries, 7);
    });
  });
}
