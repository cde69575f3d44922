/**
 * Time-ordered ids (UUIDv7, RFC 9562). Within one process ids are strictly increasing even
 * when many are made in the same millisecond, so ordering by id keeps batch order (FIFO).
 * @internal
 */
import { randomBytes } from 'node:crypto';

/** Generates UUIDv7 strings; one instance per owner, no module-level state. @internal */
export class IdGenerator {
  #lastMs = 0;
  #seq = 0;

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
    const b = randomBytes(16);
    b.writeUIntBE(ms, 0, 6);
    b[6] = 0x70 | ((this.#seq >> 8) & 0x0f);
    b[7] = this.#seq & 0xff;
    b[8] = 0x80 | ((b[8] ?? 0) & 0x3f);
    const h = b.toString('hex');
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }
}
