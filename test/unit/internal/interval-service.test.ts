/**
 * `IntervalService` keeps its one lifecycle at the edges: an interval at the timer limit
 * (2^31 − 1 ms) never fires early, however the jitter falls (a timer asked to wait longer
 * fires after 1 ms); stop before start and a double stop are no-ops; a restart while a run is
 * still in flight leaves one timer, not two.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { IntervalService } from '../../../src/internal/service.js';
import { Gate } from '../../helpers/workflow-harness.js';

const TIMER_MAX = 2 ** 31 - 1;
const fail = (err: unknown): void => assert.fail(String(err));

describe('IntervalService', () => {
  it('an interval at the timer limit does not fire early, whatever the jitter', async () => {
    let runs = 0;
    // Each service draws its own jitter: without the clamp about half of them would overflow.
    const services = Array.from({ length: 20 }, () => new IntervalService(TIMER_MAX, async () => void runs++, fail));
    for (const s of services) s.start();
    await delay(100); // an overflowing timer fires after 1 ms; absence is watched over a window
    for (const s of services) await s.stop();
    assert.equal(runs, 0);
  });

  it('stop before start and a double stop are no-ops; it ticks again after a restart', async () => {
    let runs = 0;
    const s = new IntervalService(10, async () => void runs++, fail);
    await s.stop();
    await s.stop();
    s.start();
    s.start();
    const ticked = async (n: number): Promise<void> => {
      const until = runs + n;
      while (runs < until) await delay(5);
    };
    await ticked(2);
    await s.stop();
    await s.stop();
    const stoppedAt = runs;
    await delay(60);
    assert.equal(runs, stoppedAt, 'no tick after stop');
    s.start();
    await ticked(2);
    await s.stop();
  });

  it('a restart while a run is in flight leaves one timer', async () => {
    const gate = new Gate();
    let runs = 0;
    let first = true;
    const s = new IntervalService(
      20,
      async () => {
        runs++;
        if (first) {
          first = false;
          await gate.promise;
        }
      },
      fail,
    );
    s.start();
    while (runs === 0) await delay(5);
    const stopping = s.stop(); // waits for the gated run
    s.start(); // restarted while that run is still in flight
    gate.open();
    await stopping;
    runs = 0;
    await delay(500);
    await s.stop();
    // One timer ticks at most every 18 ms (20 ms − 10% jitter): at most ~28 runs in 500 ms;
    // two timers would run about twice as often.
    assert.ok(runs <= 30, `${runs} runs in 500 ms: more than one timer is ticking`);
    assert.ok(runs >= 1, 'it still ticks');
  });
});
