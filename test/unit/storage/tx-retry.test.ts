/**
 * `withTxRetry`: the one retry rule for transactions, with a fake transaction and on a real
 * SQLite file where a second connection holds the write lock (`SQLITE_BUSY` is the retryable
 * error there). Waits are injected, so the tests never sleep.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { DEFAULT_TX_RETRY_POLICY, txRetryDelayMs, withTxRetry, type TxRetryPolicy } from '../../../src/storage/shared/tx-retry.js';
import { removeSqliteFiles, tempSqlitePath } from '../../helpers/sqlite-storage.js';

class Conflict extends Error {
  readonly retryable = true;
}

const isConflict = (e: unknown): boolean => e instanceof Conflict;

/** An injected sleep that records the waits and resolves at once. */
function recordingSleep(): { waits: number[]; sleep: (ms: number) => Promise<void> } {
  const waits: number[] = [];
  return { waits, sleep: async (ms) => void waits.push(ms) };
}

describe('txRetryDelayMs', () => {
  it('grows the jitter ceiling exponentially up to the cap, never below the minimum', () => {
    const p = DEFAULT_TX_RETRY_POLICY;
    assert.deepEqual([1, 2, 3, 4, 5, 6, 7].map((n) => txRetryDelayMs(n, p, 0)), [1, 1, 1, 1, 1, 1, 1]);
    const top = [1, 2, 3, 4, 5, 6, 7].map((n) => txRetryDelayMs(n, p, 0.999_999));
    assert.deepEqual(top, [10, 20, 40, 80, 160, 200, 200]);
  });

  it('the default policy is 8 attempts and waits under a second in all', () => {
    assert.equal(DEFAULT_TX_RETRY_POLICY.maxAttempts, 8);
    let worst = 0;
    for (let n = 1; n < DEFAULT_TX_RETRY_POLICY.maxAttempts; n++) worst += txRetryDelayMs(n, DEFAULT_TX_RETRY_POLICY, 0.999_999);
    assert.ok(worst < 1000, `worst case ${worst} ms`);
  });
});

describe('withTxRetry (fake transaction)', () => {
  it('returns the first success without waiting', async () => {
    const { waits, sleep } = recordingSleep();
    let attempts = 0;
    assert.equal(await withTxRetry(async () => ++attempts, { isRetryable: isConflict, sleep }), 1);
    assert.deepEqual(waits, []);
  });

  it('retries retryable failures with the policy waits, then returns the success', async () => {
    const { waits, sleep } = recordingSleep();
    const seen: number[] = [];
    const out = await withTxRetry(
      async (n) => {
        seen.push(n);
        if (n < 4) throw new Conflict();
        return 'done';
      },
      { isRetryable: isConflict, sleep, random: () => 0.5 },
    );
    assert.equal(out, 'done');
    assert.deepEqual(seen, [1, 2, 3, 4]);
    assert.deepEqual(waits, [1, 2, 3].map((n) => txRetryDelayMs(n, DEFAULT_TX_RETRY_POLICY, 0.5)));
  });

  it('rejects at once with an error that is not retryable', async () => {
    const { waits, sleep } = recordingSleep();
    let attempts = 0;
    const boom = new Error('syntax');
    await assert.rejects(
      withTxRetry(
        async () => {
          attempts++;
          throw boom;
        },
        { isRetryable: isConflict, sleep },
      ),
      (e) => e === boom,
    );
    assert.equal(attempts, 1);
    assert.deepEqual(waits, []);
  });

  it('gives up after maxAttempts with the last error; a synchronous throw counts as a failure', async () => {
    const { waits, sleep } = recordingSleep();
    const policy: TxRetryPolicy = { maxAttempts: 3, minDelayMs: 2, baseDelayMs: 1, maxDelayMs: 4 };
    const errors: Conflict[] = [];
    const retries: number[] = [];
    await assert.rejects(
      withTxRetry(
        () => {
          const e = new Conflict(`attempt ${errors.length + 1}`);
          errors.push(e);
          throw e;
        },
        { isRetryable: isConflict, sleep, policy, onRetry: (i) => retries.push(i.attempt) },
      ),
      (e) => e === errors[2],
    );
    assert.equal(errors.length, 3);
    assert.deepEqual(retries, [1, 2]);
    assert.equal(waits.length, 2);
  });
});

describe('withTxRetry (real SQLite: SQLITE_BUSY while another connection writes)', () => {
  const isBusy = (e: unknown): boolean => (e as { code?: unknown } | null)?.code === 'SQLITE_BUSY';

  function openPair() {
    const path = tempSqlitePath('tx-retry');
    const a = new Database(path);
    a.pragma('journal_mode = WAL');
    a.exec('CREATE TABLE t (v TEXT NOT NULL)');
    const b = new Database(path);
    b.pragma('busy_timeout = 0');
    const insertB = b.transaction((v: string) => b.prepare('INSERT INTO t (v) VALUES (?)').run(v));
    const close = (): void => {
      if (a.inTransaction) a.exec('ROLLBACK');
      a.close();
      b.close();
      removeSqliteFiles(path);
    };
    return { a, b, insertB, close };
  }

  it('retries until the other writer commits, then commits once', async () => {
    const { a, insertB, close } = openPair();
    try {
      a.exec('BEGIN IMMEDIATE');
      a.prepare('INSERT INTO t (v) VALUES (?)').run('a');
      const attempts: number[] = [];
      await withTxRetry(
        async (n) => {
          attempts.push(n);
          insertB.immediate('b');
        },
        {
          isRetryable: isBusy,
          sleep: async () => {},
          // The other writer commits after the second busy attempt.
          onRetry: (i) => {
            if (i.attempt === 2) a.exec('COMMIT');
          },
        },
      );
      assert.deepEqual(attempts, [1, 2, 3]);
      assert.deepEqual(a.prepare('SELECT v FROM t ORDER BY rowid').pluck().all(), ['a', 'b']);
    } finally {
      close();
    }
  });

  it('gives up with SQLITE_BUSY after the policy attempts while the lock stays held', async () => {
    const { a, insertB, close } = openPair();
    try {
      a.exec('BEGIN IMMEDIATE');
      let attempts = 0;
      await assert.rejects(
        withTxRetry(
          async () => {
            attempts++;
            insertB.immediate('b');
          },
          { isRetryable: isBusy, sleep: async () => {} },
        ),
        (e) => isBusy(e),
      );
      assert.equal(attempts, DEFAULT_TX_RETRY_POLICY.maxAttempts);
      a.exec('COMMIT');
      assert.deepEqual(a.prepare('SELECT v FROM t').pluck().all(), []);
    } finally {
      close();
    }
  });
});
