/**
 * Size bounds of multi-row statements on MySQL/MariaDB. mysql2 escapes bound values into the
 * SQL text, and the server refuses a statement longer than its `max_allowed_packet`
 * (`ER_NET_PACKET_TOO_LARGE`, with the connection dropped). Batch writes that carry payloads
 * are therefore split into statements whose estimated text fits a budget: half the server's
 * `max_allowed_packet` (read once per storage, only when a batch is large), at most 16 MiB.
 * The estimate is an upper bound, so a chunk never exceeds its budget: escaping adds at most
 * one byte per byte of UTF-8, and each row is charged a fixed allowance for its SQL text.
 * @internal
 */
import { type Executor, select } from './connection.js';
import { MAX_ALLOWED_PACKET } from './queries/admin.js';
import { splitBySize } from '../shared/batch-split.js';

/** SQL text and small values of one row of a multi-row statement, charged per row. */
export const ROW_ALLOWANCE = 512;

/** Batches estimated at or below this size go as one statement without asking the server. */
const SMALL_BATCH = 1024 * 1024;

/** Largest budget, whatever the server accepts (keeps each statement's memory bounded). */
const MAX_BUDGET = 16 * 1024 * 1024;

/** Smallest budget (a server with a tiny packet limit still gets one row per statement). */
const MIN_BUDGET = 64 * 1024;

/** Rows per statement at most, however small they are. */
export const MAX_ROWS = 1000;

/** Upper bound of the bytes a string (or null) adds to SQL text once escaped and quoted. */
export function textBytes(s: string | null): number {
  return s === null ? 4 : 2 * Buffer.byteLength(s, 'utf8') + 2;
}

/** The server's `max_allowed_packet` per storage handle (the driver's `MysqlDb`), once read. */
const packets = new WeakMap<object, Promise<number>>();

/**
 * The `max_allowed_packet` (bytes) of the server behind `owner`, read on `ex` at the first call
 * and kept (a failed read is not kept, so the next call asks again). 0 when the server answers
 * nothing usable.
 */
export function packetLimitOf(owner: object, ex: Executor): Promise<number> {
  let p = packets.get(owner);
  if (p === undefined) {
    p = select(ex, MAX_ALLOWED_PACKET).then((rows) => {
      const packet = Number(rows[0]?.['bytes']);
      return Number.isFinite(packet) && packet > 0 ? packet : 0;
    });
    packets.set(owner, p);
    p.catch(() => packets.delete(owner));
  }
  return p;
}

/** The statement budget of the server behind `owner`: half its packet limit, within bounds. */
async function budgetOf(owner: object, ex: Executor): Promise<number> {
  const packet = await packetLimitOf(owner, ex);
  return packet > 0 ? Math.min(MAX_BUDGET, Math.max(MIN_BUDGET, Math.floor(packet / 2))) : MIN_BUDGET;
}

/**
 * Splits `items` (sizes from `size`, each an upper bound of its SQL text) into consecutive
 * chunks of at most {@link MAX_ROWS} rows whose sizes add up to the server's budget (see
 * {@link splitBySize}). A small batch is one chunk without a round trip.
 */
export async function chunkBySize<T>(owner: object, ex: Executor, items: readonly T[], size: (item: T) => number): Promise<T[][]> {
  if (items.length === 0) return [];
  const total = items.reduce((sum, item) => sum + size(item), 0);
  if (total <= SMALL_BATCH && items.length <= MAX_ROWS) return [[...items]];
  return splitBySize(items, size, await budgetOf(owner, ex), MAX_ROWS);
}
