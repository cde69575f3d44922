/**
 * How `sdj` fails: exit code 2 for bad usage, 1 for an operation that failed, and one line on
 * stderr (`sdj: <message>`); the stack and causes only with `--verbose`.
 * @module
 */
import { CommanderError } from 'commander';
import { isDurableJobsError } from '../index.js';

/** Bad usage: a missing or malformed option, argument or database URL. Exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** The operation failed (missing database file, unknown job, refused action). Exit code 1. */
export class CliError extends Error {
  override readonly name = 'CliError';
}

/** Exit code 1: the operation failed. */
export const EXIT_FAILED = 1;
/** Exit code 2: bad usage. */
export const EXIT_USAGE = 2;

/** The exit code an error ends the command with. */
export function exitCodeOf(e: unknown): number {
  if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : EXIT_USAGE;
  if (e instanceof UsageError) return EXIT_USAGE;
  // The library refuses a malformed filter, name or limit before touching the database.
  if (isDurableJobsError(e, 'INVALID_ARGUMENT')) return EXIT_USAGE;
  return EXIT_FAILED;
}

/** What is added to a storage failure that looks like a database never migrated. */
const MIGRATE_HINT = ' (has the database been migrated? run: sdj migrate)';

/**
 * A storage failure as the CLI reports it: `database error (<where>): <what>`, with a hint to
 * migrate when the tables are missing. The storage error stays the cause (`--verbose` shows it).
 */
export function databaseError(e: Error, where: string | undefined): CliError {
  // The driver's own words, when the storage error does not repeat them ("file is not a database").
  const cause = e.cause instanceof Error && !e.message.includes(e.cause.message) ? `: ${e.cause.message}` : '';
  let text = `database error${where === undefined ? '' : ` (${where})`}: ${e.message}${cause}`;
  if (/no such table|does not exist|doesn't exist/i.test(e.message)) text += MIGRATE_HINT;
  return new CliError(text, { cause: e });
}

/** The one line printed on stderr for an error, without the `sdj: ` prefix. */
export function errorMessage(e: unknown): string {
  let text: string;
  if (e instanceof UsageError || e instanceof CliError) text = e.message;
  else if (isDurableJobsError(e, 'STORAGE')) text = databaseError(e, undefined).message;
  else if (isDurableJobsError(e)) text = e.message;
  else if (e instanceof Error) text = `unexpected error: ${e.message} (run with --verbose for details)`;
  else text = `unexpected error: ${String(e)}`;
  return oneLine(text);
}

/** Folds a message onto one line. */
export function oneLine(text: string): string {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '')
    .join(' ');
}

/** The stack of an error and of each of its causes, for `--verbose`. */
export function errorDetails(e: unknown): string {
  const parts: string[] = [];
  let cur: unknown = e;
  for (let depth = 0; cur !== undefined && depth < 5; depth++) {
    parts.push(depth === 0 ? describe(cur) : `caused by: ${describe(cur)}`);
    cur = cur instanceof Error ? cur.cause : undefined;
  }
  return parts.join('\n');
}

function describe(e: unknown): string {
  if (e instanceof Error) return e.stack ?? `${e.name}: ${e.message}`;
  return String(e);
}
