/**
 * In-memory fakes for unit tests of the engine's modules (claim loop, heartbeat, executor,
 * replay): a `Storage` that has only the methods a test gives it, claimed job rows, a
 * `QueueCore` with a real in-process event hub, a completer that records outcomes, and a way to
 * let every pending promise callback run while timers are mocked.
 */
import { EventHub } from '../../../src/core/events.js';
import type { QueueCore } from '../../../src/core/queue-core.js';
import { IdGenerator } from '../../../src/internal/ids.js';
import type { JobFinishItem, JobRow, Storage } from '../../../src/storage/storage.js';
import type { Logger } from '../../../src/types.js';
import type { Completer, LeaseHolder, StoredOutcome } from '../../../src/worker/completer.js';
import type { Handler } from '../../../src/workflow/job-context.js';

/** The real `setImmediate`, taken before any test mocks timers. */
const realImmediate = setImmediate;

/**
 * Lets every promise callback that is ready run (a real event-loop turn, which mocked timers do
 * not touch): after it, a fake call that was answered has been seen by the code under test.
 */
export async function flush(turns = 3): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise<void>((resolve) => realImmediate(resolve));
}

/** A logger that keeps what it is told. */
export function recordingLogger(): Logger & { lines: { level: string; message: string }[] } {
  const lines: { level: string; message: string }[] = [];
  const at = (level: string) => (message: string) => void lines.push({ level, message });
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/**
 * A `Storage` with only the given methods; reading any other member throws, so a test fails
 * when the module under test uses more of the storage than the test expects.
 */
export function fakeStorage(methods: Partial<Storage>): Storage {
  return new Proxy(methods as Storage, {
    get(target, prop) {
      if (typeof prop === 'symbol' || prop === 'then' || prop in target) return Reflect.get(target, prop) as unknown;
      throw new Error(`unexpected use of storage.${prop}`);
    },
  });
}

let seq = 0;

/** A claimed (`running`) job row with defaults: type `t`, queue `q`, attempt 1, run 1, no payloads. */
export function jobRow(overrides: Partial<JobRow> = {}): JobRow {
  seq++;
  return {
    id: `job-${seq}`,
    type: 't',
    queue: 'q',
    status: 'running',
    priority: 0,
    attempt: 1,
    maxRetries: 3,
    runCount: 1,
    argsJson: null,
    resultJson: null,
    metaJson: null,
    lastError: null,
    runAt: 1_000,
    createdAt: 1_000,
    startedAt: 2_000,
    completedAt: null,
    timeoutMs: null,
    uniqueKey: null,
    tenant: null,
    parentId: null,
    fanOutId: null,
    fanOutIndex: null,
    lockedBy: 'w',
    leaseExpiresAt: 32_000,
    heartbeatAt: 2_000,
    wakeAt: null,
    waitSignal: null,
    concurrencyKey: null,
    rateKey: null,
    limited: false,
    debounceKey: null,
    progressValue: null,
    progressMessage: null,
    progressAt: null,
    ...overrides,
  };
}

/** A `QueueCore` over `storage` with the given handlers and a real (in-memory) event hub. */
export function fakeCore(storage: Storage, handlers: Record<string, (args: never, ctx: never) => unknown> = {}, logger: Logger = recordingLogger()): QueueCore {
  return {
    storage,
    handlers: new Map(Object.entries(handlers)) as Map<string, Handler<never, unknown>>,
    hub: new EventHub(logger),
    logger,
    ids: new IdGenerator(),
    defaults: { retries: 3, queue: 'default', maxPayloadBytes: 1_000_000 },
    wakers: new Set(),
  };
}

/** One outcome handed to the fake completer. */
export interface FinishCall {
  item: JobFinishItem;
  run: LeaseHolder;
}

/**
 * A completer that records each outcome and answers with `answer` (default: stored at time
 * 5000 as given; `undefined` means the run no longer owned the job).
 */
export function fakeCompleter(answer: (item: JobFinishItem) => StoredOutcome | undefined = (item) => ({ item, at: 5_000 })): {
  completer: Completer;
  calls: FinishCall[];
} {
  const calls: FinishCall[] = [];
  const fake: Pick<Completer, 'finish'> = {
    finish: async (item, run) => {
      calls.push({ item, run });
      return answer(item);
    },
  };
  // The executor calls only finish(); the class's private fields make a structural fake need a cast.
  return { completer: fake as Completer, calls };
}
