// Flat config: typescript-eslint's type-aware recommended rules over our
// sources, plus the import boundaries the architecture relies on (README,
// "Building"): the wire layer imports nothing of ours but the error root,
// the client never imports the daemon, the daemon never imports the client
// or the CLI, the file helpers in src/fs import none of the layers, and
// there are no import cycles.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import importX from 'eslint-plugin-import-x';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';

const layer = (from, ...forbidden) => ({
  files: [`src/${from}/**/*.ts`],
  rules: {
    'import-x/no-restricted-paths': [
      'error',
      { zones: forbidden.map((f) => ({ target: `./src/${from}`, from: `./src/${f}`, message: `src/${from} must not import src/${f}` })) },
    ],
  },
});

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', '*.js'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    plugins: { 'import-x': importX },
    settings: {
      'import-x/resolver-next': [createTypeScriptImportResolver({ project: './tsconfig.json' })],
      // no-cycle parses the modules it follows: with the TypeScript parser, not espree.
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts'] },
    },
  },
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/explicit-module-boundary-types': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      '@typescript-eslint/no-floating-promises': [
        'error',
        // node:test's test()/describe() return promises the runner awaits itself.
        { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['test', 'describe', 'it', 'suite', 'before', 'after', 'beforeEach', 'afterEach'] }] },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
      // Async methods that implement a promise-returning interface need no await.
      '@typescript-eslint/require-await': 'off',
      'no-constant-condition': ['error', { checkLoops: false }],
      'import-x/no-cycle': 'error',
    },
  },
  layer('dns', 'config', 'daemon', 'client', 'cli', 'net', 'fs', 'clock.ts'),
  layer('fs', 'dns', 'config', 'daemon', 'client', 'cli', 'net'),
  layer('config', 'daemon', 'client', 'cli'),
  layer('net', 'config', 'daemon', 'client', 'cli'),
  layer('client', 'daemon', 'cli'),
  layer('daemon', 'client', 'cli'),
  {
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: { '@typescript-eslint/explicit-module-boundary-types': 'off' },
  },
);
