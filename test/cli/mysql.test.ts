/**
 * `sdj` against MySQL/MariaDB, on a database of its own that is dropped afterwards; also
 * through a `mariadb://` URL.
 * @storage mysql
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MysqlStorage } from '../../src/storage/mysql/mysql-storage.js';
import { createTestDatabase, dropTestDatabase, mysqlDatabaseUrl } from '../helpers/mysql-storage.js';
import { okJson, sdj } from './run-cli.js';
import { runCliSuite } from './suite.js';

runCliSuite('mysql', async () => {
  const db = await createTestDatabase('cli');
  const url = mysqlDatabaseUrl(db);
  return { args: ['--db', url], open: () => new MysqlStorage(url, { connectionLimit: 2 }), cleanup: () => dropTestDatabase(db) };
});

describe('sdj on MariaDB', () => {
  it('accepts a mariadb:// URL', async () => {
    const db = await createTestDatabase('cli-mariadb');
    try {
      const url = mysqlDatabaseUrl(db).replace(/^mysql:/, 'mariadb:');
      assert.deepEqual(okJson(await sdj(['--db', url, 'migrate', '--json']), 'migrate')['migrated'], true);
      assert.deepEqual(okJson(await sdj(['--db', url, 'status', '--json']), 'status'), { queues: [] });
    } finally {
      await dropTestDatabase(db);
    }
  });
});
