// Testing jobs and workflows with node:test and the test kit's virtual clock:
//   node --import tsx --test examples/testing/node-test.test.ts
// Days of schedules, sleeps, retries and timeouts run in milliseconds, the same way every time.
import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { daily, retryAfter } from 'simple-durable-jobs';
import { createTestQueue, type TestQueue } from 'simple-durable-jobs/testing';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

describe('billing jobs', () => {
  let t: TestQueue;
  beforeEach(async () => {
    t = await createTestQueue(); // in-memory SQLite; the clock starts at 2025-01-01T00:00:00Z
  });
  afterEach(() => t.close());

  it('sends the daily report at 09:00 every day', async () => {
    const sentAt: string[] = [];
    t.queue.register('daily-report', async () => void sentAt.push(t.clock.now().toISOString()));
    await t.queue.schedule('daily-report', daily(9, 0));
    await t.clock.advance(3 * DAY);
    assert.deepEqual(sentAt, ['2025-01-01T09:00:00.000Z', '2025-01-02T09:00:00.000Z', '2025-01-03T09:00:00.000Z']);
  });

  it('reminds a customer a week after signing up, unless they paid', async () => {
    const reminded: string[] = [];
    t.queue.register('send-reminder', async (email: string) => void reminded.push(email));
    t.queue.register('trial', async (email: string, ctx) => {
      const paid = await ctx.waitForSignal<boolean>('paid', { timeout: 7 * DAY });
      if (!paid) await ctx.call('send-reminder', email);
    });
    const ann = await t.queue.enqueue('trial', 'ann@example.com');
    await t.queue.enqueue('trial', 'bob@example.com');
    await t.drain(); // both are waiting for their signal now
    await t.clock.advance(2 * DAY);
    await t.queue.signal(ann, 'paid', true);
    await t.clock.advance(5 * DAY);
    assert.deepEqual(reminded, ['bob@example.com']);
  });

  it('retries a rate-limited call an hour later', async () => {
    let calls = 0;
    t.queue.register('charge', async () => {
      if (++calls === 1) throw retryAfter(HOUR, new Error('rate limited'));
    });
    const id = await t.queue.enqueue('charge', null);
    await t.clock.advance(HOUR - 1);
    assert.equal(calls, 1);
    await t.clock.advance(1);
    assert.equal((await t.queue.getJob(id))?.status, 'completed');
    assert.deepEqual(t.runsOf('charge').map((r) => r.outcome), ['retrying', 'completed']);
  });
});
