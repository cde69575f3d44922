/**
 * Attacks on the dashboard's robustness, through the fetch and Node handlers: the security
 * headers of every kind of response (pages, assets, JSON, refusals, errors, redirects, the live
 * stream, requests outside the base path), HEAD and aborted live streams that must not leave a
 * stream running, a thousand live pages, bodies too large or too deep, errors that must not
 * leak driver messages, and the Node handler mounted in Express without a path.
 * @storage sqlite
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import express from 'express';
import { dashboard, type Dashboard, type DashboardOptions } from '../../src/dashboard/index.js';
import { Queue } from '../../src/queue/queue.js';
import { uniqueName } from '../helpers/factories.js';
import { FaultyStorage } from '../helpers/faulty-storage.js';
import { makeSqliteStorage } from '../helpers/sqlite-storage.js';
import type { TestStorage } from '../helpers/storages.js';
import { waitFor } from '../helpers/wait-for.js';
import { ORIGIN } from './requests.js';

const SAME = { 'content-type': 'application/json', 'x-sdj-dashboard': '1', 'sec-fetch-site': 'same-origin' };

/** Timers alive in this process: each open live stream holds one (its keepalive). */
const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

async function listen(server: Server): Promise<string> {
  if (!server.listening) await once(server, 'listening');
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('dashboard attacks: headers, streams, bodies, errors, mounting', () => {
  let ts: TestStorage;
  let queue: Queue;
  const uis: Dashboard[] = [];
  const q = uniqueName('rob');
  const open = (o: DashboardOptions): Dashboard => {
    const ui = dashboard(queue, o);
    uis.push(ui);
    return ui;
  };

  before(async () => {
    ts = await makeSqliteStorage('dashboard-attack-robustness');
    queue = new Queue(ts.storage);
    await queue.enqueue('leaf', 1, { queue: q });
  });
  after(async () => {
    for (const ui of uis) ui.close();
    await ts.cleanup();
  });

  it('sends the security headers on every response: pages, assets, JSON, refusals, errors, redirects, streams, outside the base path', async () => {
    const faulty = new FaultyStorage(ts.storage);
    const failing = new Queue(faulty.storage);
    faulty.fail({ method: 'jobList', error: 'connection-reset', times: Infinity });
    const denyAll = dashboard(failing, { basePath: '/ops', authorize: (r) => !new URL(r.url).pathname.includes('denied') });
    uis.push(denyAll);
    const cases: [string, RequestInit, number, RegExp][] = [
      ['/ops', {}, 308, /.*/],
      ['/ops/', {}, 200, /^text\/html/],
      ['/ops/assets/app.js', {}, 200, /^text\/javascript/],
      ['/ops/assets/app.css', {}, 200, /^text\/css/],
      ['/ops/assets/nope.js', {}, 404, /.*/],
      ['/ops/api/config', {}, 200, /^application\/json/],
      ['/ops/api/jobs', {}, 500, /^application\/json/],
      ['/ops/api/jobs/denied', {}, 403, /^application\/json/],
      ['/ops/api/nothing', {}, 404, /^application\/json/],
      ['/elsewhere', {}, 404, /.*/],
      ['/ops/api/prune', { method: 'PUT' }, 405, /^application\/json/],
      ['/ops/api/prune', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x' }, 403, /^application\/json/],
      ['/ops/api/live', {}, 200, /^text\/event-stream/],
    ];
    for (const [path, init, status, type] of cases) {
      const res = await denyAll.fetch(new Request(`${ORIGIN}${path}`, init));
      await res.body?.cancel();
      const h = res.headers;
      assert.equal(res.status, status, path);
      assert.match(h.get('content-type') ?? '', type, path);
      assert.match(h.get('content-security-policy') ?? '', /default-src 'none'.*frame-ancestors 'none'/, `${path}: CSP`);
      assert.doesNotMatch(h.get('content-security-policy') ?? '', /unsafe-inline|unsafe-eval/, path);
      assert.equal(h.get('x-content-type-options'), 'nosniff', `${path}: nosniff`);
      assert.equal(h.get('x-frame-options'), 'DENY', `${path}: X-Frame-Options`);
      assert.equal(h.get('referrer-policy'), 'same-origin', `${path}: Referrer-Policy`);
      assert.equal(h.get('cross-origin-resource-policy'), 'same-origin', `${path}: CORP`);
      assert.equal(h.get('cross-origin-opener-policy'), 'same-origin', `${path}: COOP`);
    }
  });

  it('ends a HEAD of the live stream at once, and every aborted or cancelled stream (a thousand at a time)', async () => {
    const ui = open({ insecure: true, pollInterval: 250 });
    const base = timers();
    const head = await ui.fetch(new Request(`${ORIGIN}/api/live`, { method: 'HEAD' }));
    assert.equal(head.status, 200);
    assert.equal(head.body, null);
    await waitFor(() => timers() === base, { message: `a HEAD left a live stream running (${timers()} timers, ${base} before)` });

    const controllers = Array.from({ length: 1000 }, () => new AbortController());
    const bodies = await Promise.all(controllers.map(async (c) => (await ui.fetch(new Request(`${ORIGIN}/api/live`, { signal: c.signal }))).body!));
    assert.ok(timers() >= base + 1000, 'each stream holds its keepalive');
    for (const c of controllers.slice(0, 500)) c.abort();
    await Promise.all(bodies.slice(500).map((b) => b.cancel()));
    await waitFor(() => timers() === base, { message: `streams left running: ${timers() - base}` });

    // Through the Node handler: clients that go away.
    const server = createServer(ui.node).listen(0, '127.0.0.1');
    try {
      const url = await listen(server);
      const clients = await Promise.all(
        Array.from({ length: 50 }, () => new Promise<ReturnType<typeof httpRequest>>((resolve, reject) => {
          const req = httpRequest(`${url}/api/live`, () => resolve(req));
          req.on('error', reject).end();
        })),
      );
      assert.ok(timers() >= base + 50);
      for (const c of clients) c.destroy();
      await waitFor(() => timers() <= base + 1, { message: `node streams left running: ${timers() - base}` });
      const nodeHead = await fetch(`${url}/api/live`, { method: 'HEAD' });
      assert.equal(nodeHead.status, 200);
      await waitFor(() => timers() <= base + 1, { message: 'a HEAD through the Node handler left a stream running' });
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  it('close() ends every open stream, and a stream opened after it ends at once', async () => {
    const ui = dashboard(queue, { insecure: true, pollInterval: 250 });
    const readers = await Promise.all([0, 1, 2].map(async () => (await ui.fetch(new Request(`${ORIGIN}/api/live`))).body!.getReader()));
    ui.close();
    for (const r of readers) while (!(await r.read()).done);
    const late = (await ui.fetch(new Request(`${ORIGIN}/api/live`))).body!.getReader();
    while (!(await late.read()).done);
    assert.equal((await ui.fetch(new Request(`${ORIGIN}/api/config`))).status, 200, 'other requests are still served');
  });

  it('refuses a body over 1 MiB (413) whether or not it says its length, and a body nested too deep (400); nothing is done', async () => {
    const ui = open({ insecure: true });
    const id = (await queue.listJobs({ queue: q })).jobs[0]!.id;
    const big = JSON.stringify({ name: 'go', payload: 'x'.repeat(2 * 1024 * 1024) });
    const r1 = await ui.fetch(new Request(`${ORIGIN}/api/jobs/${id}/signal`, { method: 'POST', headers: SAME, body: big }));
    assert.equal(r1.status, 413);
    assert.equal(((await r1.json()) as { error: { code: string } }).error.code, 'PAYLOAD_TOO_LARGE');
    // A chunked body (no content-length) of 10 MiB: refused once the limit is passed.
    let sent = 0;
    const chunk = new TextEncoder().encode(`{"filter":{"status":"pending","queue":"${'q'.repeat(64 * 1024)}`);
    const stream = new ReadableStream<Uint8Array>({
      pull(c) {
        if (sent >= 10 * 1024 * 1024) return c.close();
        sent += chunk.byteLength;
        c.enqueue(chunk);
      },
    });
    const r2 = await ui.fetch(new Request(`${ORIGIN}/api/bulk/cancel`, { method: 'POST', headers: SAME, body: stream, duplex: 'half' } as RequestInit));
    assert.equal(r2.status, 413);
    assert.ok(sent < 4 * 1024 * 1024, `read ${sent} bytes of a body it refused`);
    const deep = `{"name":"go","payload":${'['.repeat(50_000)}${']'.repeat(50_000)}}`;
    const r3 = await ui.fetch(new Request(`${ORIGIN}/api/jobs/${id}/signal`, { method: 'POST', headers: SAME, body: deep }));
    assert.equal(r3.status, 400);
    for (const body of ['{', '[]', '"x"', 'null', '{"filter":{"status":["failed"]}}', '{"filter":{"status":"failed","queue":{"$ne":1}}}', '{"filter":{"__proto__":{"status":"pending"}}}']) {
      const path = body.includes('filter') ? '/api/bulk/cancel' : `/api/jobs/${id}/signal`;
      const r = await ui.fetch(new Request(`${ORIGIN}${path}`, { method: 'POST', headers: SAME, body }));
      assert.equal(r.status, 400, body);
    }
    assert.equal((await queue.getJob(id))?.status, 'pending');
  });

  it('answers a failure with its code but without the driver message or stack; onError gets the error', async () => {
    const faulty = new FaultyStorage(ts.storage);
    const failing = new Queue(faulty.storage);
    const seen: [unknown, string][] = [];
    const ui = open({ insecure: true, onError: (e, req) => void seen.push([e, new URL(req.url).pathname]) });
    faulty.fail({ method: 'jobList', error: 'packet-too-large' });
    const res = await dashboard(failing, { insecure: true, onError: (e, req) => void seen.push([e, new URL(req.url).pathname]) }).fetch(new Request(`${ORIGIN}/api/jobs`));
    const text = await res.text();
    assert.equal(res.status, 500);
    assert.equal((JSON.parse(text) as { error: { code: string } }).error.code, 'STORAGE');
    assert.doesNotMatch(text, /max_allowed_packet|injected|ER_NET|at .*\.ts/);
    assert.equal(seen.length, 1);
    assert.match(String(seen[0]![0]), /max_allowed_packet/);
    assert.equal(seen[0]![1], '/api/jobs');
    // A throw in onError changes nothing; 4xx answers keep their message and are not reported.
    const noisy = open({ insecure: true, onError: () => {
      throw new Error('logger down');
    } });
    assert.equal((await noisy.fetch(new Request(`${ORIGIN}/api/jobs?limit=0`))).status, 400);
    assert.equal((await ui.fetch(new Request(`${ORIGIN}/api/jobs/x`))).status, 404);
    assert.equal(seen.length, 1);
    assert.throws(() => dashboard(queue, { insecure: true, onError: 'log' as unknown as () => void }), { code: 'INVALID_ARGUMENT' });
  });

  it('tells live pages that a read failed by its code, not by the driver message', async () => {
    const faulty = new FaultyStorage(ts.storage);
    const failing = dashboard(new Queue(faulty.storage), { insecure: true, pollInterval: 250 });
    uis.push(failing);
    const reader = (await failing.fetch(new Request(`${ORIGIN}/api/live`))).body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    while (!text.includes('\n\n')) text += decoder.decode((await reader.read()).value);
    faulty.fail({ method: 'jobCountByStatusCapped', error: 'connection-reset', times: Infinity });
    while (!/"error":/.test(text)) text += decoder.decode((await reader.read()).value);
    await reader.cancel();
    const error = /"error":"([^"]*)"/.exec(text)![1]!;
    assert.match(error, /STORAGE/);
    assert.doesNotMatch(error, /ECONNRESET|injected/);
  });

  it('mounted in Express without a path, leaves requests outside its base path to the next handler', async () => {
    const ui = open({ basePath: '/jobs', insecure: true });
    const app = express();
    app.use(ui.node);
    app.get('/hello', (req, res) => void res.send(`hello ${req.url}`));
    app.use('/mounted', ui.node);
    app.get('/mounted/other', (_req, res) => void res.send('other'));
    const server = app.listen(0, '127.0.0.1');
    try {
      const url = await listen(server);
      const hello = await fetch(`${url}/hello?x=1`);
      assert.deepEqual([hello.status, await hello.text()], [200, 'hello /hello?x=1']);
      assert.equal((await fetch(`${url}/jobs/api/config`)).status, 200);
      assert.equal((await fetch(`${url}/jobsx`)).status, 404);
      const nothing = await fetch(`${url}/jobs/api/nothing`);
      assert.deepEqual([nothing.status, ((await nothing.json()) as { error: { code: string } }).error.code], [404, 'NOT_FOUND']);
      // Mounted under another path than its base path: Express goes on to its own routes.
      const other = await fetch(`${url}/mounted/other`);
      assert.deepEqual([other.status, await other.text()], [200, 'other']);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});
