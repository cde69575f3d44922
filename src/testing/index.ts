/**
 * Helpers for users' own tests: `simple-durable-jobs/testing`.
 * - {@link createTestQueue}: a queue on in-memory SQLite and a virtual clock (schedules, sleeps,
 *   delays, retries and timeouts run instantly and deterministically).
 * - {@link requireEnqueued}: asserts that a job was enqueued.
 * - {@link runJobOnce}: runs one attempt of a job with a temporary worker.
 * @module
 */
export { createTestQueue, TEST_CLOCK_START } from './test-queue.js';
export type { TestClock, TestQueue, TestQueueOptions, TestSleepOptions } from './test-queue.js';
export type { TestRun, TestRunOutcome } from './test-driver.js';
export { requireEnqueued } from './require-enqueued.js';
export type { RequireEnqueuedOptions } from './require-enqueued.js';
export { runJobOnce } from './run-job-once.js';
export type { RunJobOnceOptions } from './run-job-once.js';
