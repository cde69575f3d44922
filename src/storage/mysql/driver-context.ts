/**
 * What every operation module of the MySQL/MariaDB driver receives.
 * @internal
 */
import type { MysqlDb } from './connection.js';

/** The driver's database handle and clock. @internal */
export interface DriverContext {
  readonly db: MysqlDb;
  /** The value bound as "now": the injected clock's reading, or null for the database clock. */
  now(): number | null;
}
