// Testing jobs and workflows with Vitest and the test kit's virtual clock (`npx vitest run`).
// Vitest is not a dependency of this package: this file is an example for your project.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { daily } from 'simple-durable-jobs';
import { createTestQueue, type TestQueue } from 'simple-durable-jobs/testing';

const DAY = 24 * 3_600_000;

describe('onboarding', () => {
  let t: TestQueue;
  beforeEach(async () => {
    t = await createTestQueue({ now: new Date('2025-06-02T00:00:00Z') });
  });
  afterEach(async () => {
    await t.close();
  });

  it('sends a tip a week after the welcome mail', async () => {
    const sent: string[] = [];
    t.queue.register('mail', async (kind: string) => void sent.push(`${kind} ${t.clock.now().toISOString()}`));
    t.queue.register('onboarding', async (_args: null, ctx) => {
      await ctx.call('mail', 'welcome');
      await ctx.sleep(7 * DAY);
      await ctx.call('mail', 'tip');
    });
    await t.queue.enqueue('onboarding', null);
    await t.clock.advance(7 * DAY);
    expect(sent).toEqual(['welcome 2025-06-02T00:00:00.000Z', 'tip 2025-06-09T00:00:00.000Z']);
  });

  it('runs the nightly clean-up once a night', async () => {
    t.queue.register('clean-up', async () => {});
    await t.queue.schedule('clean-up', daily(2, 0));
    await t.clock.advance(30 * DAY);
    expect(t.runsOf('clean-up')).toHaveLength(30);
  });
});
