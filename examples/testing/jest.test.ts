// Testing jobs and workflows with Jest and the test kit's virtual clock. Jest is not a
// dependency of this package: this file is an example for your project, which runs ESM
// TypeScript tests (e.g. ts-jest with `useESM`, and `node --experimental-vm-modules`).
// `describe`, `it`, `expect`, `beforeEach` and `afterEach` are Jest's globals.
import { createTestQueue, type TestQueue } from 'simple-durable-jobs/testing';

const MINUTE = 60_000;

describe('exports', () => {
  let t: TestQueue;
  beforeEach(async () => {
    t = await createTestQueue();
  });
  afterEach(async () => {
    await t.close();
  });

  it('gives up on an export that runs past its 10-minute timeout', async () => {
    t.queue.register('export', async (_args: null, ctx) => {
      // Stands for an hour of work: the run is parked on the virtual clock, so its timeout can fire.
      await t.clock.sleep(60 * MINUTE, { signal: ctx.abortSignal });
    });
    const id = await t.queue.enqueue('export', null, { timeout: 10 * MINUTE, retries: 0 });
    await t.clock.advance(10 * MINUTE);
    const job = await t.queue.getJob(id);
    expect(job?.status).toBe('failed');
    expect(t.runsOf('export')[0]?.endedAt?.toISOString()).toBe('2025-01-01T00:10:00.000Z');
  });

  it('runs a delayed job at its time, not before', async () => {
    const ran: string[] = [];
    t.queue.register('follow-up', async () => void ran.push(t.clock.now().toISOString()));
    await t.queue.enqueue('follow-up', null, { delay: 30 * MINUTE });
    await t.clock.advance(29 * MINUTE);
    expect(ran).toEqual([]);
    await t.clock.advance(MINUTE);
    expect(ran).toEqual(['2025-01-01T00:30:00.000Z']);
  });
});
