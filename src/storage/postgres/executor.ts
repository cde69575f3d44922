/**
 * Renders the driver's statements for one schema and runs them as named prepared statements
 * (parsed and planned once per connection). The statement name is a hash of the rendered text,
 * so storages on different schemas can share a user's pool without clashing.
 * @internal
 */
import { createHash } from 'node:crypto';
import type { Logger } from '../../types.js';
import { quoteIdent, type PgPoolLike, type PgQueryableLike } from './connection.js';

/** A rendered statement. */
interface Rendered {
  name: string;
  text: string;
}

/** Everything the operation modules need: the pool, statement runner, clock and channel. */
export class PgExec {
  /** The quoted schema. */
  readonly schemaSql: string;
  /** The LISTEN/NOTIFY channel of this schema. */
  readonly channel: string;
  readonly #cache = new Map<string, Rendered>();
  readonly #clock: (() => number) | undefined;

  /**
   * @param pool the pool statements run on by default
   * @param schema the validated schema name
   * @param clock injected clock (tests); undefined = the database clock
   * @param logger the injected logger
   */
  constructor(
    readonly pool: PgPoolLike,
    readonly schema: string,
    clock: (() => number) | undefined,
    readonly logger: Logger,
  ) {
    this.schemaSql = quoteIdent(schema);
    this.channel = channelFor(schema);
    this.#clock = clock;
  }

  /** The `now` parameter of a statement: the injected clock's time, or null (database clock). */
  now(): number | null {
    return this.#clock ? Math.floor(this.#clock()) : null;
  }

  /** The statement `template` rendered for this schema. */
  render(template: string): Rendered {
    let r = this.#cache.get(template);
    if (r === undefined) {
      const text = template.replaceAll('{s}', this.schemaSql);
      r = { name: `sdj_${createHash('sha1').update(text).digest('hex').slice(0, 24)}`, text };
      this.#cache.set(template, r);
    }
    return r;
  }

  /** Runs a statement on `c` (default: the pool) and returns its rows. */
  async rows<R>(template: string, values: unknown[] = [], c: PgQueryableLike = this.pool): Promise<R[]> {
    const { name, text } = this.render(template);
    const res = await c.query({ name, text, values });
    return res.rows as R[];
  }

  /** Runs a statement and returns its first row (undefined when none). */
  async one<R>(template: string, values: unknown[] = [], c: PgQueryableLike = this.pool): Promise<R | undefined> {
    return (await this.rows<R>(template, values, c))[0];
  }

  /** Runs a statement without prepared-statement caching (DDL, one-off statements). */
  async exec(template: string, values: unknown[] = [], c: PgQueryableLike = this.pool): Promise<unknown[]> {
    const res = await c.query({ text: template.replaceAll('{s}', this.schemaSql), values });
    return res.rows;
  }
}

/**
 * The NOTIFY channel of a schema: `sdj_<schema>`, or a hashed form when that would exceed
 * PostgreSQL's 63-byte identifier limit.
 */
export function channelFor(schema: string): string {
  const plain = `sdj_${schema}`;
  if (plain.length <= 63) return plain;
  return `sdj_${schema.slice(0, 40)}_${createHash('sha1').update(schema).digest('hex').slice(0, 16)}`;
}
