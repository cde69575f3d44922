/**
 * `sdj status`: every queue with its depth per status, the age of its oldest due pending job,
 * and whether it is paused.
 * @module
 */
import type { Command } from 'commander';
import { queueAction } from '../context.js';
import { formatAge, table } from '../format.js';

/** Adds `sdj status` to the program. */
export function registerStatus(program: Command): void {
  program
    .command('status')
    .summary('Show the queues: depth, oldest pending age, paused.')
    .description('Show every queue: pending, running, waiting and failed jobs, how long the oldest due pending job has waited, and whether the queue is paused.')
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
            ],
            rows,
            s,
          ),
        );
      }),
    );
}
