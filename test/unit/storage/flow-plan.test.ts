/**
 * The shared limited-claim planner (`planLimitedClaim`) and its rate step (`nextTat`): the
 * catch-up of c = min(T, 1 s) computed without rounding (c = T leaves tat exactly at now, for
 * any fractional T), one start per rate group per claim (the next job reports `retryInMs` 1
 * while the group catches up), the rate state written, and a queue rate and a type rate gating
 * one job together.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { LimitRow } from '../../../src/storage/flow-rows.js';
import { nextTat, planLimitedClaim, queueGroup, typeGroup, type FlowCandidate } from '../../../src/storage/shared/flow-plan.js';

const NOW = 1_790_000_000_123;

const rate = (scope: 'type' | 'queue', name: string, limit: number, period: number): LimitRow => ({
  scope,
  name,
  concurrency: null,
  rateLimit: limit,
  ratePeriodMs: period,
  updatedAt: 0,
});

const jobs = (n: number, fields: Partial<FlowCandidate> = {}): FlowCandidate[] =>
  Array.from({ length: n }, (_, i) => ({ id: `j${String(i).padStart(3, '0')}`, queue: 'q', type: 't', priority: 0, runAt: 0, concurrencyKey: null, rateKey: null, ...fields }));

describe('flow plan', () => {
  it('nextTat: max(tat, now - c) + T with c = min(T, 1 s); exactly now when c = T and the group was idle', () => {
    for (const t of [1, 20, 1_000 / 3, 1_000 / 7, 999.9, 1_000]) {
      assert.equal(nextTat(undefined, NOW, t), NOW, `T = ${t}: no state`);
      assert.equal(nextTat(NOW - 5 * t, NOW, t), NOW, `T = ${t}: state older than now - c`);
    }
    assert.equal(nextTat(NOW - 5, NOW, 20), NOW - 5 + 20, '5 ms late: the turn is kept');
    assert.equal(nextTat(NOW + 7, NOW, 20), NOW + 27);
    assert.equal(nextTat(undefined, NOW, 5_000), NOW + 4_000, 'T = 5 s: c = 1 s');
    assert.equal(nextTat(NOW - 2_500, NOW, 5_000), NOW + 4_000, '2.5 s late: 1 s forgiven');
    assert.equal(nextTat(NOW - 800, NOW, 5_000), NOW - 800 + 5_000, '0.8 s late: all forgiven');
  });

  it('one start per rate group per claim; a group still allowed after it reports retryInMs 1, then the wait', () => {
    const typeLimits = new Map([['t', rate('type', 't', 10, 1_000)]]);
    const base = { want: new Map([['q', 10]]), typeLimits, queueLimits: new Map<string, LimitRow>(), running: new Map<string, number>(), candidates: jobs(3) };
    const idle = planLimitedClaim({ ...base, now: NOW, tat: new Map() });
    assert.deepEqual([idle.picked, idle.retryInMs, idle.saturated], [['j000'], 1, false]);
    assert.deepEqual(idle.tats, [{ scope: 'type', name: 't', key: '', tat: NOW }]);
    const again = planLimitedClaim({ ...base, now: NOW, tat: new Map([[typeGroup('t', null), NOW]]), candidates: jobs(3).slice(1) });
    assert.deepEqual([again.picked, again.retryInMs], [['j001'], 100]);
    assert.deepEqual(again.tats, [{ scope: 'type', name: 't', key: '', tat: NOW + 100 }]);
    const blocked = planLimitedClaim({ ...base, now: NOW + 30, tat: new Map([[typeGroup('t', null), NOW + 100]]) });
    assert.deepEqual([blocked.picked, blocked.retryInMs, blocked.tats], [[], 70, []]);
  });

  it('a queue rate and a type rate gate a job together; each moves once per claim', () => {
    const plan = planLimitedClaim({
      now: NOW,
      want: new Map([['q', 10]]),
      typeLimits: new Map([['t', rate('type', 't', 1, 400)]]),
      queueLimits: new Map([['q', rate('queue', 'q', 1, 1_000)]]),
      running: new Map(),
      tat: new Map([[queueGroup('q'), NOW - 100]]),
      candidates: [...jobs(2), ...jobs(1, { id: 'plain', type: 'other' })],
    });
    assert.deepEqual(plan.picked, ['j000']);
    assert.deepEqual(
      plan.tats.sort((a, b) => a.scope.localeCompare(b.scope)),
      [
        { scope: 'queue', name: 'q', key: '', tat: NOW + 900 },
        { scope: 'type', name: 't', key: '', tat: NOW },
      ],
      'the queue was 100 ms late: kept its turn; the type had no state',
    );
    assert.equal(plan.retryInMs, 900, 'the other jobs wait for the queue, the longer wait of each');
  });
});
