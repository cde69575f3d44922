/**
 * The contract texts are part of the storage contract: readers of `last_error` and of a step's
 * `error` match on them, so a change of wording must be deliberate. These assertions pin each
 * text; the conformance suite asserts the same constants against every driver's rows.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as messages from '../../../src/storage/shared/contract-messages.js';

describe('contract messages', () => {
  it('the two lease-expiry texts start alike (readers match /^lease expired/) and tell the outcomes apart', () => {
    assert.equal(messages.LEASE_EXPIRED_RETRY, 'lease expired: the worker stopped heartbeating; the job will run again');
    assert.equal(messages.LEASE_EXPIRED_FAILED, 'lease expired: the worker stopped heartbeating and no retries are left');
    for (const m of [messages.LEASE_EXPIRED_RETRY, messages.LEASE_EXPIRED_FAILED]) assert.match(m, /^lease expired: /);
    assert.notEqual(messages.LEASE_EXPIRED_RETRY, messages.LEASE_EXPIRED_FAILED);
  });

  it('a timed-out signal wait records one text', () => {
    assert.equal(messages.SIGNAL_WAIT_TIMED_OUT, 'signal wait timed out');
  });

  it('invalid-state texts name the operation, the job and its status', () => {
    assert.equal(messages.cannotPauseMessage('j1', 'running'), 'cannot pause job j1: it is running (only a pending job can be paused)');
    assert.equal(messages.cannotResumeMessage('j1', 'pending'), 'cannot resume job j1: it is pending (only a paused job can be resumed)');
    assert.equal(messages.cannotRetryMessage('j1', 'completed'), 'cannot retry job j1: it is completed (only a failed or cancelled job can be retried)');
    assert.equal(messages.cannotSignalMessage('j1', 'failed'), 'cannot signal job j1: it is failed');
    assert.equal(messages.stepAlreadyFinishedMessage('j1', 4), 'step 4 of job j1 is already recorded as finished');
  });

  it('a missing peer package names the storage and the install command', () => {
    assert.equal(messages.missingDriverPackageMessage('MysqlStorage', 'mysql2'), 'MysqlStorage needs the "mysql2" package: npm install mysql2');
  });

  it('every constant text is distinct', () => {
    const texts: unknown[] = Object.values(messages).filter((v) => typeof v === 'string');
    assert.equal(new Set(texts).size, texts.length);
    assert.ok(texts.length >= 4);
  });
});
