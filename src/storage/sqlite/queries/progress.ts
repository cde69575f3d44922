/**
 * SQLite statements of job progress (`progress-ops.ts`, `Storage.jobProgressMany`).
 * @internal
 */
import { FENCE } from './common.js';

/**
 * Fenced: stores a run's latest progress (value, message, and @now as its time); changes nothing
 * else. Params: @id, @workerId, @runCount, @value, @message, @now. Result: changes (1 when applied).
 */
export const JOB_PROGRESS = `
UPDATE sdj_jobs SET progress_value = @value, progress_message = @message, progress_at = @now
WHERE ${FENCE}`;
