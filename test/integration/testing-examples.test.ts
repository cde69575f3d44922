/**
 * examples/testing/node-test.test.ts (the node:test example of the users' test kit) passes, run
 * as a user runs it (`node --import tsx --test`), its `simple-durable-jobs` imports loaded from
 * src/ (test/helpers/package-from-src.mjs), so no build is needed. The Vitest and Jest examples
 * beside it need runners this package does not depend on; they are excluded from tsc.
 * @storage sqlite
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';

const ROOT = new URL('../../', import.meta.url).pathname;

describe('test kit examples', () => {
  it('examples/testing/node-test.test.ts passes under node:test', () => {
    // NODE_TEST_CONTEXT would make the child report to this runner instead of printing TAP.
    const env = { ...process.env };
    delete env['NODE_TEST_CONTEXT'];
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--import', './test/helpers/package-from-src.mjs', '--test', '--test-reporter=tap', 'examples/testing/node-test.test.ts'], {
      cwd: ROOT,
      env,
      encoding: 'utf8',
      timeout: 120_000,
    });
    assert.equal(r.status, 0, `the example failed:\n${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /^# pass 3$/m);
    assert.match(r.stdout, /^# fail 0$/m);
  });
});
