/**
 * Storage types of fleet events: the change feed `sdj_events` that relays append to while some
 * subscriber listens, and the subscribers' presence rows. Part of the storage contract
 * ({@link Storage}); re-exported by `storage.ts`.
 *
 * Feed ids are dense and increase in commit order: every append takes its ids from a head counter
 * inside its own write, so appends serialize until they commit, a rolled-back append gives its ids
 * back, and a reader never sees id N + 1 before id N. A reader that has seen every id up to N
 * and then reads N + k therefore knows that k - 1 events were pruned before it read them.
 * @module
 */

/** One event to append to the feed. */
export interface EventAppendItem {
  /** The event's `type` (1 to 64 characters). */
  type: string;
  /** The job the event is about, or null. */
  jobId: string | null;
  /** Which process relayed it (1 to 255 characters). */
  origin: string;
  /** The event as JSON text, stored and returned byte for byte. */
  payloadJson: string;
}

/** `eventAppendMany` parameters. */
export interface EventAppendManyParams {
  /** Appended in this order, with consecutive ids. */
  events: EventAppendItem[];
}

/** A stored feed event. */
export interface EventRow extends EventAppendItem {
  /** Its feed position (see the module docs). */
  id: number;
  /** When it was stored (ms, storage clock). */
  at: number;
}

/** `eventReadAfter` parameters. */
export interface EventReadAfterParams {
  /** Events with a greater id are read (0: from the oldest kept). */
  afterId: number;
  /** Most events returned: 1 to 10000. */
  limit: number;
}

/**
 * `eventPrune` parameters; at least one is given. An event is deleted when either says so.
 */
export interface EventPruneParams {
  /** Deletes the events stored more than this many ms ago (storage clock). */
  olderThanMs?: number;
  /** Deletes every event but the newest `keep` ids (ids given, not rows left: see the module docs). */
  keep?: number;
}

/** `eventSubscriberBeat` parameters. */
export interface EventSubscriberBeatParams {
  /** The subscriber's id (1 to 255 characters). */
  id: string;
  /** Its presence row expires this many ms after the beat (1 to 86400000). */
  ttlMs: number;
}

/** `eventSubscriberBeat` result. */
export interface EventSubscriberBeatResult {
  /** The newest id given to an event when the beat ran (0 when none ever was). */
  headId: number;
}
