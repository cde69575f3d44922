/**
 * Mounting the dashboard in node:http, Express (after a body parser), Fastify and Hono under
 * `/jobs`, over real HTTP: a page and an API read, an authorized mutation that takes effect,
 * and the same mutation refused (403) for a user `authorize` denies.
 * @storage sqlite
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { serve } from '@hono/node-server';
import express from 'express';
import Fastify from 'fastify';
import { Hono } from 'hono';
import { dashboard, type Dashboard } from '../../src/dashboard/index.js';
import { Queue } from '../../src/queue/queue.js';
import { SqliteStorage } from '../../src/storage/sqlite/sqlite-storage.js';

/** Admins send `authorization: Bearer admin`; everyone may view. */
const authorize = (req: Request, action: string): boolean => action === 'view' || req.headers.get('authorization') === 'Bearer admin';

async function listening(server: Server): Promise<string> {
  if (!server.listening) await new Promise((resolve) => server.once('listening', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const mounts: Record<string, (ui: Dashboard) => Promise<{ url: string; close: () => Promise<void> }>> = {
  'node:http': async (ui) => {
    const server = createServer(ui.node).listen(0, '127.0.0.1');
    return { url: await listening(server), close: () => new Promise((r) => server.close(() => r())) };
  },
  express: async (ui) => {
    const app = express();
    app.use(express.json());
    app.use('/jobs', ui.node);
    const server = app.listen(0, '127.0.0.1');
    return { url: await listening(server), close: () => new Promise((r) => server.close(() => r())) };
  },
  fastify: async (ui) => {
    const app = Fastify();
    await app.register(async (scope) => {
      // Leave request bodies unread: the dashboard reads them itself.
      scope.removeAllContentTypeParsers();
      scope.addContentTypeParser('*', (_req, _payload, done) => done(null));
      scope.all('/jobs', (req, reply) => {
        reply.hijack();
        ui.node(req.raw, reply.raw);
      });
      scope.all('/jobs/*', (req, reply) => {
        reply.hijack();
        ui.node(req.raw, reply.raw);
      });
    });
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    return { url, close: () => app.close() };
  },
  hono: async (ui) => {
    const app = new Hono();
    app.all('/jobs', (c) => ui.fetch(c.req.raw));
    app.all('/jobs/*', (c) => ui.fetch(c.req.raw));
    const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }) as Server;
    return { url: await listening(server), close: () => new Promise((r) => server.close(() => r())) };
  },
};

describe('embedding the dashboard', () => {
  let storage: SqliteStorage;
  let queue: Queue;
  before(async () => {
    storage = new SqliteStorage(':memory:');
    await storage.migrate();
    queue = new Queue(storage);
    await queue.enqueue('x', { n: 1 }, { queue: 'embedded' });
  });
  after(() => storage.close());

  for (const [framework, mount] of Object.entries(mounts)) {
    it(`serves and acts under /jobs in ${framework}`, async () => {
      const ui = dashboard(queue, { basePath: '/jobs', authorize });
      const { url, close } = await mount(ui);
      try {
        const page = await fetch(`${url}/jobs/`);
        assert.equal(page.status, 200);
        assert.match(await page.text(), /<script type="module" src="assets\/app\.js">/);
        const bare = await fetch(`${url}/jobs`, { redirect: 'manual' });
        assert.equal(bare.status, 308);
        const list = await fetch(`${url}/jobs/api/jobs?queue=embedded`);
        assert.equal(list.status, 200);
        assert.equal(((await list.json()) as { jobs: unknown[] }).jobs.length, 1);
        const pause = (auth: string) =>
          fetch(`${url}/jobs/api/queues/embedded/pause`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'x-sdj-dashboard': '1', 'sec-fetch-site': 'same-origin', authorization: auth },
            body: '{}',
          });
        const denied = await pause('Bearer guest');
        assert.equal(denied.status, 403);
        assert.equal((await queue.queues()).find((q) => q.name === 'embedded')?.paused, false);
        const done = await pause('Bearer admin');
        assert.equal(done.status, 200, await done.clone().text());
        assert.equal((await queue.queues()).find((q) => q.name === 'embedded')?.paused, true);
        await queue.resumeQueue('embedded');
      } finally {
        ui.close();
        await close();
      }
    });
  }
});
