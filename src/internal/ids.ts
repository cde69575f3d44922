/**
 * Time-ordered ids (UUIDv7, RFC 9562). Within one process ids are strictly increasing even
 * when many are made in the same millisecond, so ordering by id keeps batch order (FIFO).
 * @internal
 */
import { randomFillSync } from 'node:crypto';

/** Random bytes drawn from the system at a time (8 bytes per id: 512 ids per refill). */
const POOL_BYTES = 4096;

/** Two lowercase hex digits per byte value. */
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** Generates UUIDv7 strings; one instance per owner, no module-level state. @internal */
export class IdGenerator {
  #lastMs = 0;
  #seq = 0;
  /** Random bytes, refilled from the system CSPRNG in blocks (one call per 512 ids). */
  readonly #pool = Buffer.allocUnsafe(POOL_BYTES);
  #poolAt = POOL_BYTES;

  /** A new id, greater than every id this generator returned before. */
  next(): string {
    let ms = Date.now();
    if (ms <= this.#lastMs) {
      ms = this.#lastMs;
      this.#seq++;
      if (this.#seq > 0xfff) {
        ms = ++this.#lastMs;
        this.#seq = 0;
      }
    } else {
      this.#seq = 0;
    }
    this.#lastMs = ms;
    if (this.#poolAt + 8 > POOL_BYTES) {
      randomFillSync(this.#pool);
      this.#poolAt = 0;
    }
    const r = this.#pool;
    const o = this.#poolAt;
    this.#poolAt += 8;
    // 48-bit ms timestamp | version 7 + 12-bit sequence | variant 10 + 62 random bits.
    const hi = Math.floor(ms / 0x10000);
    const lo = ms % 0x10000;
    return (
      HEX[(hi >>> 24) & 0xff]! +
      HEX[(hi >>> 16) & 0xff]! +
      HEX[(hi >>> 8) & 0xff]! +
      HEX[hi & 0xff]! +
      '-' +
      HEX[lo >>> 8]! +
      HEX[lo & 0xff]! +
      '-' +
      HEX[0x70 | ((this.#seq >> 8) & 0x0f)]! +
      HEX[this.#seq & 0xff]! +
      '-' +
      HEX[0x80 | (r[o]! & 0x3f)]! +
      HEX[r[o + 1]!]! +
      '-' +
      HEX[r[o + 2]!]! +
      HEX[r[o + 3]!]! +
      HEX[r[o + 4]!]! +
      HEX[r[o + 5]!]! +
      HEX[r[o + 6]!]! +
      HEX[r[o + 7]!]!
    );
  }
}
