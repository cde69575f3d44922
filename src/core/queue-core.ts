/**
 * What a `Queue` shares with the workers it creates: storage, handlers, events, defaults.
 * @internal
 */
import type { Clock } from '../internal/clock.js';
import type { IdGenerator } from '../internal/ids.js';
import type { Storage } from '../storage/storage.js';
import type { Logger } from '../types.js';
import type { Handler } from '../workflow/job-context.js';
import type { EnqueueDefaults } from './enqueue.js';
import type { EventHub } from './events.js';
import type { EventRelay } from './fleet-relay.js';
import type { TypeFlow } from './flow.js';
import type { MiddlewareLists } from './middleware.js';
import type { RetentionAges } from './retention.js';

/** A local listener woken when jobs become ready in a queue (in-process enqueue). */
export interface LocalWaker {
  wake(queue: string): void;
  /** The stored limits changed (this process's `setQueueLimits`): read them again now. */
  limitsChanged?(): void;
}

/** Shared state of one `Queue`. @internal */
export interface QueueCore {
  readonly storage: Storage;
  readonly handlers: Map<string, Handler<never, unknown>>;
  /**
   * Flow options of the registered types that have limits (`register(type, h, options)`); the
   * same map as `defaults.flows`. Absent: none (cores built without a `Queue`).
   */
  readonly flows?: Map<string, TypeFlow>;
  readonly hub: EventHub;
  /** Relays the hub's job events to the storage's change feed while a fleet subscriber listens. Absent: never (cores built without a `Queue`). */
  readonly relay?: EventRelay;
  readonly logger: Logger;
  readonly ids: IdGenerator;
  readonly defaults: EnqueueDefaults;
  readonly wakers: Set<LocalWaker>;
  /**
   * How long finished jobs are kept (`QueueOptions.retention`, resolved); `null` keeps every
   * finished job. Absent means the defaults (cores built without a `Queue`).
   */
  readonly retention?: RetentionAges | null;
  /** Run, step and enqueue middleware (`queue.use`, `useStep`, `useEnqueue`). Absent: none. */
  readonly middleware?: MiddlewareLists;
  /**
   * The host clock that job timeouts are armed on. Absent: the real one. Set once, before any
   * job runs, by the testing kit (`createTestQueue`), whose virtual clock moves only when a test
   * moves it.
   */
  clock?: Clock;
}
