/** Logger helpers. @internal */
import type { Logger } from '../types.js';

const noop = (): void => {};

/** A logger that drops everything: the default. @internal */
export const silentLogger: Logger = Object.freeze({ debug: noop, info: noop, warn: noop, error: noop });
