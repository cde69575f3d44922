/**
 * The storage conformance suite: the `Storage` contract (src/storage/storage.ts) as tests,
 * written once and run against every driver on a real database. A driver's test file calls
 * `runStorageConformance('sqlite', makeSqliteStorage)`.
 *
 * Each describe block makes one isolated storage (`make(label)`) and cleans it up after its
 * tests; tests inside a block use their own queue, type and schedule names. Time passes for
 * real (short delays awaited with `waitFor`), since the maker takes no injected clock.
 */
import { describe } from 'node:test';
import type { StorageMaker } from '../helpers/storages.js';
import { describeBulk } from './bulk.js';
import { describeClaim } from './claim.js';
import { describeDatabaseClock } from './database-clock.js';
import { describeEvents } from './events.js';
import { describeFanOutRaces } from './fan-out-races.js';
import { describeFanOutRetry } from './fan-out-retry.js';
import { describeFanOuts } from './fan-outs.js';
import { describeFinish } from './finish.js';
import { describeFlowClaim } from './flow-claim.js';
import { describeFlowInsert } from './flow-insert.js';
import { describeFlowLimits } from './flow-limits.js';
import { describeJobs } from './jobs.js';
import { describeLeases } from './leases.js';
import { describeListing } from './listing.js';
import { describeLockOrder } from './lock-order.js';
import { describeMigrate } from './migrate.js';
import { describeOps } from './ops.js';
import { describeParentFailure } from './parent-failure.js';
import { describeProgress } from './progress.js';
import { describeProgressAdversarial } from './progress-adversarial.js';
import { describeRetention } from './retention.js';
import { describeRetryFromStep } from './retry-from-step.js';
import { describeSchedules } from './schedules.js';
import { describeSignals } from './signals.js';
import { describeSteps } from './steps.js';
import { describeQueuesAndWorkers } from './workers.js';

/** Registers the whole conformance suite for one driver under `storage conformance: <name>`. */
export function runStorageConformance(name: string, make: StorageMaker): void {
  describe(`storage conformance: ${name}`, () => {
    describeMigrate(make);
    describeJobs(make);
    describeClaim(make);
    describeFinish(make);
    describeLeases(make);
    describeOps(make);
    describeSteps(make);
    describeFanOuts(make);
    describeFanOutRaces(make);
    describeFanOutRetry(make);
    describeParentFailure(make);
    describeLockOrder(make);
    describeSignals(make);
    describeSchedules(make);
    describeDatabaseClock(make);
    describeRetention(make);
    describeListing(make);
    describeBulk(make);
    describeRetryFromStep(make);
    describeQueuesAndWorkers(make);
    describeFlowLimits(make);
    describeFlowClaim(make);
    describeFlowInsert(make);
    describeEvents(make);
    describeProgress(make);
    describeProgressAdversarial(make);
  });
}
