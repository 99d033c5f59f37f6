import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CliError } from '../../src/node/cli-error.js';
import { parseValidatorNodeConfig } from '../../src/node/node-config.js';

const minimal = {
  name: 'node-1',
  dataDir: 'data',
  genesisFile: '../genesis.json',
  identity: { keyFile: 'node-1.key', certificateFile: 'node-1.pem' },
  trust: { rootsFile: '../ca/root.pem' },
  storagePlotFile: 'storage.plot',
};

const parse = (consensus: unknown) =>
  parseValidatorNodeConfig(
    { ...minimal, consensus },
    { baseDir: '/c/node-1', source: '/c/node-1/config.json', env: {} },
  );

describe('node configuration: consensus.signerStateMissing', () => {
  it('is absent by default (the driver refuses) and takes "refuse" or { waitHeights }', () => {
    assert.equal(parse({}).consensus.signerStateMissing, undefined);
    assert.equal(parse({ signerStateMissing: 'refuse' }).consensus.signerStateMissing, 'refuse');
    assert.deepEqual(
      parse({ signerStateMissing: { waitHeights: 5 } }).consensus.signerStateMissing,
      {
        waitHeights: 5,
      },
    );
  });

  it('refuses anything else, naming the field', () => {
    for (const signerStateMissing of [
      'wait',
      { waitHeights: 0 },
      { waitHeights: 1.5 },
      { waitHeights: 1_000_001 },
      { waitHeights: Number.MAX_SAFE_INTEGER },
      { waitHeights: 3, extra: true },
      {},
    ]) {
      assert.throws(
        () => parse({ signerStateMissing }),
        (error: unknown) => {
          assert.ok(error instanceof CliError, String(error));
          assert.match(error.message, /consensus\.signerStateMissing/);
          return true;
        },
        JSON.stringify(signerStateMissing),
      );
    }
  });
});
