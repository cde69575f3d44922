/**
 * `sdj` as a child process where no database is needed or reachable: help, version, bad
 * usage (exit 2) and unreachable databases (exit 1), each with one line on stderr.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { assertBuilt, fails, ok, sdj } from './run-cli.js';

const COMMANDS = ['migrate', 'status', 'jobs', 'queues', 'schedules', 'workers', 'prune'];

describe('sdj usage', () => {
  before(assertBuilt);

  it('--help reads like the README: a sentence per command, examples, exit codes', async () => {
    const out = ok(await sdj(['--help']), '--help');
    assert.match(out, /^Usage: sdj \[options\] \[command\]$/m);
    for (const c of COMMANDS) assert.match(out, new RegExp(`^  ${c}( \\[options\\])?\\s+[A-Z].*$`, 'm'), `command ${c} listed with a sentence`);
    assert.match(out, /--db <url-or-file>.*\n?.*\(env: SDJ_DATABASE_URL\)/);
    assert.match(out, /^Examples:$/m);
    assert.match(out, /Exit codes: 0 success, 1 the operation failed/);
    const subs = [['jobs', 'list'], ['jobs', 'show'], ['jobs', 'retry'], ['jobs', 'delete'], ['queues', 'pause'], ['status'], ['prune']];
    const helps = await Promise.all(subs.map((sub) => sdj([...sub, '--help'])));
    for (const [i, sub] of subs.entries()) {
      const help = ok(helps[i]!, `${sub.join(' ')} --help`);
      assert.match(help, new RegExp(`^Usage: sdj ${sub.join(' ')}`, 'm'));
      assert.match(help, /^Examples?:$/m, `${sub.join(' ')} --help has examples`);
      assert.match(help, /^Global Options:$/m);
    }
    assert.match(ok(await sdj(['help', 'prune']), 'help prune'), /--older-than <duration>/);
    assert.match(ok(await sdj(['--version']), '--version'), /^\d+\.\d+\.\d+/);
  });

  it('bad usage exits 2 with one line', async () => {
    // Each is refused before connecting (x.db does not exist): [arguments, the stderr line].
    const cases: [string[], RegExp][] = [
      [['status'], /^sdj: no database given: pass --db <url-or-file> or set SDJ_DATABASE_URL$/],
      [['status', '--db', ''], /^sdj: no database given/],
      [['--db', 'x.db', 'status', '--bogus'], /^sdj: unknown option '--bogus'$/],
      [['--bogus'], /^sdj: unknown option '--bogus'$/],
      [['--db', 'x.db', 'jobz'], /^sdj: unknown command 'jobz' \(Did you mean jobs\?\)$/],
      [['--db', 'postgres://user@host:port/db', 'status'], /^sdj: bad database URL: not a valid PostgreSQL URL/],
      [['--db', 'mysql://u:secret@:3306/db', 'status'], /^sdj: bad database URL: not a valid MySQL\/MariaDB URL \(e\.g\. mysql:\/\/user:password@host:port\/database\)$/],
      [['--db', 'mysql:///db', 'status'], /^sdj: bad database URL: no host in the MySQL\/MariaDB URL/],
      [['--db', 'redis://localhost/0', 'status'], /^sdj: unsupported database URL scheme "redis:\/\/"/],
      [['--db', 'x.db', 'jobs', 'list', '--status', 'broken'], /^sdj: option '--status <statuses>' argument 'broken' is invalid\. unknown status "broken"/],
      [['--db', 'x.db', 'jobs', 'list', '--limit', '501'], /^sdj: option '--limit <n>' argument '501' is invalid/],
      [['--db', 'x.db', 'jobs', 'show'], /^sdj: missing required argument 'id'$/],
      [['--db', 'x.db', 'jobs', 'retry'], /^sdj: jobs retry: give a job id, or filter options such as --status to act on many jobs$/],
      [['--db', 'x.db', 'jobs', 'retry', 'some-id', '--status', 'failed'], /^sdj: jobs retry: give a job id or filter options, not both$/],
      [['--db', 'x.db', 'jobs', 'retry', '--status', 'failed', '--from-failed-step'], /^sdj: jobs retry: --from-failed-step applies to one job id only$/],
      [['--db', 'x.db', 'jobs', 'cancel'], /^sdj: jobs cancel: give a job id/],
      [['--db', 'x.db', 'queues', 'pause'], /^sdj: missing required argument 'queue'$/],
      [['--db', 'x.db', 'prune', '--older-than', '7 days'], /^sdj: option '--older-than <duration>' argument '7 days' is invalid/],
    ];
    const results = await Promise.all(cases.map(([args]) => sdj(args)));
    for (const [i, [args, line]] of cases.entries()) fails(results[i]!, 2, line, `sdj ${args.join(' ')}`);
    // No command: the help goes to stderr, and the usage is wrong.
    const bare = await sdj([]);
    assert.equal(bare.code, 2);
    assert.equal(bare.stdout, '');
    assert.match(bare.stderr, /^Usage: sdj/);
  });

  it('an unreachable database exits 1 with one line; --verbose adds the stack', async () => {
    const pg = await sdj(['--db', 'postgres://sdj:secret@127.0.0.1:1/x', 'status']);
    fails(pg, 1, /^sdj: database error \(PostgreSQL at 127\.0\.0\.1:1\/x, schema sdj\): .*ECONNREFUSED/, 'PostgreSQL refused');
    assert.doesNotMatch(pg.stderr, /secret/, 'the password is not printed');
    const my = await sdj(['--db', 'mysql://root:secret@127.0.0.1:1/x', 'jobs', 'show', '01a2416f-f7c1-7000-ba20-8f06a359376a']);
    fails(my, 1, /^sdj: database error \(MySQL\/MariaDB at 127\.0\.0\.1:1\/x\): .*ECONNREFUSED/, 'MySQL refused');
    assert.doesNotMatch(my.stderr, /secret/, 'the password is not printed');
    fails(await sdj(['--db', 'postgres://127.0.0.1:1/x', 'jobs', 'list', '--json']), 1, /^sdj: database error /, 'refused with --json');
    const verbose = await sdj(['--db', 'postgres://127.0.0.1:1/x', 'status', '--verbose']);
    assert.equal(verbose.code, 1);
    assert.equal(verbose.stdout, '');
    assert.match(verbose.stderr, /^sdj: database error .*\n/);
    assert.match(verbose.stderr, /\n\s+at /, '--verbose prints the stack');
  });
});
