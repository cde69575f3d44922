/**
 * The bounded counts (`jobCountByStatusCapped`, `queueSummaryCapped`) on every driver of the
 * matrix: the conformance block of test/conformance/bounded-counts.ts, run per driver.
 */
import { describe } from 'node:test';
import { describeBoundedCounts } from '../conformance/bounded-counts.js';
import { storageMatrix } from '../helpers/storages.js';

for (const [name, make] of storageMatrix()) describe(`storage conformance (bounded counts): ${name}`, () => describeBoundedCounts(make));
