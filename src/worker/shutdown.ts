/**
 * SIGINT/SIGTERM handling: the first signal starts a graceful stop. Handlers are removed
 * when the worker stops, so the process's default behaviour comes back.
 * @internal
 */

/** Installs handlers calling `onSignal`; returns their remover. @internal */
export function installSignalHandlers(onSignal: () => void): () => void {
  const handler = (): void => onSignal();
  process.once('SIGINT', handler);
  process.once('SIGTERM', handler);
  return () => {
    process.removeListener('SIGINT', handler);
    process.removeListener('SIGTERM', handler);
  };
}
