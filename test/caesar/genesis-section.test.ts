import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  CaesarGenesisError,
  CaesarGenesisErrorCode,
  caesarGenesisFromApp,
  caesarGenesisToJson,
  parseAddress,
} from '../../src/caesar/index.js';
import { encodeCanonical } from '../../src/codec/cbor.js';
import { toHex } from '../../src/crypto/bytes.js';
import { sha256 } from '../../src/crypto/hash.js';
import { ConsensusError, ConsensusErrorCode } from '../../src/consensus/errors.js';
import {
  MAX_GENESIS_APP_BYTES,
  MAX_GENESIS_APP_DEPTH,
  genesisHash,
  genesisToJson,
  parseGenesisJson,
  type GenesisAppValue,
  type GenesisDocument,
} from '../../src/consensus/genesis.js';

/**
 * The genesis document's `app` section (issue 6 §1: the token and its allocations are in the
 * genesis file): opaque, canonical JSON data covered by the genesis hash, parsed by Caesar.
 */

/** A fixed document: every byte chosen here, so its hash is a known answer. */
function fixedDoc(): GenesisDocument {
  return {
    chainId: 'golden-chain',
    genesisTime: 1_700_000_000_000,
    validators: [1, 2].map((i) => {
      const pqPublicKey = new Uint8Array(1793).fill(i);
      pqPublicKey[0] = 0x0a;
      return {
        name: `node-${i}`,
        publicKey: new Uint8Array(32).fill(i),
        pqPublicKey,
        power: 10,
        storageRoot: new Uint8Array(32).fill(0x40 + i),
      };
    }),
    consensus: {
      timeouts: {
        proposeMs: 1000,
        proposeDeltaMs: 500,
        prevoteMs: 500,
        prevoteDeltaMs: 250,
        precommitMs: 500,
        precommitDeltaMs: 250,
      },
      commitDelayMs: 200,
      maxBlockBytes: 1_048_576,
      maxBlockTxs: 1000,
      requirePq: true,
    },
    proof: {
      space: { blockCount: 64, slotsPerBlock: 8, slotDifficulty: 8, challengeCount: 4 },
      work: { stampDifficulty: 8 },
      time: { iterations: 16384, checkpointInterval: 1024 },
    },
  };
}

/**
 * The hash of `fixedDoc()` computed by the code before the `app` section existed (commit
 * 4070954): a document without the section must keep it, or every existing chain would lose
 * its first block's parent.
 */
const GOLDEN_HASH_WITHOUT_APP = 'c4d2a28cca0d837d882a8757e8c00cdd4ec2f31e90519f02207786eaa3a13df4';

const A = 'aa'.repeat(32);
const B = 'bb'.repeat(32);

function caesarSection(amountA = '600', amountB = '400'): GenesisAppValue {
  const supply = (BigInt(amountA) + BigInt(amountB)).toString();
  return {
    token: { name: 'Caesar', symbol: 'CSR', decimals: 6, supply },
    allocations: [
      { address: A, amount: amountA },
      { address: B, amount: amountB },
    ],
  };
}

function withApp(app: unknown): string {
  const json = JSON.parse(genesisToJson(fixedDoc())) as Record<string, unknown>;
  json.app = app;
  return JSON.stringify(json);
}

function assertInvalid(text: string, pattern: RegExp): void {
  assert.throws(
    () => parseGenesisJson(text),
    (error: unknown) => {
      assert.ok(error instanceof ConsensusError, `expected ConsensusError, got ${String(error)}`);
      assert.equal(error.code, ConsensusErrorCode.INVALID_GENESIS);
      assert.match(error.message, pattern);
      return true;
    },
  );
}

describe('genesis app section', () => {
  it('leaves the hash of a document without the section unchanged (known answer)', () => {
    const doc = fixedDoc();
    assert.equal(toHex(genesisHash(doc)), GOLDEN_HASH_WITHOUT_APP);
    const parsed = parseGenesisJson(genesisToJson(doc));
    assert.equal('app' in parsed, false, 'no app key appears when the file has none');
    assert.equal(toHex(genesisHash(parsed)), GOLDEN_HASH_WITHOUT_APP);
    assert.equal('app' in JSON.parse(genesisToJson(doc)), false);
  });

  it('hashes the section: the map gains an "app" entry, and any change in it changes the hash', () => {
    const doc = fixedDoc();
    const app = { caesar: caesarSection() };
    const hash = toHex(genesisHash({ ...doc, app }));
    assert.notEqual(hash, GOLDEN_HASH_WITHOUT_APP);
    // Independently: SHA-256 of the canonical CBOR of the old map plus `app`.
    const json = JSON.parse(genesisToJson(doc)) as Record<string, unknown>;
    const expected = sha256(
      encodeCanonical({
        domain: 'hypermesh/consensus/genesis/v1',
        chainId: doc.chainId,
        genesisTime: doc.genesisTime,
        validators: doc.validators.map((v) => ({ ...v })),
        consensus: json.consensus,
        proof: json.proof,
        app,
      }),
    );
    assert.equal(hash, toHex(expected));

    const variants: GenesisAppValue[] = [
      { caesar: caesarSection('601', '399') },
      { caesar: caesarSection('600', '401') },
      { caesar: { ...(caesarSection() as object), token: { name: 'Other' } } },
      { other: caesarSection() },
    ];
    const hashes = new Set(
      variants.map((variant) =>
        toHex(genesisHash({ ...doc, app: variant as GenesisDocument['app'] })),
      ),
    );
    assert.equal(hashes.size, variants.length);
    assert.ok(!hashes.has(hash));
  });

  it('round-trips through the JSON file, and Caesar parses its part', () => {
    const text = withApp({ caesar: caesarSection() });
    const doc = parseGenesisJson(text);
    assert.deepEqual(doc.app, { caesar: caesarSection() });
    assert.equal(genesisToJson(doc), genesisToJson(parseGenesisJson(genesisToJson(doc))));
    assert.equal(toHex(genesisHash(parseGenesisJson(genesisToJson(doc)))), toHex(genesisHash(doc)));
    const caesar = caesarGenesisFromApp(doc.app);
    assert.deepEqual(caesar, {
      token: { name: 'Caesar', symbol: 'CSR', decimals: 6, supply: 1000n },
      allocations: [
        { address: parseAddress(A), amount: 600n },
        { address: parseAddress(B), amount: 400n },
      ],
    });
    assert.deepEqual(caesarGenesisToJson(caesar as NonNullable<typeof caesar>), caesarSection());
    assert.equal(caesarGenesisFromApp(undefined), undefined);
    assert.equal(caesarGenesisFromApp({ other: 1 }), undefined);
  });

  it('refuses sections that are not canonical JSON data, naming the path', () => {
    assertInvalid(withApp({}), /genesis\.app: expected at least one module section/);
    assertInvalid(withApp([]), /genesis\.app: expected record/);
    assertInvalid(withApp(null), /genesis\.app/);
    assertInvalid(withApp({ Caesar: {} }), /genesis\.app.*expected a module name/);
    assertInvalid(
      withApp({ caesar: { token: { decimals: 1.5 } } }),
      /genesis\.app\.caesar\.token\.decimals: got the number 1\.5; numbers here are integers/,
    );
    assertInvalid(
      withApp({ caesar: { supply: 2 ** 60 } }),
      /genesis\.app\.caesar\.supply: got the number .*write amounts and fractions as decimal strings/,
    );
    assertInvalid(
      withApp({ caesar: { list: [1, 2, -1e-7] } }),
      /genesis\.app\.caesar\.list\[2\]: got the number/,
    );
    // JSON text can escape a lone surrogate; it has no UTF-8 form, so no canonical encoding.
    const json = JSON.parse(genesisToJson(fixedDoc())) as Record<string, unknown>;
    const surrogate = `${JSON.stringify(json).slice(0, -1)},"app":{"caesar":{"name":"\\ud800"}}}`;
    assertInvalid(surrogate, /genesis\.app\.caesar\.name: string contains a lone UTF-16 surrogate/);
    assertInvalid(
      `${JSON.stringify(json).slice(0, -1)},"app":{"caesar":{"x":-0}}}`,
      /genesis\.app\.caesar\.x: got the number 0/,
    );

    let deep: unknown = 'bottom';
    for (let i = 0; i < MAX_GENESIS_APP_DEPTH + 1; i++) deep = [deep];
    assertInvalid(withApp({ caesar: deep }), /nested deeper than 32 levels/);
    let fits: unknown = 'bottom';
    for (let i = 0; i < MAX_GENESIS_APP_DEPTH - 1; i++) fits = [fits];
    assert.ok(parseGenesisJson(withApp({ caesar: fits })).app);
  });

  it('bounds the section size', () => {
    const big = 'x'.repeat(MAX_GENESIS_APP_BYTES);
    assertInvalid(
      withApp({ caesar: big }),
      new RegExp(
        `genesis\\.app: \\d+ bytes as canonical CBOR, above the limit of ${MAX_GENESIS_APP_BYTES}`,
      ),
    );
    const fits = 'x'.repeat(MAX_GENESIS_APP_BYTES - 64);
    assert.equal(
      (parseGenesisJson(withApp({ caesar: fits })).app?.caesar as string).length,
      fits.length,
    );
  });

  it('refuses to write a document with a bad section', () => {
    assert.throws(
      () => genesisToJson({ ...fixedDoc(), app: { caesar: { n: 0.5 } } }),
      (error: unknown) =>
        error instanceof ConsensusError && /genesis\.app\.caesar\.n/.test(error.message),
    );
  });

  it("leaves the section's meaning to Caesar, which refuses bad allocations precisely", () => {
    const unbalanced = parseGenesisJson(
      withApp({
        caesar: {
          ...(caesarSection() as object),
          token: { name: 'Caesar', symbol: 'CSR', decimals: 6, supply: '1001' },
        },
      }),
    );
    assert.throws(
      () => caesarGenesisFromApp(unbalanced.app),
      (error: unknown) =>
        error instanceof CaesarGenesisError &&
        error.code === CaesarGenesisErrorCode.SUPPLY_MISMATCH &&
        /sum to 1000 base units, 1 short of the total supply of 1001/.test(error.message),
    );
    const garbled = parseGenesisJson(withApp({ caesar: { token: 7, allocations: 'none' } }));
    assert.throws(
      () => caesarGenesisFromApp(garbled.app),
      (error: unknown) =>
        error instanceof CaesarGenesisError &&
        error.code === CaesarGenesisErrorCode.INVALID &&
        /caesarGenesis\.token/.test(error.message),
    );
  });
});
