import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';

// The layer rule from ARCHITECTURE.md ("imports only point downward") is an ESLint rule; these
// tests prove it fires, so a broken config cannot pass silently.
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const eslint = new ESLint({ cwd: root });

async function layerErrors(file: string, source: string): Promise<string[]> {
  const [result] = await eslint.lintText(source, { filePath: path.join(root, file) });
  assert.ok(result, 'eslint returned no result');
  return result.messages.filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message);
}

describe('layer lint rule', () => {
  it('rejects an import that points up a layer', async () => {
    const errors = await layerErrors(
      'src/crypto/example.ts',
      "import type { Transport } from '../stoq/transport.js';\nexport type T = Transport;\n",
    );
    assert.equal(errors.length, 1);
    assert.match(errors[0] ?? '', /layer 1/);
  });

  it('rejects node/ imports from stoq/', async () => {
    const errors = await layerErrors(
      'src/stoq/example.ts',
      "import { main } from '../node/cli.js';\nexport const m = main;\n",
    );
    assert.equal(errors.length, 1);
  });

  it('allows imports that point down or stay in the layer', async () => {
    const errors = await layerErrors(
      'src/stoq/example.ts',
      [
        "import { encodeCanonical } from '../codec/cbor.js';",
        "import type { Transport } from './transport.js';",
        'export const e = encodeCanonical;',
        'export type T = Transport;',
        '',
      ].join('\n'),
    );
    assert.deepEqual(errors, []);
  });
});
