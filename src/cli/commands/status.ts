/**
 * `sdj status`: every queue with its depth per status, the age of its oldest due pending job,
 * whether it is paused, and its flow-control limits with how full they are.
 * @module
 */
import type { Command } from 'commander';
import { queueAction } from '../context.js';
import type { QueueLimitInfo } from '../../flow-types.js';
import { formatAge, table } from '../format.js';

/** Adds `sdj status` to the program. */
export function registerStatus(program: Command): void {
  program
    .command('status')
    .summary('Show the queues: depth, oldest pending age, paused, limits.')
    .description('Show every queue: pending, running, waiting and failed jobs, how long the oldest due pending job has waited, whether the queue is paused, and its limits (running/limit, rate).')
    .addHelpText('after', '\nExamples:\n  $ sdj --db jobs.db status\n  $ sdj status --json | jq \'.queues[] | select(.failed > 0)\'')
    .action(
      queueAction(async ({ queue, out }) => {
        const queues = await queue.queues();
        if (out.json) return out.printJson({ queues });
        if (queues.length === 0) return out.print('No queues yet: no job has been enqueued.');
        const s = out.style;
        const rows = queues.map((q) => [
          q.name,
          q.paused ? { text: 'paused', style: 'yellow' as const } : 'no',
          String(q.pending),
          String(q.running),
          String(q.waiting),
          q.failed > 0 ? { text: String(q.failed), style: 'red' as const } : '0',
          q.oldestPendingAgeMs === undefined ? '-' : formatAge(q.oldestPendingAgeMs),
          limitsText(q.limits),
        ]);
        out.print(
          table(
            [
              { header: 'QUEUE' },
              { header: 'PAUSED' },
              { header: 'PENDING', align: 'right' },
              { header: 'RUNNING', align: 'right' },
              { header: 'WAITING', align: 'right' },
              { header: 'FAILED', align: 'right' },
              { header: 'OLDEST PENDING', align: 'right' },
              { header: 'LIMITS' },
            ],
            rows,
            s,
          ),
        );
      }),
    );
}

/** A queue's limits as `sdj status` shows them: `running/limit running`, `limit/period`, and the wait of a blocked rate. */
function limitsText(l: QueueLimitInfo | undefined): string {
  if (l === undefined) return '-';
  const parts: string[] = [];
  if (l.concurrency) parts.push(`${l.concurrency.running}/${l.concurrency.limit} running`);
  if (l.rateLimit) {
    const r = l.rateLimit;
    parts.push(`${r.limit} per ${span(r.period)}${r.nextStartInMs > 0 ? ` (next in ${span(r.nextStartInMs)})` : ''}`);
  }
  return parts.join(', ');
}

/** A duration: ms below a second, else as an age. */
function span(ms: number): string {
  return ms < 1000 ? `${Math.ceil(ms)}ms` : formatAge(ms);
}
