/**
 * `dashboard()`'s options: without `authorize` and without `insecure: true` it throws, and so
 * does any malformed option, each a typed InvalidArgumentError; a valid base path is served
 * with and without its trailing slash.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { dashboard, type DashboardOptions } from '../../src/dashboard/index.js';
import { InvalidArgumentError } from '../../src/errors.js';
import { Queue } from '../../src/queue/queue.js';
import { SqliteStorage } from '../../src/storage/sqlite/sqlite-storage.js';

describe('dashboard() options', () => {
  let storage: SqliteStorage;
  let queue: Queue;
  before(async () => {
    storage = new SqliteStorage(':memory:');
    await storage.migrate();
    queue = new Queue(storage);
  });
  after(() => storage.close());

  it('throws without authorize unless insecure: true', () => {
    assert.throws(() => dashboard(queue, {}), (e: unknown) => e instanceof InvalidArgumentError && e.code === 'INVALID_ARGUMENT' && /authorize/.test(e.message));
    assert.throws(() => dashboard(queue, undefined as unknown as DashboardOptions), InvalidArgumentError);
    assert.throws(() => dashboard(queue, { insecure: false }), InvalidArgumentError);
    dashboard(queue, { insecure: true }).close();
    dashboard(queue, { authorize: () => true }).close();
  });

  it('rejects each malformed option with a typed error', () => {
    const bad: unknown[] = [
      { insecure: true, basePath: 'jobs' },
      { insecure: true, basePath: '/jobs/../x' },
      { insecure: true, basePath: '/jobs?x' },
      { insecure: true, basePath: 7 },
      { insecure: true, readOnly: 'yes' },
      { insecure: 'true' },
      { authorize: 'admin' },
      { insecure: true, redact: 'all' },
      { insecure: true, redact: { arguments: true } },
      { insecure: true, pollInterval: 10 },
      { insecure: true, pollInterval: 1.5e3 + 0.5 },
      { insecure: true, trustedOrigins: 'https://a.example' },
      { insecure: true, trustedOrigins: ['https://a.example/path'] },
      { insecure: true, colour: 'blue' },
      [],
    ];
    for (const options of bad) {
      assert.throws(() => dashboard(queue, options as DashboardOptions), InvalidArgumentError, JSON.stringify(options));
    }
  });

  it('serves under a base path, redirecting the bare path to the one with a slash', async () => {
    for (const basePath of ['/jobs', '/admin/jobs/', '/']) {
      const ui = dashboard(queue, { insecure: true, basePath });
      const base = basePath === '/' ? '' : basePath.replace(/\/$/, '');
      assert.equal(ui.basePath, base);
      const page = await ui.fetch(new Request(`http://x${base}/`));
      assert.equal(page.status, 200);
      assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
      assert.match(page.headers.get('content-security-policy') ?? '', /script-src 'self'/);
      if (base !== '') {
        const bare = await ui.fetch(new Request(`http://x${base}`));
        assert.equal(bare.status, 308);
        assert.equal(bare.headers.get('location'), `${base}/`);
        const outside = await ui.fetch(new Request('http://x/elsewhere/api/jobs'));
        assert.equal(outside.status, 404);
      }
      const api = await ui.fetch(new Request(`http://x${base}/api/config`));
      assert.equal(api.status, 200);
      assert.match(api.headers.get('content-type') ?? '', /^application\/json/);
      ui.close();
    }
  });
});
