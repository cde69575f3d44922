/**
 * What every operation module of the MySQL/MariaDB driver receives.
 */
import type { MysqlDb } from './connection.js';

/** The driver's database handle and clock (what `MysqlStorage` passes to every operation). */
export interface DriverContext {
  readonly db: MysqlDb;
  /** The value bound as "now": the injected clock's reading, or null for the database clock. */
  now(): number | null;
}
