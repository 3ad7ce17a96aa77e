// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', '.data/', '.tmp/', 'coverage/', 'test-artifacts/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // A promise nobody awaits is an error nobody sees.
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: ['**/gateway/**'], message: 'drivers/ and rules/ never import gateway/' }] },
      ],
    },
  },
  {
    // Only drivers/ and rules/ are barred from importing gateway/.
    files: ['gateway/**/*.ts', 'tests/**/*.ts', 'bench/**/*.ts', 'scripts/**/*.ts', 'config/**/*.ts'],
    rules: { 'no-restricted-imports': 'off' },
  },
  {
    // The site schema (config/) is built from the drivers' schemas: a driver never reaches back into it.
    files: ['drivers/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['**/gateway/**'], message: 'drivers/ and rules/ never import gateway/' },
            {
              group: ['**/config/**'],
              message:
                'drivers/ never import config/: config/ builds on the drivers (shared schema pieces are in drivers/common/primitives.ts)',
            },
          ],
        },
      ],
    },
  },
  { files: ['**/*.js'], languageOptions: { globals: { process: 'readonly', console: 'readonly' } } },
  {
    // The dashboard runs in the browser.
    files: ['gateway/http/dashboard/**/*.js'],
    languageOptions: {
      globals: {
        document: 'readonly',
        window: 'readonly',
        localStorage: 'readonly',
        navigator: 'readonly',
        fetch: 'readonly',
        alert: 'readonly',
        TextDecoder: 'readonly',
        URL: 'readonly',
        Blob: 'readonly',
        setTimeout: 'readonly',
        setInterval: 'readonly',
      },
    },
  },
);
