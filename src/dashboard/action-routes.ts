/**
 * The dashboard's mutations (`POST <basePath>/api/...`), each behind its action's guard
 * (same-site check, `readOnly`, `authorize`) and each one call of the public Queue API.
 * @module
 */
import type { Hono } from 'hono';
import { InvalidArgumentError, type BulkOutcome, type JobFilterOptions, type Queue } from '../index.js';
import type { DashboardAction, ResolvedOptions } from './options.js';
import { bodyOf, filterOf } from './payloads.js';
import { actionGuard } from './request-guard.js';

/** Skipped jobs listed in a bulk action's answer (the rest are only counted). */
export const SKIPPED_LISTED = 100;

/** Adds the mutation routes to `app` (already under the base path). @internal */
export function addActionRoutes(app: Hono, queue: Queue, options: ResolvedOptions): void {
  const post = (path: string, action: DashboardAction, run: (params: Record<string, string>, body: Record<string, unknown>) => Promise<Record<string, unknown>>): void => {
    app.post(path, actionGuard(options, action), async (c) => {
      const result = await run(c.req.param() as Record<string, string>, await bodyOf(c.req.raw));
      return c.json({ ok: true, ...result }, 200, { 'Cache-Control': 'no-store' });
    });
  };
  const done = async (p: Promise<unknown>): Promise<Record<string, unknown>> => {
    await p;
    return {};
  };

  post('/api/jobs/:id/retry', 'retry', (p, b) => done(queue.retryJob(p['id']!, { fromFailedStep: booleanOf(b['fromFailedStep'], 'fromFailedStep') })));
  post('/api/jobs/:id/cancel', 'cancel', (p) => done(queue.cancelJob(p['id']!)));
  post('/api/jobs/:id/delete', 'delete', (p) => done(queue.deleteJob(p['id']!)));
  post('/api/jobs/:id/pause', 'pause', (p) => done(queue.pauseJob(p['id']!)));
  post('/api/jobs/:id/resume', 'resume', (p) => done(queue.resumeJob(p['id']!)));
  post('/api/jobs/:id/signal', 'signal', (p, b) => {
    const name = b['name'];
    if (typeof name !== 'string') throw new InvalidArgumentError('a signal needs a name (string)');
    return done(queue.signal(p['id']!, name, b['payload']));
  });

  const bulk = (run: (filter: JobFilterOptions) => Promise<BulkOutcome>) => async (_p: Record<string, string>, b: Record<string, unknown>) => {
    const outcome = await run(bulkFilterOf(b['filter'], options));
    return { count: outcome.count, skippedCount: outcome.skipped.length, skipped: outcome.skipped.slice(0, SKIPPED_LISTED) };
  };
  post('/api/bulk/retry', 'retry', bulk((f) => queue.retryJobs(f)));
  post('/api/bulk/cancel', 'cancel', bulk((f) => queue.cancelJobs(f)));
  post('/api/bulk/delete', 'delete', bulk((f) => queue.deleteJobs(f)));

  post('/api/queues/:name/pause', 'pause', (p) => done(queue.pauseQueue(p['name']!)));
  post('/api/queues/:name/resume', 'resume', (p) => done(queue.resumeQueue(p['name']!)));

  post('/api/prune', 'prune', async (_p, b) => {
    const olderThan = b['olderThan'];
    if (olderThan !== undefined && (typeof olderThan !== 'number' || !Number.isInteger(olderThan) || olderThan < 0)) {
      throw new InvalidArgumentError('olderThan must be a whole number of ms, 0 or more');
    }
    return { deleted: await queue.prune(olderThan === undefined ? {} : { olderThan }) };
  });
}

function booleanOf(v: unknown, name: string): boolean {
  if (v === undefined) return false;
  if (typeof v !== 'boolean') throw new InvalidArgumentError(`${name} must be a boolean`);
  return v;
}

/**
 * A bulk action's filter: an object of string fields that names a status, so that a click
 * never acts on every job of every status at once. @throws InvalidArgumentError
 */
function bulkFilterOf(v: unknown, options: ResolvedOptions): JobFilterOptions {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new InvalidArgumentError('a bulk action needs a filter object');
  const raw = v as Record<string, unknown>;
  const filter = filterOf((n) => raw[n], options.redact);
  if (filter.status === undefined || (Array.isArray(filter.status) && filter.status.length === 0)) {
    throw new InvalidArgumentError('a bulk action needs a status in its filter');
  }
  return filter;
}
