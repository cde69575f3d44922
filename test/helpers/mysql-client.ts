/**
 * Plain `mysql2/promise` connections and pools for tests that work beside a storage: hold locks,
 * read plans and server state, write rows with SQL, or hand a storage a pool of their own. Only
 * the subset the tests call is typed; the package is loaded when this module is.
 */
import { createRequire } from 'node:module';
import type { MysqlQueryOptions } from '../../src/storage/mysql/mysql-storage.js';

/** A `mysql2/promise` connection: a statement with `?` values, or the driver's query options. */
export interface MysqlClient {
  query(sql: string, values?: unknown[]): Promise<[unknown, unknown]>;
  query(options: MysqlQueryOptions): Promise<[unknown, unknown]>;
  end(): Promise<void>;
}

/** A `mysql2/promise` pool; it fits `MysqlPoolLike`, so a storage can be given one. */
export interface MysqlClientPool extends MysqlClient {
  getConnection(): Promise<MysqlClient & { release(): void; destroy(): void }>;
}

/** The `mysql2/promise` module: `createConnection` takes a URL or a config object (`{ uri, ... }`). */
export const mysql = createRequire(import.meta.url)('mysql2/promise') as {
  createConnection(config: string | Record<string, unknown>): Promise<MysqlClient>;
  createPool(config: Record<string, unknown>): MysqlClientPool;
};
