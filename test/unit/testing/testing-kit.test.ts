/** The users' testing kit: requireEnqueued and runJobOnce on a real SQLite file. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Queue } from '../../../src/queue/queue.js';
import { requireEnqueued, runJobOnce } from '../../../src/testing/index.js';
import { makeSqliteStorage } from '../../helpers/sqlite-storage.js';
import type { TestStorage } from '../../helpers/storages.js';

describe('testing kit', () => {
  let ts: TestStorage;
  let queue: Queue;
  before(async () => {
    ts = await makeSqliteStorage('testing-kit');
    queue = new Queue(ts.storage);
  });
  after(() => ts.cleanup());

  it('requireEnqueued finds a pending job by type and args, and explains a miss', async () => {
    await queue.enqueue('send-email', { to: 'a@example.com' });
    const job = await requireEnqueued<{ to: string }>(queue, 'send-email', { args: { to: 'a@example.com' } });
    assert.equal(job.args.to, 'a@example.com');
    await assert.rejects(requireEnqueued(queue, 'send-email', { args: { to: 'b@example.com' } }), /found 1: \{"to":"a@example.com"\}/);
    await assert.rejects(requireEnqueued(queue, 'nothing'), /found 0/);
  });

  it('runJobOnce runs exactly one attempt', async () => {
    let calls = 0;
    queue.register('once', async (n: number) => {
      calls++;
      if (n < 0) throw new Error('negative');
      return n * 2;
    });
    const ok = await runJobOnce<number, number>(queue, await queue.enqueue('once', 21, { queue: 'kit' }));
    assert.equal(ok.status, 'completed');
    assert.equal(ok.result, 42);
    const bad = await runJobOnce(queue, await queue.enqueue('once', -1, { queue: 'kit', retries: 3 }));
    assert.equal(bad.status, 'pending', 'a failed attempt with retries left goes back to pending');
    assert.equal(bad.attempt, 1);
    assert.equal(bad.lastError, 'negative');
    assert.equal(calls, 2);
  });
});
