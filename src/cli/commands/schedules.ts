/**
 * `sdj schedules`: the stored recurring schedules with their next and last fire.
 * @module
 */
import type { Command } from 'commander';
import { queueAction } from '../context.js';
import { relativeTime, table } from '../format.js';

/** Adds `sdj schedules` to the program. */
export function registerSchedules(program: Command): void {
  program
    .command('schedules')
    .summary('List the schedules: next and last fire.')
    .description('List the recurring schedules: name, job type, schedule, when it fires next and when it last fired.')
    .addHelpText('after', '\nExamples:\n  $ sdj --db jobs.db schedules\n  $ sdj schedules --json')
    .action(
      queueAction(async ({ queue, out }) => {
        const schedules = await queue.schedules();
        if (out.json) return out.printJson({ schedules });
        if (schedules.length === 0) return out.print('No schedules.');
        const rows = schedules.map((s) => {
          const overdue = s.nextRunAt.getTime() < out.now - 60_000;
          return [
            s.name,
            s.type,
            s.description,
            { text: relativeTime(s.nextRunAt, out.now), style: overdue ? ('red' as const) : undefined },
            s.lastRunAt === undefined ? 'never' : relativeTime(s.lastRunAt, out.now),
          ];
        });
        out.print(table([{ header: 'NAME' }, { header: 'TYPE' }, { header: 'SCHEDULE' }, { header: 'NEXT FIRE' }, { header: 'LAST FIRE' }], rows, out.style));
      }),
    );
}
