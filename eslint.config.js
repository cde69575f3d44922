// ESLint flat config: typescript-eslint recommended rules plus the layer boundaries of docs/ARCHITECTURE.md.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// Layers of docs/ARCHITECTURE.md, top to bottom: index.ts and testing/ (entry points) → queue/
// (the public facade) → worker/ → workflow/ → core/, with scheduler/ beside worker/ → storage/
// (its contract storage.ts and codec.ts; the dialect folders behind it) → internal/ → types.ts and
// errors.ts. An import may point down, never up; every folder's own files import one another.
// workflow/job-context.ts holds the handler's public types and imports only types.ts, so any layer
// may name them.
const up = (folder) => [`**/${folder}/**`, `**/${folder}`];
const below = 'Dependencies point downward only (docs/ARCHITECTURE.md, "Layers").';
/** Everything under storage/ but its contract: storage.ts and codec.ts. */
const storageInside = ['**/storage/**', '!**/storage/storage.js', '!**/storage/codec.js'];
/** workflow/ but its public types file. */
const workflowEngine = ['**/workflow/**', '!**/workflow/job-context.js'];
/** The package's entry points, as seen from a file directly inside a src/ folder. */
const entry = ['../index.js', ...up('testing')];

/** One `no-restricted-imports` block per layer; a file matches exactly one of them. */
function layerRules() {
  const block = (files, groups, ignores = []) => ({
    files,
    ignores,
    rules: { 'no-restricted-imports': ['error', { patterns: groups.map(([group, what]) => ({ group, message: `${what} ${below}` })) }] },
  });
  const engine = [...up('queue'), ...up('worker'), ...up('workflow'), ...up('scheduler'), ...up('core')];
  return [
    block(['src/queue/**'], [
      [entry, 'The facade must not import an entry point.'],
      [storageInside, 'The facade uses storage only through storage/storage.ts and storage/codec.ts.'],
    ]),
    block(['src/worker/**'], [
      [[...entry, ...up('queue'), ...up('scheduler')], 'worker/ must not import the facade, the scheduler or an entry point.'],
      [storageInside, 'The engine uses storage only through storage/storage.ts and storage/codec.ts.'],
    ]),
    block(['src/scheduler/**'], [
      [[...entry, ...up('queue'), ...up('worker'), ...workflowEngine], 'scheduler/ must not import the facade, the worker, workflows or an entry point.'],
      [storageInside, 'The engine uses storage only through storage/storage.ts and storage/codec.ts.'],
    ]),
    block(['src/workflow/**'], [
      [[...entry, ...up('queue'), ...up('worker'), ...up('scheduler')], 'workflow/ must not import the facade, the worker, the scheduler or an entry point.'],
      [storageInside, 'The engine uses storage only through storage/storage.ts and storage/codec.ts.'],
    ], ['src/workflow/job-context.ts']),
    block(['src/core/**'], [
      [[...entry, ...up('queue'), ...up('worker'), ...up('scheduler'), ...workflowEngine], 'core/ must not import the facade, the engine or an entry point.'],
      [storageInside, 'core/ uses storage only through storage/storage.ts and storage/codec.ts.'],
    ]),
    block(['src/storage/**'], [[[...up('testing'), ...engine], 'storage/ must not import the engine, the facade or testing/.']]),
    block(['src/internal/**'], [[['../index.js', ...up('testing'), ...engine, ...up('storage')], 'internal/ must not import storage, the engine or the facade.']]),
    block(['src/dashboard/*.ts'], [[['../*', '!../index.js'], 'dashboard/ uses only the public API (../index.js).']]),
    // The browser's code may name the library's public types (type-only imports, erased by the bundler), never its values.
    { files: ['src/dashboard/ui/**'], rules: { '@typescript-eslint/no-restricted-imports': ['error', { patterns: [{ group: ['../../*'], allowTypeImports: true, message: "dashboard/ui/ is the browser's code: it talks to the server over HTTP and imports none of it (public types excepted, with `import type`)." }] }] } },
    block(['src/otel/**'], [[['../*', '!../index.js'], 'otel/ uses only the public API (../index.js) and @opentelemetry/api.']]),
    // createTestQueue() builds its in-memory SQLite storage: the one driver testing/ may import.
    block(['src/testing/**'], [[[...storageInside, '!**/storage/sqlite', '**/storage/sqlite/*', '!**/storage/sqlite/sqlite-storage.js', '../index.js'], 'testing/ uses the facade, core/, storage/storage.ts and the SQLite driver only.']]),
    block(['src/types.ts', 'src/errors.ts'], [[['./*', '../*'], 'types.ts and errors.ts import nothing.']]),
    block(['src/workflow/job-context.ts'], [[['./*', '../*', '!../types.js'], 'workflow/job-context.ts imports only types.ts.']]),
  ];
}

export default tseslint.config(
  // examples/testing/{vitest,jest}.test.ts are for runners this package does not depend on (excluded from tsconfig.json too).
  { ignores: ['.tmp/**', 'dist/**', 'dist-examples/**', 'node_modules/**', 'bench/**', 'coverage/**', '**/*.generated.ts', 'examples/testing/vitest.test.ts', 'examples/testing/jest.test.ts'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setImmediate: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', Buffer: 'readonly', URL: 'readonly', NodeJS: 'readonly', AbortController: 'readonly', AbortSignal: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  {
    // Type-aware checks: a promise nobody awaits or catches is an unhandled rejection waiting to happen.
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // node:test registers suites and tests synchronously; the promises they return are the runner's.
      '@typescript-eslint/no-floating-promises': ['error', { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['describe', 'it', 'test', 'suite', 'before', 'after', 'beforeEach', 'afterEach'] }] }],
      '@typescript-eslint/no-misused-promises': 'error',
      // Tests and scripts may let a `default` stand for the cases they do not care about.
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }],
    },
  },
  {
    // The library names every member of a union it switches over: a new event type, outcome or
    // status must be placed by hand, never fall into a `default` silently.
    files: ['src/**/*.ts'],
    rules: { '@typescript-eslint/switch-exhaustiveness-check': 'error' },
  },
  {
    files: ['src/**/*.ts'],
    rules: { 'no-restricted-syntax': ['error', { selector: 'ExportDefaultDeclaration', message: 'No default exports.' }] },
  },
  ...layerRules(),
);
