/**
 * The pieces of `sdj`'s output and option parsing that need no process: tables, relative
 * times, colour rules, durations, the progress bar, and how errors map to exit codes.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CommanderError } from 'commander';
import { parseTarget } from '../../src/cli/connect.js';
import { CliError, errorMessage, exitCodeOf, UsageError } from '../../src/cli/errors.js';
import { colorWanted, formatAge, makeStyler, relativeTime, shorten, table } from '../../src/cli/format.js';
import { parseDuration, parseLimit, parseStatuses } from '../../src/cli/options.js';
import { progressBar, renderProgress } from '../../src/cli/progress.js';
import { InvalidArgumentError, JobNotFoundError, StorageError } from '../../src/errors.js';

describe('sdj output', () => {
  it('aligns tables, numbers to the right, and colours after padding', () => {
    const plain = table([{ header: 'NAME' }, { header: 'N', align: 'right' }, { header: 'NOTE' }], [['a', '1', ''], ['longer', '100', 'x']], makeStyler(false));
    assert.equal(plain, ['NAME      N  NOTE', 'a         1', 'longer  100  x'].join('\n'));
    const coloured = table([{ header: 'S' }], [[{ text: 'failed', style: 'red' }]], makeStyler(true));
    assert.equal(coloured, '\u001b[1mS\u001b[22m\n\u001b[31mfailed\u001b[39m');
  });

  it('colours only on a terminal, without NO_COLOR and without --no-color', () => {
    assert.equal(colorWanted(true, {}, true), true);
    assert.equal(colorWanted(true, {}, false), false);
    assert.equal(colorWanted(true, {}, undefined), false);
    assert.equal(colorWanted(true, { NO_COLOR: '1' }, true), false);
    assert.equal(colorWanted(true, { NO_COLOR: '' }, true), true);
    assert.equal(colorWanted(false, {}, true), false);
  });

  it('says times the way people do', () => {
    const now = Date.parse('2025-01-01T12:00:00Z');
    assert.equal(relativeTime(new Date(now - 3 * 60_000 - 5_000), now), '3m ago');
    assert.equal(relativeTime(new Date(now + 2 * 3_600_000), now), 'in 2h');
    assert.equal(relativeTime(new Date(now + 500), now), 'now');
    assert.equal(relativeTime(undefined, now), '-');
    assert.deepEqual([45_000, 12 * 60_000, 2 * 3_600_000 + 5 * 60_000, 3 * 86_400_000 + 4 * 3_600_000, 7 * 86_400_000].map(formatAge), ['45s', '12m', '2h 5m', '3d 4h', '7d']);
    assert.equal(shorten('first line that is long\nsecond', 10), 'first lin…');
  });

  it('draws the progress bar', () => {
    assert.equal(renderProgress('retrying', { done: 30, skipped: 5, total: 100 }, 10), 'retrying [####------]  35%  35/100  (5 skipped)');
    assert.equal(renderProgress('deleting', { done: 0, skipped: 0, total: 0 }, 4), 'deleting [####] 100%  0/0');
  });

  it('draws the bar in place on a terminal, erases it at the end, and stays silent otherwise', () => {
    const written: string[] = [];
    const tty = { isTTY: true, write: (t: string) => written.push(t) } as unknown as NodeJS.WriteStream;
    const bar = progressBar(tty, 'retrying');
    bar.update?.({ done: 200, skipped: 0, total: 400 });
    bar.update?.({ done: 400, skipped: 0, total: 400 });
    bar.clear();
    assert.deepEqual(written, [
      `\r${renderProgress('retrying', { done: 200, skipped: 0, total: 400 })}\u001b[K`,
      `\r${renderProgress('retrying', { done: 400, skipped: 0, total: 400 })}\u001b[K`,
      '\r\u001b[K',
    ]);
    const pipe = { isTTY: false, write: () => assert.fail('nothing is written to a pipe') } as unknown as NodeJS.WriteStream;
    const none = progressBar(pipe, 'retrying');
    assert.equal(none.update, undefined);
    none.clear();
  });
});

describe('sdj options', () => {
  it('parses durations, statuses and limits', () => {
    assert.deepEqual(['30s', '15m', '12h', '7d', '2w', '500ms', '0'].map(parseDuration), [30_000, 900_000, 43_200_000, 604_800_000, 1_209_600_000, 500, 0]);
    for (const bad of ['7', '7x', '-1d', '1.5h', '', 'd', '99999999999d']) assert.throws(() => parseDuration(bad), /duration/, bad);
    assert.deepEqual(parseStatuses('failed, cancelled,failed'), ['failed', 'cancelled']);
    assert.throws(() => parseStatuses('failed,nope'), /unknown status "nope"/);
    assert.equal(parseLimit('500'), 500);
    for (const bad of ['0', '501', '1.5', 'ten']) assert.throws(() => parseLimit(bad), /1 to 500/, bad);
  });

  it('reads the database target', () => {
    assert.deepEqual(parseTarget({ db: 'postgresql://u@h/db', schema: 'jobs' }), { kind: 'postgres', url: 'postgresql://u@h/db', schema: 'jobs' });
    assert.deepEqual(parseTarget({ db: 'mariadb://root@h:3306/t' }), { kind: 'mysql', url: 'mysql://root@h:3306/t' });
    assert.deepEqual(parseTarget({ db: './jobs.db', schema: 'from-env' }), { kind: 'sqlite', path: './jobs.db' });
    assert.deepEqual(parseTarget({ db: 'file:///tmp/j.db' }), { kind: 'sqlite', path: '/tmp/j.db' });
    assert.throws(() => parseTarget({}), UsageError);
    assert.throws(() => parseTarget({ db: 'jobs.db', schema: 's', schemaFromFlag: true }), /PostgreSQL only/);
    assert.throws(() => parseTarget({ db: 'postgres://u:pw@h:nope/db' }), (e: Error) => e instanceof UsageError && !e.message.includes('pw'));
  });

  it('maps errors to exit codes and one line', () => {
    assert.equal(exitCodeOf(new UsageError('x')), 2);
    assert.equal(exitCodeOf(new InvalidArgumentError('x')), 2);
    assert.equal(exitCodeOf(new CommanderError(1, 'commander.unknownOption', 'x')), 2);
    assert.equal(exitCodeOf(new CommanderError(0, 'commander.helpDisplayed', 'x')), 0);
    assert.equal(exitCodeOf(new CliError('x')), 1);
    assert.equal(exitCodeOf(new JobNotFoundError('j1')), 1);
    assert.equal(exitCodeOf(new StorageError('connect ECONNREFUSED')), 1);
    assert.equal(errorMessage(new StorageError('relation "sdj.jobs" does not exist\nLINE 1')), 'database error: relation "sdj.jobs" does not exist LINE 1 (has the database been migrated? run: sdj migrate)');
    assert.equal(errorMessage(new TypeError('boom')), 'unexpected error: boom (run with --verbose for details)');
  });
});
