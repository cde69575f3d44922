/**
 * `sdj migrate`: creates or upgrades the tables (the only command that may create a SQLite file).
 * @module
 */
import type { Command } from 'commander';
import { describeTarget } from '../connect.js';
import { queueAction } from '../context.js';

/** Adds `sdj migrate` to the program. */
export function registerMigrate(program: Command): void {
  program
    .command('migrate')
    .summary('Create or upgrade the tables.')
    .description('Create or upgrade the tables of the job queue. Safe to run again and from several processes at once; a SQLite file is created if it does not exist.')
    .addHelpText('after', '\nExamples:\n  $ sdj --db jobs.db migrate\n  $ SDJ_DATABASE_URL=postgres://app@db/app sdj migrate --schema jobs')
    .action(
      queueAction(
        async ({ queue, out, target }) => {
          await queue.storage.migrate();
          if (out.json) out.printJson({ migrated: true, database: describeTarget(target) });
          else out.print(`${describeTarget(target)} is migrated.`);
        },
        { create: true },
      ),
    );
}
