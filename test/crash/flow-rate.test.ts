/**
 * A fleet-wide rate limit across real worker processes: 4 processes × 10 slots with a backlog
 * well beyond the limit, type rate limit 50 per second. @serial: whether the rate is reached
 * depends on claims coming on time, which other test files running beside it would delay.
 *
 * The model (src/storage/flow-rows.ts): GCRA on the database clock with an emission interval
 * T = period / limit = 20 ms that forgives up to c = min(T, 1 s) = 20 ms of lateness, so no
 * window of one period holds more than `limit` + 1 starts, and a run of length D at most
 * 1 + (D + c) / T. What is checked, and the tolerance each check allows:
 * - database clock (`started_at` written by each claim, as the handler sees it in
 *   `ctx.job.startedAt`): every sliding 1-s window holds ≤ 51 starts — exactly the bound;
 * - host clock (the handler's `Date.now()` as it begins): a handler begins some lag d after its
 *   claim; with d within [dmin, dmax] a 1-s host window sees the claims of a (1 s + J) span,
 *   J = dmax − dmin, so ≤ 51 + ceil(J / T) starts (the same bound over a window J longer; J is
 *   measured: both clocks are this machine's clock, and the constant offset cancels);
 * - throughput: the starts in the measured span (from the first start, database clock) are at
 *   most 1 + (span + c) / T, and at least 95 % of limit × seconds — the limit is reached, not
 *   only respected.
 *
 * The children count their `jobClaimLimited` calls and time them (printed, not asserted: the cost
 * of holding the pace).
 *
 * Duration: 30 s on PostgreSQL and 10 s on SQLite and MySQL. It is the same engine code path on
 * every driver (the claim loop's rate timer over `jobClaimLimited`), so one long run measures
 * the steady rate and the shorter ones keep the file under ~90 s per driver.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Queue } from '../../src/queue/queue.js';
import { sharedStorage } from '../helpers/process-storage.js';
import { storageMatrix } from '../helpers/storages.js';
import { claimCounts, killChildren, maxInWindow, records, spawnFlowWorker, stopChildren, waitUntil, type FlowChild } from './fixtures/flow-harness.js';
import { FLOW_TYPE } from './fixtures/flow-types.js';

const RATE = 50;
const PERIOD = 1_000;
/** Emission interval of the limit: the least spacing of two starts (ms). */
const T = PERIOD / RATE;
const PROCESSES = 4;
const SLOTS = 10;
/** Seconds measured per driver (see the module doc). */
const SECONDS: Record<string, number> = { postgres: 30, sqlite: 10, mysql: 10 };
/** Lateness a start may catch up (ms): c = min(T, 1 s). */
const CATCH_UP = Math.min(T, 1_000);
/** Allowed shortfall of the total below limit × seconds. */
const TOTAL_TOLERANCE = 0.05;

for (const [dialect] of storageMatrix()) {
  const seconds = SECONDS[dialect] ?? 10;
  const span = seconds * 1_000;
  const expected = (RATE * span) / PERIOD;
  describe(`fleet-wide rate limit across processes (${dialect})`, () => {
    const all: FlowChild[] = [];
    after(() => killChildren(all));

    it(`${PROCESSES} processes hold ${RATE} starts per second over ${seconds} s, and reach it`, async (t) => {
      const shared = await sharedStorage(dialect);
      const kids: FlowChild[] = [];
      try {
        const queue = new Queue(shared.storage);
        const env = { SDJ_FLOW_MODE: 'rate', SDJ_FLOW_LIMIT: String(RATE), SDJ_FLOW_PERIOD: String(PERIOD), SDJ_CONCURRENCY: String(SLOTS), SDJ_LEASE_MS: '5000', SDJ_COUNT_CLAIMS: '1' };
        for (let p = 0; p < PROCESSES; p++) kids.push(spawnFlowWorker(shared.env, `R${p}`, env));
        all.push(...kids);
        await Promise.all(kids.map((k) => k.waitForLine(/^ready$/)));
        // A backlog the limit cannot drain within the span: the rate, not the supply, sets the pace.
        const backlog = expected + 300;
        for (let i = 0; i < backlog; i += 500) {
          await queue.enqueueBatch(Array.from({ length: Math.min(500, backlog - i) }, () => ({ type: FLOW_TYPE.rate, args: { ms: 0 } })));
        }
        // Run until a start lands past the measured span (database clock), reading only new lines;
        // a backlog gone before that (no limit held the jobs back) ends the wait too, and fails below.
        const seen = kids.map(() => 0);
        let started = 0;
        let first = Infinity;
        let last = -Infinity;
        await waitUntil(
          kids,
          () => {
            kids.forEach((k, i) => {
              for (; seen[i]! < k.lines.length; seen[i]!++) {
                const f = k.lines[seen[i]!]!.split(' ');
                if (f[0] !== 'start') continue;
                started++;
                first = Math.min(first, Number(f[4]));
                last = Math.max(last, Number(f[4]));
              }
            });
            return last >= first + span || started >= backlog;
          },
          { timeout: span + 60_000, every: 100, message: `starts over ${seconds} s` },
        );
        await stopChildren(kids);

        const starts = records(kids).starts;
        assert.ok(starts.every((s) => s.db > 0), 'every handler sees the started_at of its claim');
        assert.ok(starts.every((s) => s.attempt === 1), 'no job ran twice');
        assert.equal(new Set(starts.map((s) => s.id)).size, starts.length, 'no job started twice');
        const db = starts.map((s) => s.db).sort((a, b) => a - b);
        const s0 = db[0]!;
        const inSpan = db.filter((x) => x < s0 + span).length;
        let minGap = Infinity;
        for (let i = 1; i < db.length; i++) minGap = Math.min(minGap, db[i]! - db[i - 1]!);
        const dbWindow = maxInWindow(db, PERIOD);
        const lags = starts.map((s) => s.host - s.db);
        const jitter = Math.max(...lags) - Math.min(...lags);
        const hostAllowed = RATE + 1 + Math.ceil(jitter / T);
        const most = Math.floor(1 + (span + CATCH_UP) / T);
        const hostWindow = maxInWindow(
          starts.map((s) => s.host),
          PERIOD,
        );
        const counts = kids.map(claimCounts);
        const limitedClaims = counts.reduce((n, c) => n + c.limitedClaims, 0);
        const limitedMs = counts.reduce((n, c) => n + c.limitedMs, 0);
        const ordinaryClaims = counts.reduce((n, c) => n + c.claims, 0);
        t.diagnostic(
          `${dialect}: ${starts.length} starts by ${limitedClaims} jobClaimLimited calls (${(limitedMs / Math.max(1, limitedClaims)).toFixed(1)} ms each on average, ` +
            `longest ${Math.max(...counts.map((c) => c.limitedMaxMs))} ms; ${counts.reduce((n, c) => n + c.limitedEmpty, 0)} returned nothing), and ${ordinaryClaims} jobClaim calls`,
        );
        t.diagnostic(
          `${dialect}: ${inSpan} starts in ${seconds} s (expected ${expected}, at most ${most}, at least ${expected * (1 - TOTAL_TOLERANCE)}); ` +
            `database clock: max ${dbWindow.max} per 1-s window, least gap ${minGap} ms (T = ${T} ms), mean gap ${((db[db.length - 1]! - s0) / (db.length - 1)).toFixed(2)} ms; ` +
            `host clock: max ${hostWindow.max} per 1-s window (allowed ${hostAllowed}); claim→handler lag ${Math.min(...lags)}..${Math.max(...lags)} ms; ` +
            `starts per process ${kids.map((k) => `${k.name}=${records([k]).starts.length}`).join(' ')}; ` +
            `limited claims (empty) per process ${counts.map((c, i) => `${kids[i]!.name}=${c.limitedClaims} (${c.limitedEmpty})`).join(' ')}`,
        );
        assert.ok(dbWindow.max <= RATE + 1, `≤ ${RATE + 1} starts in every 1-s window on the database clock; ${dbWindow.max} from ${dbWindow.at}`);
        assert.ok(hostWindow.max <= hostAllowed, `≤ ${hostAllowed} handler starts in every 1-s window on the host clock; ${hostWindow.max} from ${hostWindow.at}`);
        assert.ok(inSpan <= most, `${inSpan} starts in ${seconds} s, at most 1 + (span + c) / T = ${most}`);
        assert.ok(inSpan >= expected * (1 - TOTAL_TOLERANCE), `${inSpan} starts in ${seconds} s, at least ${(1 - TOTAL_TOLERANCE) * 100} % of ${expected}`);
      } finally {
        await killChildren(kids);
        await shared.cleanup();
      }
    });
  });
}
