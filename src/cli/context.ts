/**
 * What every `sdj` command runs with: the global options, the output (human or `--json`,
 * coloured or not), and a `Queue` on the chosen database, closed when the command ends.
 * @module
 */
import type { Command } from 'commander';
import { isDurableJobsError, Queue, type Storage } from '../index.js';
import { describeTarget, openStorage, parseTarget, type DbTarget } from './connect.js';
import { codecFromEnv } from './encryption.js';
import { databaseError } from './errors.js';
import { colorWanted, makeStyler, type Styler } from './format.js';

/** The options every command accepts (set on the program, read with `optsWithGlobals`). */
export interface GlobalOptions {
  db?: string;
  schema?: string;
  json?: boolean;
  verbose?: boolean;
  /** False after `--no-color`. */
  color?: boolean;
}

/** Where a command writes. */
export interface Output {
  /** `--json` was given: print one JSON document on stdout, nothing else. */
  readonly json: boolean;
  /** Colours text when colour is on. */
  readonly style: Styler;
  /** The instant relative times are measured from (ms since the epoch). */
  readonly now: number;
  /** Writes text and a newline on stdout. */
  print(text: string): void;
  /** Writes a value as indented JSON on stdout. */
  printJson(value: unknown): void;
  /** The error stream (progress bars); a terminal or not. */
  readonly stderr: NodeJS.WriteStream;
}

/** What a command's body receives. */
export interface CommandContext {
  queue: Queue;
  out: Output;
  target: DbTarget;
}

/** Options of {@link queueAction}. */
export interface QueueActionOptions<A extends string[]> {
  /** Whether a missing SQLite file may be created (`sdj migrate` only). @default false */
  create?: boolean;
  /** Checks the arguments and options before connecting; throws `UsageError` on bad usage. */
  check?: (args: A, options: Record<string, unknown>) => void;
}

/** The output of a command from its global options. */
export function makeOutput(g: GlobalOptions): Output {
  const json = g.json === true;
  const style = makeStyler(!json && colorWanted(g.color !== false, process.env, process.stdout.isTTY));
  return {
    json,
    style,
    now: Date.now(),
    print: (text) => void process.stdout.write(`${text}\n`),
    printJson: (value) => void process.stdout.write(`${JSON.stringify(value, null, 2)}\n`),
    stderr: process.stderr,
  };
}

/**
 * Wraps a command body as a commander action: checks the usage, opens the storage named by
 * `--db` / `SDJ_DATABASE_URL`, runs the body with a `Queue` on it, and closes the storage
 * however the body ends, so the process exits as soon as the command is done.
 */
export function queueAction<A extends string[]>(
  body: (ctx: CommandContext, args: A, options: Record<string, unknown>) => Promise<void>,
  settings: QueueActionOptions<A> = {},
): (...all: unknown[]) => Promise<void> {
  return async (...all) => {
    const cmd = all[all.length - 1] as Command;
    const options = all[all.length - 2] as Record<string, unknown>;
    const args = all.slice(0, -2) as A;
    settings.check?.(args, options);
    const g = cmd.optsWithGlobals<GlobalOptions>();
    const target = parseTarget({ db: g.db, schema: g.schema, schemaFromFlag: cmd.getOptionValueSourceWithGlobals('schema') === 'cli' });
    // Payload keys of an encrypted deployment (SDJ_ENCRYPTION_KEYS), read before connecting.
    const codec = codecFromEnv(process.env);
    const where = (e: unknown): unknown => (isDurableJobsError(e, 'STORAGE') ? databaseError(e, describeTarget(target)) : e);
    let storage: Storage;
    try {
      storage = openStorage(target, { create: settings.create === true });
    } catch (e) {
      throw where(e);
    }
    try {
      await body({ queue: new Queue(storage, codec === undefined ? {} : { codec }), out: makeOutput(g), target }, args, options);
    } catch (e) {
      throw where(e);
    } finally {
      await storage.close().catch(() => undefined);
    }
  };
}
