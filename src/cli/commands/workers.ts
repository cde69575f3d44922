/**
 * `sdj workers`: the live workers of the fleet, from the registry their heartbeats keep fresh.
 * @module
 */
import type { Command } from 'commander';
import { queueAction } from '../context.js';
import { relativeTime, table } from '../format.js';

/** Adds `sdj workers` to the program. */
export function registerWorkers(program: Command): void {
  program
    .command('workers')
    .summary('List the live workers of the fleet.')
    .description('List the live workers of every process on this database: name, host, pid, queues, running jobs, start and last heartbeat. A worker that stopped beating leaves the list after a few lease periods.')
    .addHelpText('after', '\nExamples:\n  $ sdj --db jobs.db workers\n  $ sdj workers --json')
    .action(
      queueAction(async ({ queue, out }) => {
        const workers = await queue.workers();
        if (out.json) return out.printJson({ workers });
        if (workers.length === 0) return out.print('No live workers.');
        const rows = workers.map((w) => [
          w.name,
          w.host,
          String(w.pid),
          w.queues.join(','),
          String(w.running),
          relativeTime(w.startedAt, out.now),
          relativeTime(w.lastSeenAt, out.now),
          w.id,
        ]);
        out.print(
          table(
            [
              { header: 'NAME' },
              { header: 'HOST' },
              { header: 'PID', align: 'right' },
              { header: 'QUEUES' },
              { header: 'RUNNING', align: 'right' },
              { header: 'STARTED' },
              { header: 'LAST SEEN' },
              { header: 'ID' },
            ],
            rows,
            out.style,
          ),
        );
      }),
    );
}
