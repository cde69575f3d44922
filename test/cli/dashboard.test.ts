/**
 * `sdj dashboard` as a user runs it: it refuses an address other machines can reach without
 * --insecure (exit 2, one line), serves the dashboard on 127.0.0.1 and prints its URL, and
 * stops cleanly (exit 0) on SIGINT and SIGTERM.
 * @storage sqlite
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { isLoopback } from '../../src/cli/commands/dashboard.js';
import { Queue } from '../../src/queue/queue.js';
import { SqliteStorage } from '../../src/storage/sqlite/sqlite-storage.js';
import { removeSqliteFiles, tempSqlitePath } from '../helpers/sqlite-storage.js';
import { assertBuilt, CLI, fails, sdj } from './run-cli.js';

/** Starts `sdj ... dashboard --port 0`, resolves with its URL once it printed it. */
async function serveDashboard(args: string[]): Promise<{ url: string; stop: (signal: NodeJS.Signals) => Promise<{ code: number | null; stderr: string }> }> {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no URL printed; stderr: ${stderr}`)), 15_000);
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      const m = /Dashboard: (http:\/\/\S+)/.exec(stdout);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.once('exit', () => reject(new Error(`exited early: ${stderr}`)));
  });
  return {
    url,
    stop: async (signal) => {
      const exited = once(child, 'exit');
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      const [code] = (await exited) as [number | null];
      clearTimeout(timer);
      return { code, stderr };
    },
  };
}

describe('sdj dashboard', () => {
  const path = tempSqlitePath('cli-dashboard');
  before(async () => {
    assertBuilt();
    const storage = new SqliteStorage(path);
    await storage.migrate();
    await new Queue(storage).enqueue('report', { n: 1 }, { queue: 'cli-dash' });
    await storage.close();
  });
  after(() => removeSqliteFiles(path));

  it('knows which hosts are loopback', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]', 'app.localhost']) assert.equal(isLoopback(h), true, h);
    for (const h of ['0.0.0.0', '::', '10.0.0.5', 'example.com', '192.168.1.2']) assert.equal(isLoopback(h), false, h);
  });

  it('refuses a non-loopback host without --insecure', async () => {
    fails(await sdj(['--db', path, 'dashboard', '--host', '0.0.0.0']), 2, /refusing to serve the dashboard.*0\.0\.0\.0.*--insecure/, 'non-loopback');
    fails(await sdj(['--db', path, 'dashboard', '--port', '70000']), 2, /port/, 'bad port');
  });

  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    it(`serves on 127.0.0.1, prints the URL, and stops on ${signal}`, async () => {
      const { url, stop } = await serveDashboard(['--db', path, 'dashboard', '--port', '0']);
      try {
        assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
        const page = await fetch(url);
        assert.equal(page.status, 200);
        assert.match(await page.text(), /assets\/app\.js/);
        const jobs = (await (await fetch(`${url}api/jobs?queue=cli-dash`)).json()) as { jobs: { type: string }[] };
        assert.deepEqual(jobs.jobs.map((j) => j.type), ['report']);
        // A live stream open at the signal must not hold the process.
        const live = await fetch(`${url}api/live`);
        assert.equal(live.status, 200);
      } finally {
        const { code, stderr } = await stop(signal);
        assert.equal(code, 0, stderr);
        assert.equal(stderr, '');
      }
    });
  }
});
