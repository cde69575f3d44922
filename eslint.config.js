// ESLint flat config: typescript-eslint recommended rules plus the layer boundaries of docs/ARCHITECTURE.md.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const dialects = ['**/storage/sqlite/**', '**/storage/postgres/**', '**/storage/mysql/**'];

export default tseslint.config(
  { ignores: ['.tmp/**', 'dist/**', 'dist-examples/**', 'node_modules/**', 'bench/**', 'coverage/**', '**/*.generated.ts'] },
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
    files: ['src/**/*.ts'],
    rules: { 'no-restricted-syntax': ['error', { selector: 'ExportDefaultDeclaration', message: 'No default exports.' }] },
  },
  {
    // The engine talks to storage only through the Storage interface.
    files: ['src/queue/**', 'src/worker/**', 'src/workflow/**', 'src/scheduler/**', 'src/testing/**'],
    rules: { 'no-restricted-imports': ['error', { patterns: [{ group: dialects, message: 'Import storage/storage.ts, never a dialect folder.' }] }] },
  },
  {
    // Storage imports only types, errors, internal and its own siblings.
    files: ['src/storage/**'],
    rules: { 'no-restricted-imports': ['error', { patterns: [{ group: ['**/queue/**', '**/worker/**', '**/workflow/**', '**/scheduler/**'], message: 'storage/ must not depend on the engine.' }] }] },
  },
);
