/**
 * `sdj` against PostgreSQL, on a schema of its own (`--schema`, also through SDJ_SCHEMA) that
 * is dropped afterwards.
 * @storage postgres
 */
import { describe, it } from 'node:test';
import { PostgresStorage } from '../../src/storage/postgres/postgres-storage.js';
import { PG_URL, pgAdmin, testSchemaName } from '../helpers/postgres-storage.js';
import { fails, okJson, sdj } from './run-cli.js';
import { runCliSuite } from './suite.js';
import assert from 'node:assert/strict';

const schema = testSchemaName('cli');

runCliSuite('postgres', async () => ({
  args: ['--db', PG_URL, '--schema', schema],
  open: () => new PostgresStorage(PG_URL, { schema, max: 2 }),
  cleanup: async () => void (await pgAdmin(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)),
}));

describe('sdj on PostgreSQL', () => {
  it('takes the schema from SDJ_SCHEMA and the URL from SDJ_DATABASE_URL', async () => {
    const other = testSchemaName('cli-env');
    try {
      const env = { SDJ_DATABASE_URL: PG_URL, SDJ_SCHEMA: other };
      assert.deepEqual(okJson(await sdj(['migrate', '--json'], { env }), 'migrate')['migrated'], true);
      const rows = await pgAdmin<{ n: string }>('SELECT count(*)::text AS n FROM information_schema.tables WHERE table_schema = $1', [other]);
      assert.ok(Number(rows[0]?.n) > 0, 'tables in the SDJ_SCHEMA schema');
      assert.deepEqual(okJson(await sdj(['status', '--json'], { env }), 'status'), { queues: [] });
      fails(await sdj(['--schema', 'bad-name;', 'status'], { env }), 2, /schema/i, 'a bad schema name');
    } finally {
      await pgAdmin(`DROP SCHEMA IF EXISTS "${other}" CASCADE`);
    }
  });

  it('a schema that was never migrated fails with a hint', async () => {
    fails(await sdj(['--db', PG_URL, '--schema', testSchemaName('cli-none'), 'status']), 1, /^sdj: database error \(PostgreSQL at .*\): .*run: sdj migrate\)$/, 'not migrated');
  });
});
