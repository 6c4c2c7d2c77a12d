// Lint rules. Besides the recommended sets, one rule keeps the layering of docs/ARCHITECTURE.md
// true: src/core is pure logic and may import neither node:* modules nor the outer rooms.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'native-free/dist/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      eqeqeq: ['error', 'always', { null: 'ignore' }],
    },
  },
  {
    files: ['src/core/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['node:*'], message: 'src/core is pure logic: no node:* imports.' },
            {
              group: ['../*/**', '!../core/**'],
              message: 'src/core imports nothing from the outer rooms.',
            },
          ],
        },
      ],
    },
  },
);
