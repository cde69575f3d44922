/**
 * A payload within the queue's `maxPayloadBytes` but larger than what the database takes in
 * one statement (MySQL/MariaDB: `max_allowed_packet`, 16 MiB by default on MariaDB), on every
 * driver: it is either stored and read back intact, or refused with `PayloadTooLargeError`
 * naming the limit — never a bare `StorageError` — and the storage stays usable: the calls
 * after it succeed (the server drops the connection that sent an oversize packet; the pool
 * must not hand that connection to the next caller).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PayloadTooLargeError } from '../../src/errors.js';
import { Queue } from '../../src/queue/queue.js';
import { storageMatrix, type TestStorage } from '../helpers/storages.js';

/** Above MariaDB's default `max_allowed_packet` (16 MiB), below the queue's cap. */
const BIG = 17 * 1024 * 1024;
const CAP = 32 * 1024 * 1024;

for (const [name, make] of storageMatrix()) {
  describe(`payloads beyond what the database takes (${name})`, () => {
    let ts: TestStorage;
    before(async () => {
      ts = await make(`payload-beyond-${name}`);
    });
    after(() => ts.cleanup());

    it('a 17 MiB argument under a 32 MiB cap is stored intact or refused with PayloadTooLargeError; the next calls succeed', async () => {
      const queue = new Queue(ts.storage, { maxPayloadBytes: CAP });
      const big = 'x'.repeat(BIG - 2);
      for (let round = 0; round < 3; round++) {
        let id: string | undefined;
        try {
          id = await queue.enqueue('big-args', big, { queue: 'beyond' });
        } catch (err) {
          assert.ok(err instanceof PayloadTooLargeError, `round ${round}: refused with ${(err as Error)?.constructor?.name}: ${(err as Error)?.message}`);
        }
        if (id !== undefined) assert.equal((await queue.getJob<string>(id))?.args.length, big.length, 'stored intact');
        // The next calls, on whatever pooled connection: none fails.
        for (let i = 0; i < 3; i++) {
          const small = await queue.enqueue('small', { i }, { queue: 'beyond' });
          assert.equal((await queue.getJob(small))?.status, 'pending');
        }
      }
    });
  });
}
