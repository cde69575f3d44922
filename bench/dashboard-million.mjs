#!/usr/bin/env node
// Dashboard requests against a database holding about a million jobs.
//
//   npm run build                       # the benchmark loads ../dist
//   node bench/dashboard-million.mjs --driver sqlite|postgres|mysql [--jobs 1000000] [--pending N] [--runs 5]
//
// It builds a fresh database (PostgreSQL: a database of its own on BENCH_PG_URL's server;
// MySQL/MariaDB: a database of its own on BENCH_MYSQL_URL's server, default
// mysql://root@127.0.0.1:3306/test; SQLite: a temp file) holding what a busy deployment keeps:
// - the bulk of the finished jobs, written straight in with SQL by bench/lib/history.mjs's
//   fixture in its `mix` form (mostly completed; 4 % failed with varied error texts; 0.5 %
//   cancelled; five queues, twenty types and a rare one). Enqueueing and running a million jobs
//   through the API would take far longer than the measurement. Only the bench fixtures write
//   SQL outside src/storage; the library never does (see bench/README.md);
// - through the public API: a pending backlog of `--pending` jobs (default 20,000) in a paused
//   queue (`backlog`, ten of them paused one by one), workflows run by a real worker (order
//   flows with three checkpointed steps, one that failed, a fan-out parent with 1,000
//   children), jobs waiting for a signal, five schedules, and one idle worker that stays
//   registered while the requests are timed.
// Then it times every read the dashboard's pages make, through
// `dashboard(queue, { insecure: true }).fetch(new Request(...))`: config, overview, queues,
// workers, schedules, job listings (no filter, each status, a queue, a common and a rare type, a
// search for a rare and a common text, pages 2 and 50 through cursors, oldest first), a job's page
// (a finished job, a workflow, the fan-out parent with its 1,000 children) and one read of the live
// feed (a fresh dashboard's first snapshot). Each request runs `--runs` times (default 5); the
// table gives the median and the max, and marks the slowest request. The jobs page reads a scan
// budget of jobs per request (`LIST_SCAN_LIMIT`): a filter few jobs match answers a short page
// ("looked through 20,000"), and the run ends with the whole walk through such a listing, page
// after page, as an operator following "Continue" makes it.
//
// It drops its database (or deletes its file) at the end, on failure and on Ctrl-C (`--keep`
// leaves it, for a look at the plans, and prints where it is: drop it by hand). Run one
// driver at a time and nothing else heavy beside it: the figures are wall-clock times.
import { existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { MIX, seedHistoryMysql, seedHistoryPostgres, seedHistorySqlite } from './lib/history.mjs';
import { createDatabase, dropDatabase, urlFor } from './lib/pg.mjs';
import { REPO_DIR } from './lib/util.mjs';

const USAGE = 'usage: node bench/dashboard-million.mjs --driver sqlite|postgres|mysql [--jobs 1000000] [--pending N] [--runs 5] [--keep]';
const { values: opts } = parseArgs({
  options: {
    driver: { type: 'string' },
    jobs: { type: 'string', default: '1000000' },
    pending: { type: 'string', default: '20000' },
    runs: { type: 'string', default: '5' },
    keep: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h' },
  },
});
if (opts.help) {
  console.log(USAGE);
  process.exit(0);
}
const driver = opts.driver;
const total = Number(opts.jobs);
const pendingCount = Number(opts.pending);
const runs = Number(opts.runs);
if (!['sqlite', 'postgres', 'mysql'].includes(driver ?? '') || !(total >= 10_000) || !(pendingCount >= 0) || !(runs >= 1)) {
  console.error(USAGE);
  process.exit(2);
}

const dist = path.join(REPO_DIR, 'dist');
if (!existsSync(path.join(dist, 'dashboard', 'index.js'))) {
  console.error('dist/ is missing: run `npm run build` first');
  process.exit(2);
}
const lib = await import(path.join(dist, 'index.js'));
const { dashboard } = await import(path.join(dist, 'dashboard', 'index.js'));
const { Queue, SqliteStorage, PostgresStorage, MysqlStorage, sub, every, daily, weekly, cron } = lib;

const MYSQL_BASE_URL = process.env.BENCH_MYSQL_URL || 'mysql://root@127.0.0.1:3306/test';
const ORIGIN = 'http://127.0.0.1';
const FAN_OUT = 1_000;
const ORDER_FLOWS = 20;
const WAITING = 5;
const name = `sdj_dash_${process.pid}`;
const log = (msg) => process.stderr.write(`[dashboard-million] ${msg}\n`);

/** The database this run made and how to remove it. */
const db = { url: '', file: '', drop: async () => {} };

async function makeDatabase() {
  if (driver === 'sqlite') {
    db.file = path.join(tmpdir(), `${name}.db`);
    db.drop = async () => {
      for (const suffix of ['', '-wal', '-shm']) rmSync(db.file + suffix, { force: true });
    };
    return new SqliteStorage(db.file);
  }
  if (driver === 'postgres') {
    await createDatabase(name);
    db.url = urlFor(name);
    db.drop = () => dropDatabase(name);
    return new PostgresStorage(db.url);
  }
  const mysql = createRequire(path.join(REPO_DIR, 'package.json'))('mysql2/promise');
  const admin = async (sql) => {
    const c = await mysql.createConnection(MYSQL_BASE_URL);
    try {
      await c.query(sql);
    } finally {
      await c.end();
    }
  };
  await admin(`DROP DATABASE IF EXISTS \`${name}\``);
  await admin(`CREATE DATABASE \`${name}\``);
  const u = new URL(MYSQL_BASE_URL);
  u.pathname = `/${name}`;
  db.url = u.toString();
  db.drop = () => admin(`DROP DATABASE IF EXISTS \`${name}\``);
  return new MysqlStorage(db.url);
}

/** The handlers of the workflows the API part runs. */
function register(queue) {
  queue.register('wf-validate', async (o) => ({ ...o, valid: true }));
  queue.register('wf-charge', async (o) => {
    if (o.id === 'ORD-13') throw new Error('card declined: insufficient funds (do not retry)');
    return `receipt-${o.id}`;
  });
  queue.register('wf-ship', async (receipt) => ({ shipped: receipt }));
  queue.register('order-flow', async (o, ctx) => {
    const valid = await ctx.call('wf-validate', o);
    const receipt = await ctx.call('wf-charge', valid);
    return ctx.call('wf-ship', receipt);
  });
  queue.register('fan-child', async (i) => ({ i, square: i * i }));
  queue.register('fan-parent', async (n, ctx) => {
    const results = await ctx.fanOut(
      Array.from({ length: n }, (_, i) => sub('fan-child', i)),
      { queue: 'flows', strategy: 'collect-all' },
    );
    return { children: results.length };
  });
  queue.register('approval-flow', async (o, ctx) => {
    await ctx.call('wf-validate', o);
    return ctx.waitForSignal('approval');
  });
}

/** Runs the workflows with a real worker; returns the ids the requests look at. */
async function runWorkflows(queue) {
  const worker = queue.newWorker({ queues: { flows: { concurrency: 50 } }, handleSignals: false });
  const started = worker.start();
  const orders = [];
  for (let i = 0; i < ORDER_FLOWS; i++) orders.push(await queue.enqueue('order-flow', { id: `ORD-${i}`, total: 10 + i }, { queue: 'flows', retries: 0 }));
  const fanParent = await queue.enqueue('fan-parent', FAN_OUT, { queue: 'flows' });
  const approvals = [];
  for (let i = 0; i < WAITING; i++) approvals.push(await queue.enqueue('approval-flow', { id: `APR-${i}` }, { queue: 'flows' }));
  for (const id of [...orders, fanParent]) await queue.waitForJob(id, { timeout: 300_000 });
  for (const id of approvals) {
    for (let tries = 0; (await queue.getJob(id))?.status !== 'waiting'; tries++) {
      if (tries > 600) throw new Error(`approval-flow ${id} never started waiting`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  await worker.stop();
  await started;
  return { workflow: orders[0], fanParent };
}

/** The pending backlog in a paused queue (ten of its jobs paused one by one). */
async function enqueueBacklog(queue) {
  await queue.pauseQueue('backlog');
  const ids = [];
  for (let from = 0; from < pendingCount; from += 1_000) {
    const n = Math.min(1_000, pendingCount - from);
    const items = Array.from({ length: n }, (_, i) => ({ type: 'send-email', args: { to: `user${from + i}@example.com`, template: 'digest' }, options: { queue: 'backlog' } }));
    ids.push(...(await queue.enqueueBatch(items)));
  }
  for (const id of ids.slice(0, 10)) await queue.pauseJob(id);
}

async function schedules(queue) {
  await queue.schedule('health-check', every(60_000));
  await queue.schedule('daily-report', daily(9, 0), { type: 'render-report', queue: 'reports' });
  await queue.schedule('weekly-backup', weekly('sunday', 2, 0));
  await queue.schedule('hourly-sync', cron('0 * * * *'), { type: 'sync-account' });
  await queue.schedule('eu-invoices', cron('0 9 * * 1-5', { timezone: 'Europe/Berlin' }), { type: 'compute-invoice', args: { region: 'eu' } });
}

/** Refreshes the planner statistics after the API writes (what autovacuum / autoanalyze would have done by then). */
async function analyze() {
  if (driver === 'postgres') {
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    try {
      await c.query('vacuum (analyze)');
    } finally {
      await c.end();
    }
  } else if (driver === 'mysql') {
    const mysql = createRequire(path.join(REPO_DIR, 'package.json'))('mysql2/promise');
    const c = await mysql.createConnection(db.url);
    try {
      await c.query('ANALYZE TABLE sdj_jobs');
    } finally {
      await c.end();
    }
  }
  // SQLite: nothing; the library never runs ANALYZE, and a deployment's file has no statistics.
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** One GET, body read; ms and the parsed body. */
async function get(ui, p) {
  const t0 = performance.now();
  const res = await ui.fetch(new Request(ORIGIN + p));
  const text = await res.text();
  const ms = performance.now() - t0;
  if (res.status !== 200) throw new Error(`GET ${p}: ${res.status} ${text.slice(0, 300)}`);
  return { ms, body: JSON.parse(text) };
}

/** The first live snapshot of a fresh dashboard (its feed's first read of counts and queues). */
async function liveOnce(queue) {
  const ui = dashboard(queue, { insecure: true });
  const ac = new AbortController();
  try {
    const t0 = performance.now();
    const res = await ui.fetch(new Request(`${ORIGIN}/api/live`, { signal: ac.signal }));
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let text = '';
    while (!/event: snapshot\ndata: .*\n\n/.test(text)) {
      const { value, done } = await reader.read();
      if (done) throw new Error('live stream ended before a snapshot');
      text += decoder.decode(value, { stream: true });
    }
    const ms = performance.now() - t0;
    ac.abort();
    await reader.cancel().catch(() => {});
    const snap = JSON.parse(/data: (.*)\n/.exec(text)[1]);
    if (snap.error) throw new Error(`live snapshot error: ${snap.error}`);
    return { ms, body: snap };
  } finally {
    ui.close();
  }
}

async function main() {
  const t0 = Date.now();
  const storage = await makeDatabase();
  let idle;
  let idleStarted;
  try {
    await storage.migrate();
    const apiJobs = ORDER_FLOWS * 4 + (FAN_OUT + 1) + WAITING * 2 + pendingCount;
    const history = total - apiJobs;
    if (history < 1) throw new Error(`--jobs ${total} leaves no room for the fixture rows (the API part writes ${apiJobs})`);
    log(`${driver}: writing ${history} finished jobs (fixture) ...`);
    const spanMs = 3 * 24 * 3600 * 1000; // finished over three days: inside the default retention (completed: 7 days)
    if (driver === 'sqlite') seedHistorySqlite(db.file, { count: history, log, mix: true, spanMs });
    else if (driver === 'postgres') await seedHistoryPostgres(db.url, { count: history, log, mix: true, spanMs });
    else await seedHistoryMysql(db.url, { count: history, log, mix: true, spanMs });
    const seeded = Date.now();

    const queue = new Queue(storage);
    register(queue);
    log('workflows, fan-out, signals waits (a worker runs them) ...');
    const ids = await runWorkflows(queue);
    log(`pending backlog of ${pendingCount} in the paused queue "backlog" ...`);
    await enqueueBacklog(queue);
    await schedules(queue);
    await analyze();
    idle = queue.newWorker({ queues: { idle: { concurrency: 1 } }, handleSignals: false, name: 'idle-worker' });
    idleStarted = idle.start();
    const finished = (await queue.listJobs({ status: 'completed', type: 'charge-card', limit: 1 })).jobs[0].id;
    log(`built in ${((Date.now() - t0) / 1000).toFixed(0)} s (fixture ${((seeded - t0) / 1000).toFixed(0)} s); timing requests ...`);

    const ui = dashboard(queue, { insecure: true });
    const cursorAt = async (query, page) => {
      let cursor;
      for (let i = 1; i < page; i++) {
        const { body } = await get(ui, `/api/jobs?${query}&limit=50${cursor ? `&cursor=${cursor}` : ''}`);
        cursor = body.nextCursor;
        if (cursor === undefined) throw new Error(`no page ${i + 1} of ${query}`);
      }
      return cursor;
    };
    const page2 = await cursorAt('', 2);
    const page50 = await cursorAt('', 50);
    const requests = [
      ['config', '/api/config'],
      ['overview', '/api/overview'],
      ['queues', '/api/queues'],
      ['workers', '/api/workers'],
      ['schedules', '/api/schedules'],
      ['jobs', '/api/jobs?limit=50'],
      ...['pending', 'running', 'waiting', 'completed', 'failed', 'cancelled', 'paused'].map((s) => [`jobs status=${s}`, `/api/jobs?status=${s}&limit=50`]),
      ['jobs queue=emails', '/api/jobs?queue=emails&limit=50'],
      ['jobs type=charge-card', '/api/jobs?type=charge-card&limit=50'],
      [`jobs type=${MIX.rareType} (rare)`, `/api/jobs?type=${MIX.rareType}&limit=50`],
      [`jobs search="${MIX.rareError}" (rare)`, `/api/jobs?search=${encodeURIComponent(MIX.rareError)}&limit=50`],
      [`jobs search="${MIX.commonError}" (common)`, `/api/jobs?search=${MIX.commonError}&limit=50`],
      ['jobs page 2', `/api/jobs?limit=50&cursor=${page2}`],
      ['jobs page 50', `/api/jobs?limit=50&cursor=${page50}`],
      ['jobs order=asc', '/api/jobs?order=asc&limit=50'],
      ['job: finished', `/api/jobs/${finished}`],
      ['job: workflow', `/api/jobs/${ids.workflow}`],
      [`job: fan-out parent (${FAN_OUT} children)`, `/api/jobs/${ids.fanParent}`],
      ['live feed: first snapshot', null],
    ];
    const rows = [];
    for (const [label, p] of requests) {
      const times = [];
      let size = '';
      for (let i = 0; i < runs; i++) {
        const { ms, body } = p === null ? await liveOnce(queue) : await get(ui, p);
        times.push(ms);
        size = Array.isArray(body.jobs)
          ? `${body.jobs.length} jobs${body.scanExhausted ? `, looked through ${body.scanned.toLocaleString('en-US')}` : ''}`
          : body.children
            ? `${body.children.jobs.length} children`
            : '';
      }
      rows.push({ label, median: median(times), max: Math.max(...times), size });
      log(`${label}: median ${median(times).toFixed(1)} ms, max ${Math.max(...times).toFixed(1)} ms`);
    }
    // A filter few jobs match comes back a scan budget at a time: the whole walk an operator
    // makes by following "Continue" to the oldest job, request by request.
    const walks = [];
    for (const [label, query] of [
      [`type=${MIX.rareType}`, `type=${MIX.rareType}`],
      [`search="${MIX.rareError}"`, `search=${encodeURIComponent(MIX.rareError)}`],
    ]) {
      let cursor;
      let found = 0;
      const times = [];
      do {
        const { ms, body } = await get(ui, `/api/jobs?${query}&limit=50${cursor ? `&cursor=${cursor}` : ''}`);
        times.push(ms);
        found += body.jobs.length;
        cursor = body.nextCursor;
      } while (cursor !== undefined);
      walks.push({ label, requests: times.length, found, total: times.reduce((a, b) => a + b, 0), max: Math.max(...times) });
      log(`walk ${label}: ${times.length} requests, ${found} jobs`);
    }
    ui.close();
    const overview = (await get(ui, '/api/overview')).body;

    const slowest = rows.reduce((a, b) => (b.median > a.median ? b : a));
    const width = Math.max(...rows.map((r) => r.label.length));
    console.log(`\nDashboard requests, ${driver}, ${total.toLocaleString('en-US')} jobs (${pendingCount.toLocaleString('en-US')} pending in a paused queue), ${runs} runs each`);
    console.log(`counts shown by the overview: ${JSON.stringify(overview.counts ?? overview.stats)}`);
    console.log(`\n| request${' '.repeat(width - 7)} | median ms | max ms | answer |`);
    console.log(`|${'-'.repeat(width + 2)}|----------:|-------:|--------|`);
    for (const r of rows) {
      const mark = r === slowest ? ' **slowest**' : '';
      console.log(`| ${r.label.padEnd(width)} | ${r.median.toFixed(1).padStart(9)} | ${r.max.toFixed(1).padStart(6)} | ${r.size}${mark} |`);
    }
    console.log(`\nslowest: ${slowest.label}, median ${slowest.median.toFixed(1)} ms (max ${slowest.max.toFixed(1)} ms); whole run ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    for (const w of walks) {
      console.log(`every page of ${w.label}: ${w.requests} requests, ${w.found} jobs, ${w.total.toFixed(0)} ms in all, slowest request ${w.max.toFixed(1)} ms`);
    }
  } finally {
    if (idle) {
      await idle.stop().catch(() => {});
      await idleStarted?.catch(() => {});
    }
    await storage.close().catch(() => {});
    if (opts.keep) log(`kept: ${db.file || db.url}`);
    else await db.drop().catch((e) => log(`could not remove ${name}: ${e.message}`));
  }
}

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => {
    log(`${sig}: removing ${name} ...`);
    db.drop().finally(() => process.exit(130));
  });
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
