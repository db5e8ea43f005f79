// ESLint 9 flat config. TypeScript in src/ gets the recommended rules plus the few type-aware
// rules that catch real bugs in a job queue (a promise nobody awaits loses a settle or an error);
// the full type-checked preset is left out to keep `npm run lint` fast. Scripts, tests and
// benchmarks are plain ES modules for Node.
import js from '@eslint/js'
import { defineConfig, globalIgnores } from 'eslint/config'
import globals from 'globals'
import tseslint from 'typescript-eslint'

const unusedVars = {
  argsIgnorePattern: '^_',
  varsIgnorePattern: '^_',
  caughtErrors: 'none',
  ignoreRestSiblings: true,
}

export default defineConfig(
  globalIgnores([
    'dist/',
    'target/',
    'npm/',
    'crates/',
    'index.js', // napi-generated loader
    'index.d.ts',
    '**/*.tmp*',
  ]),
  js.configs.recommended,
  {
    files: ['src/**/*.ts'],
    extends: [tseslint.configs.recommended],
    languageOptions: {
      parserOptions: {
        projectService: true,
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: false }],
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/no-unused-vars': ['error', unusedVars],
      // src/internal/paths.cjs.ts hands out the CommonJS `require` on purpose.
      '@typescript-eslint/no-require-imports': 'off',
    },
  },
  {
    files: ['**/*.{mjs,cjs,js}'],
    languageOptions: {
      ecmaVersion: 'latest',
      globals: { ...globals.node },
    },
    rules: {
      'no-unused-vars': ['error', unusedVars],
    },
  },
  {
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs' },
  },
  {
    // The dashboard's page script runs in the browser, as a classic script.
    files: ['assets/dashboard/*.js'],
    languageOptions: { sourceType: 'script', globals: { ...globals.browser } },
  },
)
