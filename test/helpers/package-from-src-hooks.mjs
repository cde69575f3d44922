// Resolve hook of package-from-src.mjs: the package's import specifiers → files under src/.
const SRC = new URL('../../src/', import.meta.url);
const MAP = new Map([
  ['simple-durable-jobs', 'index.ts'],
  ['simple-durable-jobs/testing', 'testing/index.ts'],
  ['simple-durable-jobs/otel', 'otel/index.ts'],
]);

export async function resolve(specifier, context, next) {
  const target = MAP.get(specifier);
  return next(target === undefined ? specifier : new URL(target, SRC).href, context);
}
