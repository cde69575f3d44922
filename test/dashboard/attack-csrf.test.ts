/**
 * Attacks on who may do what, through the fetch and Node handlers: forged cross-site mutations
 * (every content type, header, origin and Sec-Fetch-Site a page of another site could send),
 * other methods and path spellings of the mutation routes, `authorize` answers that are not
 * `true` (throws, rejections, truthy non-booleans, slow answers), the action each route asks
 * for, the real request (cookies, method, full URL) in both handlers, a read-only dashboard,
 * and DNS rebinding against a dashboard without login (`allowedHosts`, `sdj dashboard`).
 * @storage sqlite
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { request as httpRequest, createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import express from 'express';
import { dashboard, type Dashboard, type DashboardAction, type DashboardAuthorize, type DashboardOptions } from '../../src/dashboard/index.js';
import { Queue } from '../../src/queue/queue.js';
import { SqliteStorage } from '../../src/storage/sqlite/sqlite-storage.js';
import { uniqueName } from '../helpers/factories.js';
import { makeSqliteStorage, removeSqliteFiles, tempSqlitePath } from '../helpers/sqlite-storage.js';
import type { TestStorage } from '../helpers/storages.js';
import { Gate } from '../helpers/workflow-harness.js';
import { ORIGIN } from './requests.js';

const SAME = { 'content-type': 'application/json', 'x-sdj-dashboard': '1', 'sec-fetch-site': 'same-origin', origin: ORIGIN };

/** Sends `method path` to the fetch handler; `headers` entries set to null are left out. */
async function send(ui: Dashboard, method: string, path: string, headers: Record<string, string | null> = {}, body?: string): Promise<{ status: number; code: string | undefined; res: Response }> {
  const h: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) if (v !== null) h[k] = v;
  const res = await ui.fetch(new Request(`${ORIGIN}${path}`, { method, headers: h, ...(body === undefined ? {} : { body }) }));
  const text = await res.text();
  let code: string | undefined;
  try {
    code = (JSON.parse(text) as { error?: { code?: string } }).error?.code;
  } catch {
    code = undefined;
  }
  return { status: res.status, code, res };
}

async function listen(server: Server): Promise<string> {
  if (!server.listening) await once(server, 'listening');
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** A raw HTTP request with a Host header of our choosing (fetch may not set one). */
function rawHttp(url: string, method: string, path: string, headers: Record<string, string>, body?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = httpRequest({ host: u.hostname, port: u.port, method, path, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('dashboard attacks: cross-site requests, authorize, read-only, hosts', () => {
  let ts: TestStorage;
  let queue: Queue;
  const uis: Dashboard[] = [];
  const q = uniqueName('atk');
  const open = (o: DashboardOptions): Dashboard => {
    const ui = dashboard(queue, o);
    uis.push(ui);
    return ui;
  };
  const paused = async (name = q): Promise<boolean> => (await queue.queues()).find((x) => x.name === name)?.paused ?? false;

  before(async () => {
    ts = await makeSqliteStorage('dashboard-attack-csrf');
    queue = new Queue(ts.storage);
    await queue.enqueue('leaf', 1, { queue: q });
  });
  after(async () => {
    for (const ui of uis) ui.close();
    await ts.cleanup();
  });

  it('refuses every forged cross-site mutation before authorize is asked, and changes nothing', async () => {
    const asked: DashboardAction[] = [];
    const ui = open({ authorize: (_r, a) => (asked.push(a), true) });
    const forged: Record<string, string | null>[] = [
      { 'x-sdj-dashboard': null },
      { 'x-sdj-dashboard': '' },
      { 'content-type': 'text/plain' },
      { 'content-type': 'text/plain;charset=UTF-8' },
      { 'content-type': 'application/x-www-form-urlencoded' },
      { 'content-type': 'multipart/form-data; boundary=x' },
      { 'content-type': null },
      { 'content-type': 'application/jsonp' },
      { 'sec-fetch-site': 'cross-site' },
      { 'sec-fetch-site': 'same-site' },
      { 'sec-fetch-site': 'none' },
      { 'sec-fetch-site': null, origin: 'null' },
      { 'sec-fetch-site': null, origin: 'http://dash.test:8080' },
      { 'sec-fetch-site': null, origin: 'https://dash.test' },
      { 'sec-fetch-site': null, origin: 'http://evil.dash.test' },
      { 'sec-fetch-site': null, origin: 'http://dash.test.evil.example' },
    ];
    for (const headers of forged) {
      const r = await send(ui, 'POST', `/api/queues/${q}/pause`, { ...SAME, ...headers }, '{}');
      assert.deepEqual([r.status, r.code], [403, 'CROSS_SITE'], JSON.stringify(headers));
    }
    assert.deepEqual(asked, [], 'authorize is never asked for a forged request');
    assert.equal(await paused(), false);
    // The dashboard's own page (Sec-Fetch-Site or its own Origin), and a non-browser client.
    for (const headers of [{}, { 'sec-fetch-site': null }, { 'sec-fetch-site': null, origin: null }, { 'x-sdj-dashboard': '1, 1' }]) {
      assert.equal((await send(ui, 'POST', `/api/queues/${q}/pause`, { ...SAME, ...headers }, '{}')).status, 200, JSON.stringify(headers));
      assert.equal((await send(ui, 'POST', `/api/queues/${q}/resume`, { ...SAME, ...headers }, '{}')).status, 200);
    }
  });

  it('serves a mutation route to no other method or spelling, and grants no CORS preflight', async () => {
    const asked: [string, DashboardAction][] = [];
    const ui = open({ authorize: (r, a) => (asked.push([r.method, a]), true) });
    for (const method of ['GET', 'HEAD']) {
      const r = await send(ui, method, `/api/queues/${q}/pause`, { ...SAME, 'x-http-method-override': 'POST' });
      assert.equal(r.status, 404, method);
    }
    for (const method of ['PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
      const r = await send(ui, method, `/api/queues/${q}/pause`, {
        ...SAME,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type,x-sdj-dashboard',
      });
      assert.deepEqual([r.status, r.code], [405, 'METHOD_NOT_ALLOWED'], method);
      for (const [k] of r.res.headers) assert.doesNotMatch(k, /^access-control-/, `${method} answers no CORS grant`);
    }
    // A method-override header is not honoured: a POST stays a guarded POST.
    const overridden = await send(ui, 'POST', `/api/queues/${q}/pause`, { ...SAME, 'sec-fetch-site': 'cross-site', 'x-http-method-override': 'GET' }, '{}');
    assert.equal(overridden.code, 'CROSS_SITE');
    assert.equal(await paused(), false);
    // Other spellings of the path either reach the guarded route or no route at all.
    for (const path of [`/api//queues/${q}/pause`, `/API/queues/${q}/pause`, `/api/queues/${q}/PAUSE`, `/api/queues/${q}/pause/x`, `/api/queues/${q}%2Fpause`]) {
      const r = await send(ui, 'POST', path, SAME, '{}');
      assert.equal(r.status, 404, path);
    }
    asked.length = 0;
    const slash = await send(ui, 'POST', `/api/queues/${q}/pause/`, { ...SAME, 'sec-fetch-site': 'cross-site' }, '{}');
    assert.equal(slash.code, 'CROSS_SITE', 'a trailing slash reaches the same guard');
    const dots = await send(ui, 'POST', `/api/jobs/x/../../queues/${q}/pause`, { ...SAME, 'sec-fetch-site': 'cross-site' }, '{}');
    assert.equal(dots.code, 'CROSS_SITE', 'dot segments are resolved before routing, then guarded');
    const encoded = await send(ui, 'POST', `/api/jobs/..%2F..%2Fqueues%2F${q}/retry`, SAME, '{}');
    assert.deepEqual([encoded.status, encoded.code], [404, 'JOB_NOT_FOUND'], 'an encoded slash stays inside the id');
    assert.deepEqual(asked, [['POST', 'retry']]);
    const long = await send(ui, 'POST', `/api/jobs/${'x'.repeat(20_000)}/cancel`, SAME, '{}');
    assert.equal(long.status, 400);
    assert.equal(await paused(), false);
  });

  it('allows only an answer of true: throws, rejections, truthy non-booleans and a promised false all deny', async () => {
    let answer: () => unknown = () => true;
    const ui = open({ authorize: (() => answer()) as unknown as DashboardAuthorize });
    const denials: [string, () => unknown][] = [
      ['throws', () => {
        throw new Error('auth down');
      }],
      ['rejects', () => Promise.reject(new Error('auth down'))],
      ['promised false', () => Promise.resolve(false)],
      ['yes', () => 'yes'],
      ['1', () => 1],
      ['object', () => ({ allowed: false })],
      ['promised "true"', () => Promise.resolve('true')],
      ['undefined', () => undefined],
      ['a thenable of true', () => ({ then: (ok: (v: unknown) => void) => ok(1) })],
    ];
    for (const [label, a] of denials) {
      answer = a;
      const read = await send(ui, 'GET', '/api/config');
      assert.deepEqual([read.status, read.code], [403, 'FORBIDDEN'], `${label} (read)`);
      const write = await send(ui, 'POST', `/api/queues/${q}/pause`, SAME, '{}');
      assert.deepEqual([write.status, write.code], [403, 'FORBIDDEN'], `${label} (mutation)`);
    }
    assert.equal(await paused(), false);
    answer = () => Promise.resolve(true);
    assert.equal((await send(ui, 'GET', '/api/config')).status, 200);

    // A slow answer holds the request: nothing is done until authorize says yes.
    const gate = new Gate();
    let called!: () => void;
    const asked = new Promise<void>((resolve) => (called = resolve));
    answer = async () => {
      called();
      await gate.promise;
      return true;
    };
    const pending = send(ui, 'POST', `/api/queues/${q}/pause`, SAME, '{}');
    await asked;
    assert.equal(await paused(), false, 'nothing done while authorize thinks');
    gate.open();
    assert.equal((await pending).status, 200);
    assert.equal(await paused(), true);
    await queue.resumeQueue(q);
  });

  it('asks each route for its own action, and every read, page and asset for view', async () => {
    const asked: [string, DashboardAction][] = [];
    const ui = open({ basePath: '/ops', authorize: (r, a) => (asked.push([`${r.method} ${new URL(r.url).pathname}`, a]), true) });
    const id = '00000000-0000-7000-8000-000000000000';
    const mutations: [string, unknown, DashboardAction][] = [
      [`/api/jobs/${id}/retry`, {}, 'retry'],
      [`/api/jobs/${id}/cancel`, {}, 'cancel'],
      [`/api/jobs/${id}/delete`, {}, 'delete'],
      [`/api/jobs/${id}/pause`, {}, 'pause'],
      [`/api/jobs/${id}/resume`, {}, 'resume'],
      [`/api/jobs/${id}/signal`, { name: 'go' }, 'signal'],
      ['/api/bulk/retry', { filter: { status: 'failed', queue: 'nothing-here' } }, 'retry'],
      ['/api/bulk/cancel', { filter: { status: 'pending', queue: 'nothing-here' } }, 'cancel'],
      ['/api/bulk/delete', { filter: { status: 'completed', queue: 'nothing-here' } }, 'delete'],
      [`/api/queues/${q}/pause`, {}, 'pause'],
      [`/api/queues/${q}/resume`, {}, 'resume'],
      ['/api/prune', { olderThan: 10 * 365 * 86_400_000 }, 'prune'],
    ];
    for (const [path, body, action] of mutations) {
      asked.length = 0;
      const r = await send(ui, 'POST', `/ops${path}`, SAME, JSON.stringify(body));
      assert.ok(r.status === 200 || r.status === 404, `${path}: ${r.status} ${r.code}`);
      assert.deepEqual(asked, [[`POST /ops${path}`, action]]);
    }
    const reads = ['/ops', '/ops/', '/ops/assets/app.js', '/ops/assets/app.css', '/ops/assets/missing.js', '/ops/api/config', '/ops/api/overview', '/ops/api/jobs', `/ops/api/jobs/${id}`, '/ops/api/queues', '/ops/api/workers', '/ops/api/schedules', '/ops/api/nothing'];
    for (const path of reads) {
      for (const method of ['GET', 'HEAD']) {
        asked.length = 0;
        await send(ui, method, path);
        assert.deepEqual(asked, [[`${method} ${path}`, 'view']], `${method} ${path}`);
      }
    }
    asked.length = 0;
    const live = await ui.fetch(new Request(`${ORIGIN}/ops/api/live`));
    await live.body?.cancel();
    assert.deepEqual(asked, [['GET /ops/api/live', 'view']]);
  });

  it('hands authorize the real request in the Node handler: method, full URL under the mount, cookies and headers', async () => {
    const seen: { method: string; url: string; cookie: string | null; auth: string | null; action: DashboardAction }[] = [];
    const ui = open({
      basePath: '/jobs',
      authorize: (r, action) => {
        seen.push({ method: r.method, url: r.url, cookie: r.headers.get('cookie'), auth: r.headers.get('authorization'), action });
        return r.headers.get('cookie') === 'session=admin';
      },
    });
    const app = express();
    app.use(express.json());
    app.use('/jobs', ui.node);
    const servers = [createServer(ui.node).listen(0, '127.0.0.1'), app.listen(0, '127.0.0.1')];
    try {
      for (const server of servers) {
        const url = await listen(server);
        seen.length = 0;
        const denied = await fetch(`${url}/jobs/api/jobs?queue=${q}`, { headers: { cookie: 'session=guest', authorization: 'Bearer x' } });
        assert.equal(denied.status, 403);
        const ok = await fetch(`${url}/jobs/api/queues/${q}/pause`, { method: 'POST', headers: { ...SAME, origin: url, cookie: 'session=admin' }, body: '{}' });
        assert.equal(ok.status, 200, await ok.clone().text());
        assert.deepEqual(seen, [
          { method: 'GET', url: `${url}/jobs/api/jobs?queue=${q}`, cookie: 'session=guest', auth: 'Bearer x', action: 'view' },
          { method: 'POST', url: `${url}/jobs/api/queues/${q}/pause`, cookie: 'session=admin', auth: null, action: 'pause' },
        ]);
        assert.equal(await paused(), true);
        await queue.resumeQueue(q);
      }
    } finally {
      for (const s of servers) await new Promise((r) => s.close(r));
    }
  });

  it('lets authorize read a mutation body without taking it from the action', async () => {
    const bodies: string[] = [];
    const ui = open({
      authorize: async (r, action) => {
        if (action !== 'signal') return action === 'view';
        bodies.push(await r.text());
        return true;
      },
    });
    const waiting = await queue.enqueue('leaf', 2, { queue: `${q}_held`, delay: 3_600_000 });
    const body = JSON.stringify({ name: 'approve', payload: { by: 'alice' } });
    const r = await send(ui, 'POST', `/api/jobs/${waiting}/signal`, SAME, body);
    assert.equal(r.status, 200, r.code);
    assert.deepEqual(bodies, [body]);
    assert.deepEqual((await queue.getSignals(waiting)).map((x) => [x.name, x.payload]), [['approve', { by: 'alice' }]]);
    await queue.cancelJob(waiting);
  });

  it('read-only: refuses every mutation route with READ_ONLY before authorize, and says so in api/config', async () => {
    const asked: DashboardAction[] = [];
    const ui = open({ readOnly: true, authorize: (_r, a) => (asked.push(a), true) });
    const id = (await queue.listJobs({ queue: q })).jobs[0]!.id;
    const routes: [string, unknown][] = [
      [`/api/jobs/${id}/retry`, {}],
      [`/api/jobs/${id}/cancel`, {}],
      [`/api/jobs/${id}/delete`, {}],
      [`/api/jobs/${id}/pause`, {}],
      [`/api/jobs/${id}/resume`, {}],
      [`/api/jobs/${id}/signal`, { name: 'go' }],
      ['/api/bulk/retry', { filter: { status: 'pending' } }],
      ['/api/bulk/cancel', { filter: { status: 'pending' } }],
      ['/api/bulk/delete', { filter: { status: 'pending' } }],
      [`/api/queues/${q}/pause`, {}],
      [`/api/queues/${q}/resume`, {}],
      ['/api/prune', { olderThan: 0 }],
    ];
    for (const [path, body] of routes) {
      const r = await send(ui, 'POST', path, SAME, JSON.stringify(body));
      assert.deepEqual([r.status, r.code], [403, 'READ_ONLY'], path);
    }
    assert.deepEqual(asked, []);
    assert.equal((await queue.getJob(id))?.status, 'pending');
    assert.equal(await paused(), false);
    const config = await ui.fetch(new Request(`${ORIGIN}/api/config`));
    assert.equal(((await config.json()) as { readOnly: boolean }).readOnly, true);
  });

  it('allowedHosts: refuses a request for another host name (DNS rebinding) before authorize, reads included', async () => {
    const asked: DashboardAction[] = [];
    const ui = open({ allowedHosts: ['localhost', '.localhost', '127.0.0.1', '[::1]'], authorize: (_r, a) => (asked.push(a), true) });
    const at = (host: string, method: string, path: string, headers: Record<string, string> = {}): Promise<Response> =>
      ui.fetch(new Request(`http://${host}${path}`, { method, headers, ...(method === 'POST' ? { body: '{}' } : {}) }));
    for (const host of ['rebind.evil.example:4000', 'localhost.evil.example', '127.0.0.1.nip.io:4000', 'evil.example']) {
      for (const path of ['/', '/api/jobs', '/assets/app.js']) {
        const r = await at(host, 'GET', path);
        assert.equal(r.status, 403, `${host}${path}`);
        assert.equal(((await r.json()) as { error: { code: string } }).error.code, 'HOST_NOT_ALLOWED');
      }
      const w = await at(host, 'POST', `/api/queues/${q}/pause`, { ...SAME, origin: `http://${host}` });
      assert.equal(w.status, 403);
    }
    assert.deepEqual(asked, []);
    assert.equal(await paused(), false);
    for (const host of ['localhost:4000', 'LOCALHOST', 'app.localhost:4000', '127.0.0.1:4000', '[::1]:4000']) {
      assert.equal((await at(host, 'GET', '/api/config')).status, 200, host);
    }
    for (const bad of [['*'], ['http://localhost'], ['localhost:4000'], [''], [42], 'localhost']) {
      assert.throws(() => dashboard(queue, { insecure: true, allowedHosts: bad as string[] }), { code: 'INVALID_ARGUMENT' }, JSON.stringify(bad));
    }
  });

  it('sdj dashboard on 127.0.0.1 answers only loopback host names (no DNS rebinding into a login-less dashboard)', async () => {
    const path = tempSqlitePath('attack-cli');
    const storage = new SqliteStorage(path);
    await storage.migrate();
    await new Queue(storage).enqueue('report', { secret: 'rebind-me' }, { queue: 'cli' });
    await storage.close();
    const main = new URL('../../src/cli/main.ts', import.meta.url).pathname;
    const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', main, '--db', path, 'dashboard', '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      let out = '';
      const url = await new Promise<string>((resolve, reject) => {
        child.stdout!.setEncoding('utf8').on('data', (d: string) => {
          out += d;
          const m = /Dashboard: (http:\/\/\S+?)\/?\s/.exec(out);
          if (m) resolve(m[1]!);
        });
        child.once('exit', (code) => reject(new Error(`sdj exited (${code})`)));
      });
      const port = new URL(url).port;
      const rebound = await rawHttp(url, 'GET', '/api/jobs', { host: `rebind.evil.example:${port}` });
      assert.equal(rebound.status, 403);
      assert.doesNotMatch(rebound.body, /rebind-me/);
      const forged = await rawHttp(url, 'POST', '/api/queues/cli/pause', { ...SAME, host: `rebind.evil.example:${port}`, origin: `http://rebind.evil.example:${port}` }, '{}');
      assert.equal(forged.status, 403);
      for (const host of [`127.0.0.1:${port}`, `localhost:${port}`]) {
        const own = await rawHttp(url, 'GET', '/api/jobs', { host });
        assert.equal(own.status, 200, host);
        assert.match(own.body, /rebind-me/);
      }
    } finally {
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
      removeSqliteFiles(path);
    }
  });
});
