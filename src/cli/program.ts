/**
 * The `sdj` program: global options, commands, help, and how a run ends (exit code 0 on
 * success, 1 when the operation failed, 2 on bad usage; one error line on stderr).
 * @module
 */
import { createRequire } from 'node:module';
import { Command, CommanderError, Option } from 'commander';
import { registerDashboard } from './commands/dashboard.js';
import { registerEvents } from './commands/events.js';
import { registerJobs } from './commands/jobs.js';
import { registerMigrate } from './commands/migrate.js';
import { registerPatches } from './commands/patches.js';
import { registerPrune } from './commands/prune.js';
import { registerQueues } from './commands/queues.js';
import { registerSchedules } from './commands/schedules.js';
import { registerStatus } from './commands/status.js';
import { registerWorkers } from './commands/workers.js';
import { errorDetails, errorMessage, exitCodeOf, oneLine } from './errors.js';

const HELP_FOOTER = `
The database is a postgres:// (or postgresql://) URL, a mysql:// (or mariadb://) URL, or the
path of a SQLite file; only \`sdj migrate\` creates a SQLite file that does not exist. Payloads
of an encrypted deployment are read with the keys in SDJ_ENCRYPTION_KEYS (comma-separated, the
current key first; each 32 bytes in base64 or hex); without them they show as encrypted.

Examples:
  $ sdj --db jobs.db migrate
  $ export SDJ_DATABASE_URL=postgres://app:secret@db.internal:5432/app
  $ sdj status
  $ sdj jobs list --status failed --queue emails
  $ sdj jobs show 0190a1b2-...
  $ sdj jobs retry --status failed --queue emails
  $ sdj queues pause emails
  $ sdj workers
  $ sdj prune --older-than 7d
  $ sdj patches --type process-order
  $ sdj events --queue emails
  $ sdj dashboard --port 4000

Output is a table for people (coloured on a terminal unless NO_COLOR is set) and one JSON
document with --json. Exit codes: 0 success, 1 the operation failed (database unreachable,
unknown job, refused action), 2 bad usage.`;

/** The package version, read from package.json beside dist/ (or src/). */
function version(): string {
  try {
    return (createRequire(import.meta.url)('../../package.json') as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** Builds the `sdj` program with every command. */
export function buildProgram(): Command {
  const program = new Command('sdj');
  program
    .description('Look at and steer simple-durable-jobs queues from a terminal: queues, jobs, workflows, workers and schedules.')
    .version(version(), '-V, --version', 'print the version')
    .addOption(new Option('--db <url-or-file>', 'the database: postgres://..., mysql://... or a SQLite file path').env('SDJ_DATABASE_URL'))
    .addOption(new Option('--schema <schema>', 'the PostgreSQL schema holding the tables (default: sdj)').env('SDJ_SCHEMA'))
    .option('--json', 'print machine-readable JSON on stdout')
    .option('--verbose', 'print the stack trace of an error')
    .option('--no-color', 'never colour the output (also when NO_COLOR is set or stdout is not a terminal)')
    .helpOption('-h, --help', 'show help')
    .helpCommand('help [command]', 'show help for a command')
    .configureHelp({ showGlobalOptions: true, sortSubcommands: false })
    .configureOutput({ outputError: (text, write) => write(`sdj: ${oneLine(text.replace(/^error: /, ''))}\n`) })
    .exitOverride()
    .addHelpText('after', HELP_FOOTER);
  registerMigrate(program);
  registerStatus(program);
  registerJobs(program);
  registerQueues(program);
  registerSchedules(program);
  registerWorkers(program);
  registerPrune(program);
  registerPatches(program);
  registerEvents(program);
  registerDashboard(program);
  return program;
}

/**
 * Runs `sdj` with the given arguments (without `node` and the script) and resolves with the
 * exit code; errors are reported on stderr as one line (`sdj: <message>`), with the stack
 * only under `--verbose`.
 */
export async function runCli(argv: readonly string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return 0;
  } catch (e) {
    // Commander has printed its own message (or the help) already.
    if (e instanceof CommanderError) return exitCodeOf(e);
    process.stderr.write(`sdj: ${errorMessage(e)}\n`);
    if (program.opts()['verbose'] === true || argv.includes('--verbose')) process.stderr.write(`${errorDetails(e)}\n`);
    return exitCodeOf(e);
  }
}
