/**
 * `sdj prune`: deletes finished jobs past their age, as workers' maintenance does.
 * @module
 */
import { Option, type Command } from 'commander';
import { queueAction } from '../context.js';
import { plural } from '../format.js';
import { parseDuration } from '../options.js';

/** Adds `sdj prune` to the program. */
export function registerPrune(program: Command): void {
  program
    .command('prune')
    .summary('Delete old finished jobs.')
    .description('Delete finished jobs (completed, failed, cancelled) with their checkpoints and signals. Without --older-than, the default retention ages apply: completed after 7 days, failed and cancelled after 30 days. A workflow is deleted only as a whole.')
    .addOption(new Option('--older-than <duration>', 'delete every finished job that finished longer ago than this (30s, 15m, 12h, 7d; 0 for all)').argParser(parseDuration))
    .addHelpText('after', '\nExamples:\n  $ sdj --db jobs.db prune\n  $ sdj prune --older-than 7d\n  $ sdj prune --older-than 0 --json')
    .action(
      queueAction(async ({ queue, out }, _args, options) => {
        const olderThan = options['olderThan'] as number | undefined;
        const deleted = await queue.prune(olderThan === undefined ? {} : { olderThan });
        if (out.json) out.printJson({ deleted });
        else out.print(`Deleted ${plural(deleted, 'finished job')}.`);
      }),
    );
}
