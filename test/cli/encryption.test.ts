/**
 * `sdj` on an encrypted deployment (SQLite file): without keys it shows that payloads are
 * encrypted (never the stored ciphertext, never a crash); with `SDJ_ENCRYPTION_KEYS` it shows
 * them decrypted; `--search` says what it cannot do either way; a malformed key is bad usage
 * and is not repeated.
 * @storage sqlite
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { encryptedCodec } from '../../src/core/encrypted-codec.js';
import { Queue } from '../../src/queue/queue.js';
import { every } from '../../src/scheduler/schedules.js';
import { SqliteStorage } from '../../src/storage/sqlite/sqlite-storage.js';
import { removeSqliteFiles, tempSqlitePath } from '../helpers/sqlite-storage.js';
import { assertBuilt, fails, ok, okJson, sdj } from './run-cli.js';

describe('sdj on an encrypted deployment', () => {
  const path = tempSqlitePath('cli-encrypted');
  const key = randomBytes(32);
  const oldKey = randomBytes(32);
  const keys = `${key.toString('base64')},${oldKey.toString('hex')}`;
  let storage: SqliteStorage;
  const ids = { failed: '', flow: '' };

  before(async () => {
    assertBuilt();
    storage = new SqliteStorage(path);
    await storage.migrate();
    const queue = new Queue(storage, { codec: encryptedCodec({ key }) });
    queue.register('charge-card', async () => {
      throw new Error('card 4111-SECRET declined');
    });
    queue.register('lookup', async () => ({ customer: 'SECRET-customer' }));
    queue.register('checkout', async (_a: unknown, ctx) => ctx.call('lookup'));
    ids.failed = await queue.enqueue('charge-card', { card: 'SECRET-card' }, { retries: 0 });
    ids.flow = await queue.enqueue('checkout', { cart: 'SECRET-cart' });
    await queue.schedule('nightly-report', every(24 * 3600_000), { type: 'report', args: { to: 'SECRET-recipient' } });
    const worker = queue.newWorker({ pollInterval: 20, handleSignals: false });
    const running = worker.start();
    await queue.waitForJob(ids.failed, { timeout: 10_000 });
    await queue.waitForJob(ids.flow, { timeout: 10_000 });
    await worker.stop();
    await running;
  });
  after(async () => {
    await storage.close();
    removeSqliteFiles(path);
  });
  const run = (args: string[], env: Record<string, string | undefined> = { SDJ_ENCRYPTION_KEYS: undefined }) => sdj(['--db', path, ...args], { env });

  it('without keys: notes instead of ciphertext, in the list and in a job', async () => {
    const list = ok(await run(['jobs', 'list']), 'jobs list');
    assert.match(list, /\(encrypted: aes-256-gcm; set SDJ_ENCRYPTION_K/);
    assert.doesNotMatch(list, /sdj1:|SECRET/);
    const failed = ok(await run(['jobs', 'show', ids.failed]), 'jobs show (failed)');
    assert.match(failed, /args\s+\(encrypted: aes-256-gcm; set SDJ_ENCRYPTION_KEYS to read\)/);
    assert.match(failed, /last error\s+\(encrypted: aes-256-gcm/);
    assert.doesNotMatch(failed, /sdj1:|SECRET/);
    const flow = ok(await run(['jobs', 'show', ids.flow]), 'jobs show (workflow)');
    assert.match(flow, /result\s+\(encrypted: aes-256-gcm/);
    assert.match(flow, /lookup\s+completed\s+.*\(encrypted: aes-256-gcm/);
    assert.doesNotMatch(flow, /sdj1:|SECRET/);
  });

  it('with SDJ_ENCRYPTION_KEYS (current key first, then previous ones; base64 or hex): payloads decrypted', async () => {
    const env = { SDJ_ENCRYPTION_KEYS: keys };
    const failed = ok(await run(['jobs', 'show', ids.failed], env), 'jobs show with keys');
    assert.match(failed, /args\s+\{"card":"SECRET-card"\}/);
    assert.match(failed, /last error\s+card 4111-SECRET declined/);
    const flow = ok(await run(['jobs', 'show', ids.flow], env), 'workflow with keys');
    assert.match(flow, /SECRET-customer/);
  });

  it('--search: refused with the keys (it cannot look into ciphertext), a note without them', async () => {
    fails(await run(['jobs', 'list', '--search', 'declined'], { SDJ_ENCRYPTION_KEYS: keys }), 1, /search cannot be used: it matches error texts, which the payload codec "aes-256-gcm" stores encrypted/, '--search with keys');
    const out = ok(await run(['jobs', 'list', '--search', 'charge']), '--search without keys');
    assert.match(out, /charge-card/);
    assert.match(out, /note: error texts are encrypted here/);
  });

  it('schedules list without keys or with the wrong key: no crash, no ciphertext', async () => {
    for (const env of [{ SDJ_ENCRYPTION_KEYS: undefined }, { SDJ_ENCRYPTION_KEYS: randomBytes(32).toString('base64') }]) {
      const out = ok(await run(['schedules'], env), 'schedules');
      assert.match(out, /nightly-report/);
      assert.doesNotMatch(out, /sdj1:|SECRET/);
    }
    const withKeys = okJson<Record<string, unknown>[]>(await run(['schedules', '--json'], { SDJ_ENCRYPTION_KEYS: keys }), 'schedules with keys');
    assert.match(JSON.stringify(withKeys), /SECRET-recipient/);
  });

  it('jobs show with a key that opens nothing: says why, never the in-memory marker or ciphertext', async () => {
    const env = { SDJ_ENCRYPTION_KEYS: randomBytes(32).toString('base64') };
    for (const id of [ids.failed, ids.flow]) {
      const out = ok(await run(['jobs', 'show', id], env), 'jobs show with a wrong key');
      assert.match(out, /cannot be decoded/);
      assert.doesNotMatch(out, /sdj1:|SECRET/);
    }
  });

  it('a malformed key is bad usage, and is not repeated', async () => {
    const r = await run(['jobs', 'list'], { SDJ_ENCRYPTION_KEYS: 'not-a-key-TOPSECRET' });
    fails(r, 2, /^sdj: SDJ_ENCRYPTION_KEYS: key 1 is not 32 bytes in base64 or hex/, 'bad key');
    assert.doesNotMatch(r.stderr, /TOPSECRET/);
    fails(await run(['jobs', 'list'], { SDJ_ENCRYPTION_KEYS: `${keys},${key.toString('hex')}` }), 2, /previousKeys\[1\] is the same key as key/, 'a key twice');
  });
});
