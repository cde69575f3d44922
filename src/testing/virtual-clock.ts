/**
 * The testing kit's virtual clock: a time that moves only when the kit moves it, and one-shot
 * timers that fire only when the kit fires them (in due order, ties in the order they were
 * armed). It stands for the host clock (`Clock`) of the queue's job timeouts, the storage's clock
 * (leases, run-at, durable timers, fan-out and signal deadlines, schedules) and `t.clock.sleep`.
 * @internal
 */
import type { Clock, TimerHandle } from '../internal/clock.js';

/** One armed timer. */
interface VirtualTimer {
  readonly due: number;
  readonly seq: number;
  readonly fn: () => void;
  live: boolean;
}

/** A clock whose time is set by hand and whose timers fire when told. @internal */
export class VirtualClock implements Clock {
  #now: number;
  #seq = 0;
  /** Armed timers, sorted by (due, seq). */
  readonly #timers: VirtualTimer[] = [];

  /** @param start the first reading (ms since the epoch) */
  constructor(start: number) {
    this.#now = start;
  }

  /** The current virtual time (ms since the epoch). */
  now(): number {
    return this.#now;
  }

  /** Arms a timer `ms` from the current virtual time (at once for 0, less or not a number). */
  setTimeout(fn: () => void, ms: number): TimerHandle {
    const delay = typeof ms === 'number' && ms > 0 ? ms : 0;
    const t: VirtualTimer = { due: this.#now + delay, seq: ++this.#seq, fn, live: true };
    // Binary search for the first timer after t (due, then seq: t is the newest of its instant).
    let lo = 0;
    let hi = this.#timers.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.#timers[mid]?.due ?? Infinity) <= t.due) lo = mid + 1;
      else hi = mid;
    }
    this.#timers.splice(lo, 0, t);
    return t;
  }

  /** Disarms a timer (nothing when it already fired or was cleared). */
  clearTimeout(handle: TimerHandle): void {
    const t = handle as VirtualTimer;
    if (!t.live) return;
    t.live = false;
    const i = this.#timers.indexOf(t);
    if (i >= 0) this.#timers.splice(i, 1);
  }

  /** The earliest armed timer's due time, if any. */
  nextDue(): number | undefined {
    return this.#timers[0]?.due;
  }

  /** Sets the time (the kit moves it forward only). */
  moveTo(ms: number): void {
    this.#now = ms;
  }

  /**
   * Fires, in order, every timer due at or before now — also those armed by a callback for now.
   * Returns how many fired.
   */
  fireDue(): number {
    let fired = 0;
    for (let t = this.#timers[0]; t !== undefined && t.due <= this.#now; t = this.#timers[0]) {
      this.#timers.shift();
      t.live = false;
      fired++;
      t.fn();
    }
    return fired;
  }

  /** Disarms every timer (the kit is closing). */
  clearAll(): void {
    for (const t of this.#timers) t.live = false;
    this.#timers.length = 0;
  }
}
