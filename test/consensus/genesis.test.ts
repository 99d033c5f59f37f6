import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { ed25519RawPublicKey, generateEd25519KeyPair } from '../../src/crypto/ed25519.js';
import { FALCON1024_PUBLIC_KEY_BYTES } from '../../src/crypto/falcon.js';
import { ConsensusError, ConsensusErrorCode } from '../../src/consensus/errors.js';
import {
  assertGenesisDocument,
  DEFAULT_PROOF_PARAMS,
  DEV_PROOF_PARAMS,
  genesisHash,
  genesisHeightContext,
  genesisToJson,
  genesisValidatorSet,
  parseGenesisJson,
  type GenesisDocument,
} from '../../src/consensus/genesis.js';
import { DEFAULT_TIMEOUTS } from '../../src/consensus/timeouts.js';
import { validatorAddress } from '../../src/consensus/validator-set.js';

/** Structurally a FALCON-1024 public key (header byte 0x0a); genesis does not sign with it. */
function pqKey(): Uint8Array {
  const key = new Uint8Array(randomBytes(FALCON1024_PUBLIC_KEY_BYTES));
  key[0] = 0x0a;
  return key;
}

function makeDoc(count = 4): GenesisDocument {
  return {
    chainId: 'hypermesh-dev',
    genesisTime: 1_700_000_000_000,
    validators: Array.from({ length: count }, (_, i) => ({
      name: `node-${i + 1}`,
      publicKey: ed25519RawPublicKey(generateEd25519KeyPair().privateKey),
      pqPublicKey: pqKey(),
      power: 10 + i,
      storageRoot: new Uint8Array(randomBytes(32)),
    })),
    consensus: {
      timeouts: DEFAULT_TIMEOUTS,
      commitDelayMs: 100,
      maxBlockBytes: 1 << 20,
      maxBlockTxs: 10_000,
      requirePq: true,
    },
    proof: DEV_PROOF_PARAMS,
  };
}

type Json = Record<string, unknown> & {
  validators: Record<string, unknown>[];
  consensus: Record<string, unknown> & { timeouts: Record<string, unknown> };
  proof: Record<string, Record<string, unknown>>;
};

/** The doc's JSON value, edited by `edit`, as text. */
function edited(doc: GenesisDocument, edit: (json: Json) => void): string {
  const json = JSON.parse(genesisToJson(doc)) as Json;
  edit(json);
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

describe('genesis document', () => {
  it('round-trips through its JSON file, bytes as lowercase hex', () => {
    const doc = makeDoc();
    const text = genesisToJson(doc);
    const parsed = parseGenesisJson(text);
    assert.deepEqual(parsed, { ...doc, proof: { ...DEV_PROOF_PARAMS } });
    assert.deepEqual(genesisHash(parsed), genesisHash(doc));
    assert.equal(genesisToJson(parsed), text);
    const json = JSON.parse(text) as Json;
    assert.equal(json.format, 'hypermesh-genesis');
    assert.equal(json.version, 1);
    assert.match(json.validators[0]?.publicKey as string, /^[0-9a-f]{64}$/);
    assert.equal((json.validators[0]?.pqPublicKey as string).length, 2 * 1793);
    assert.ok(text.endsWith('}\n'));
  });

  it('hashes every field', () => {
    const doc = makeDoc();
    const hash = genesisHash(doc);
    assert.equal(hash.length, 32);
    const [first, ...rest] = doc.validators;
    assert.ok(first !== undefined);
    const variants: GenesisDocument[] = [
      { ...doc, chainId: 'other' },
      { ...doc, genesisTime: doc.genesisTime + 1 },
      { ...doc, validators: [{ ...first, name: 'renamed' }, ...rest] },
      { ...doc, validators: [{ ...first, power: first.power + 1 }, ...rest] },
      { ...doc, validators: [{ ...first, storageRoot: new Uint8Array(32) }, ...rest] },
      { ...doc, validators: [{ ...first, pqPublicKey: pqKey() }, ...rest] },
      { ...doc, validators: rest },
      { ...doc, consensus: { ...doc.consensus, requirePq: false } },
      { ...doc, consensus: { ...doc.consensus, commitDelayMs: 0 } },
      {
        ...doc,
        consensus: { ...doc.consensus, timeouts: { ...doc.consensus.timeouts, proposeMs: 1 } },
      },
      { ...doc, proof: { ...doc.proof, work: { stampDifficulty: 9 } } },
      { ...doc, proof: DEFAULT_PROOF_PARAMS },
    ];
    const hashes = new Set(
      variants.map((variant) => Buffer.from(genesisHash(variant)).toString('hex')),
    );
    assert.equal(hashes.size, variants.length);
    assert.ok(!hashes.has(Buffer.from(hash).toString('hex')));
  });

  it('gives the engine its validator set and first height', () => {
    const doc = makeDoc();
    const set = genesisValidatorSet(doc);
    assert.equal(set.validators.length, doc.validators.length);
    assert.equal(set.totalPower, 10 + 11 + 12 + 13);
    for (const entry of doc.validators) {
      const validator =
        set.validators[set.indexOf.get(validatorAddress(entry.publicKey)) as number];
      assert.ok(validator !== undefined);
      assert.deepEqual(validator.pqPublicKey, entry.pqPublicKey);
      assert.deepEqual(validator.storageRoot, entry.storageRoot);
      assert.equal(validator.power, entry.power);
    }
    const [first, ...rest] = doc.validators;
    assert.ok(first !== undefined);
    const otherRoot = genesisValidatorSet({
      ...doc,
      validators: [{ ...first, storageRoot: new Uint8Array(32) }, ...rest],
    });
    assert.notDeepEqual(otherRoot.hash, set.hash, 'storage roots are in the validator-set hash');
    const context = genesisHeightContext(doc);
    assert.equal(context.height, 1);
    assert.equal(context.parent.kind, 'genesis');
    assert.deepEqual(context.parent.hash, genesisHash(doc));
    assert.equal(context.parent.time, doc.genesisTime);
    assert.deepEqual(context.schedule.validators.hash, set.hash);
  });

  it('ships valid development and default proof parameters', () => {
    const doc = makeDoc();
    assertGenesisDocument(doc);
    assertGenesisDocument({ ...doc, proof: DEFAULT_PROOF_PARAMS });
  });
});

describe('genesis JSON rejection', () => {
  const doc = makeDoc();

  it('refuses text that is not a JSON genesis file', () => {
    assertInvalid('{', /not JSON/);
    assertInvalid('[]', /^genesis: expected object/);
    assertInvalid(
      edited(doc, (json) => (json.format = 'other')),
      /genesis\.format/,
    );
    assertInvalid(
      edited(doc, (json) => (json.version = 2)),
      /genesis\.version/,
    );
    assertInvalid(
      edited(doc, (json) => (json.extra = 1)),
      /genesis: unexpected key "extra"/,
    );
    assertInvalid(
      edited(doc, (json) => delete json.chainId),
      /genesis\.chainId: expected string/,
    );
  });

  it('names the field of a bad chain id or genesis time', () => {
    assertInvalid(
      edited(doc, (json) => (json.chainId = 'has space')),
      /genesis\.chainId/,
    );
    assertInvalid(
      edited(doc, (json) => (json.chainId = 'x'.repeat(65))),
      /genesis\.chainId/,
    );
    assertInvalid(
      edited(doc, (json) => (json.genesisTime = -1)),
      /genesis\.genesisTime/,
    );
    assertInvalid(
      edited(doc, (json) => (json.genesisTime = 1.5)),
      /genesis\.genesisTime/,
    );
  });

  it('names the validator and field of bad keys, roots and powers', () => {
    const at = (field: string, value: unknown) =>
      edited(doc, (json) => ((json.validators[1] as Record<string, unknown>)[field] = value));
    const validator = doc.validators[1];
    assert.ok(validator !== undefined);
    const hex = Buffer.from(validator.publicKey).toString('hex');
    assertInvalid(
      at('publicKey', hex.slice(2)),
      /genesis\.validators\[1\]\.publicKey: expected 32 bytes/,
    );
    assertInvalid(at('publicKey', hex.toUpperCase()), /genesis\.validators\[1\]\.publicKey/);
    assertInvalid(
      at('pqPublicKey', 'ab'),
      /genesis\.validators\[1\]\.pqPublicKey: expected 1793 bytes/,
    );
    const wrongHeader = `0b${Buffer.from(validator.pqPublicKey).toString('hex').slice(2)}`;
    assertInvalid(at('pqPublicKey', wrongHeader), /genesis\.validators\[1\]\.pqPublicKey: .*0x0a/);
    assertInvalid(at('storageRoot', '00'), /genesis\.validators\[1\]\.storageRoot/);
    for (const power of [0, -1, 1.5, '1']) {
      assertInvalid(at('power', power), /genesis\.validators\[1\]\.power/);
    }
    assertInvalid(at('name', ''), /genesis\.validators\[1\]\.name/);
    assertInvalid(at('name', 'a/b'), /genesis\.validators\[1\]\.name/);
    assertInvalid(at('extra', true), /genesis\.validators\[1\]: unexpected key "extra"/);
    assertInvalid(
      edited(doc, (json) => (json.validators = [])),
      /genesis\.validators: expected at least 1 item/,
    );
  });

  it('refuses duplicate validator names and keys', () => {
    assertInvalid(
      edited(doc, (json) => ((json.validators[2] as Record<string, unknown>).name = 'node-1')),
      /genesis\.validators\[2\]\.name: duplicate validator name "node-1" \(also validators\[0\]\)/,
    );
    assertInvalid(
      edited(
        doc,
        (json) =>
          ((json.validators[3] as Record<string, unknown>).publicKey =
            json.validators[1]?.publicKey),
      ),
      /genesis\.validators\[3\]\.publicKey: duplicate public key \(also validators\[1\]\)/,
    );
  });

  it('names the field of bad consensus and proof parameters', () => {
    assertInvalid(
      edited(doc, (json) => (json.consensus.timeouts.prevoteMs = -5)),
      /genesis\.consensus\.timeouts\.prevoteMs/,
    );
    assertInvalid(
      edited(doc, (json) => {
        for (const key of Object.keys(json.consensus.timeouts)) json.consensus.timeouts[key] = 0;
      }),
      /genesis\.consensus\.timeouts: timeouts must not all be zero/,
    );
    assertInvalid(
      edited(doc, (json) => (json.consensus.maxBlockBytes = 0)),
      /genesis\.consensus\.maxBlockBytes/,
    );
    assertInvalid(
      edited(doc, (json) => (json.consensus.maxBlockTxs = 0)),
      /genesis\.consensus\.maxBlockTxs/,
    );
    assertInvalid(
      edited(doc, (json) => delete (json.consensus as Record<string, unknown>).maxBlockTxs),
      /genesis\.consensus\.maxBlockTxs/,
    );
    assertInvalid(
      edited(doc, (json) => (json.consensus.requirePq = 'yes')),
      /genesis\.consensus\.requirePq/,
    );
    assertInvalid(
      edited(doc, (json) => ((json.proof.space as Record<string, unknown>).blockCount = 0)),
      /genesis\.proof\.space\.blockCount/,
    );
    assertInvalid(
      edited(doc, (json) => ((json.proof.work as Record<string, unknown>).stampDifficulty = 41)),
      /genesis\.proof\.work\.stampDifficulty/,
    );
    assertInvalid(
      edited(doc, (json) => ((json.proof.time as Record<string, unknown>).iterations = 1000)),
      /genesis\.proof\.time: iterations must be a multiple of checkpointInterval/,
    );
    assertInvalid(
      edited(doc, (json) => (json.proof.stake = { requireFalconAttestations: true })),
      /genesis\.proof: unexpected key "stake"/,
    );
  });

  it('refuses to write an invalid document', () => {
    const [first, ...rest] = doc.validators;
    assert.ok(first !== undefined);
    assert.throws(
      () => genesisToJson({ ...doc, validators: [{ ...first, power: 0 }, ...rest] }),
      (error: unknown) =>
        error instanceof ConsensusError &&
        error.code === ConsensusErrorCode.INVALID_GENESIS &&
        /genesis\.validators\[0\]\.power/.test(error.message),
    );
    assert.throws(
      () =>
        genesisToJson({
          ...doc,
          validators: [{ ...first, publicKey: new Uint8Array(31) }, ...rest],
        }),
      /genesis\.validators\[0\]\.publicKey: expected 32 bytes/,
    );
  });
});
