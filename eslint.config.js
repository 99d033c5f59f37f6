// Lint rules, including the layer rule from ARCHITECTURE.md: imports only point downward.
import tseslint from 'typescript-eslint';

/** Layers, lowest first. A file in a layer may import only from its own layer or lower ones. */
const layers = [
  ['crypto', 'codec'],
  ['storage'],
  ['stoq'],
  ['consensus'],
  ['trustchain', 'discovery', 'caesar', 'assets', 'kv'],
  ['faces'],
  ['node'],
];

const layerRules = layers.flatMap((folders, index) => {
  const above = layers.slice(index + 1).flat();
  if (above.length === 0) return [];
  const patterns = above.flatMap((folder) => [`**/${folder}/**`, `**/${folder}`]);
  return folders.map((folder) => ({
    files: [`src/${folder}/**/*.ts`],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: patterns,
              message: `src/${folder} is layer ${index + 1}; imports must point down a layer (see ARCHITECTURE.md).`,
            },
          ],
        },
      ],
    },
  }));
});

export default tseslint.config(
  { ignores: ['dist/**', 'coverage/**', 'node_modules/**', 'bin/**', '.hypermesh/**', '.tmp/**'] },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-console': 'off',
    },
  },
  ...layerRules,
);
