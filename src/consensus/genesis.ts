import { z } from 'zod';
import { encodeCanonical } from '../codec/cbor.js';
import { hexString, parseInput, SchemaError } from '../codec/schema.js';
import { fromHex, toHex } from '../crypto/bytes.js';
import { ED25519_PUBLIC_KEY_BYTES } from '../crypto/ed25519.js';
import { FALCON1024_PUBLIC_KEY_BYTES, FALCON1024_PUBLIC_KEY_HEADER } from '../crypto/falcon.js';
import { sha256 } from '../crypto/hash.js';
import { ConsensusError, ConsensusErrorCode } from './errors.js';
import { genesisContext, type HeightContext } from './height-context.js';
import { proofParamsSchema, type ConsensusProofParams } from './proof/params.js';
import { checkTimeoutConfig, type TimeoutConfig } from './timeouts.js';
import {
  createValidatorSet,
  MAX_TOTAL_VOTING_POWER,
  STORAGE_ROOT_BYTES,
  type ValidatorSet,
} from './validator-set.js';

export { DEFAULT_PROOF_PARAMS, DEV_PROOF_PARAMS } from './proof/params.js';

/**
 * The genesis document: everything every node must agree on before the first block. Written by
 * `hypermesh cluster init` as JSON (bytes as lowercase hex); its hash (SHA-256 of the canonical
 * CBOR encoding) is the first block's parent hash.
 */
export interface GenesisValidator {
  /** Operator-chosen name, unique in the set (`node-1`, ...). */
  readonly name: string;
  /** Raw Ed25519 public key (32 bytes): signs votes and proposals; the node's STOQ identity. */
  readonly publicKey: Uint8Array;
  /** FALCON-1024 (Round 3) public key: signs precommits for blocks. */
  readonly pqPublicKey: Uint8Array;
  readonly power: number;
  /** Root of the validator's storage commitment (PoSpace plot), fixed at genesis. */
  readonly storageRoot: Uint8Array;
}

export interface GenesisConsensusParams {
  readonly timeouts: TimeoutConfig;
  /** Pause after a commit before the next height starts, to gather transactions. */
  readonly commitDelayMs: number;
  /** Upper bound on the transactions' bytes in one block. */
  readonly maxBlockBytes: number;
  /**
   * Upper bound on the number of transactions in one block: every validator executes a block
   * before it prevotes, so this bounds that work (and keeps a block checkable within the
   * propose timeout when the offered load exceeds what the cluster commits).
   */
  readonly maxBlockTxs: number;
  /** Precommits for a block must carry a FALCON-1024 signature. */
  readonly requirePq: boolean;
}

export interface GenesisDocument {
  readonly chainId: string;
  /** Milliseconds since the Unix epoch: the first block's time. */
  readonly genesisTime: number;
  readonly validators: readonly GenesisValidator[];
  readonly consensus: GenesisConsensusParams;
  /** Chain-wide consensus-proof parameters (docs/consensus-proof.md). */
  readonly proof: ConsensusProofParams;
}

/** `format` and `version` of the JSON file; not part of the document or its hash. */
export const GENESIS_FILE_FORMAT = 'hypermesh-genesis';
export const GENESIS_FILE_VERSION = 1;
const GENESIS_DOMAIN = 'hypermesh/consensus/genesis/v1';

export const MAX_CHAIN_ID_LENGTH = 64;
export const MAX_VALIDATOR_NAME_LENGTH = 64;
export const MAX_GENESIS_VALIDATORS = 10_000;
/** One hour: a longer pause between blocks is a configuration mistake. */
export const MAX_COMMIT_DELAY_MS = 3_600_000;
export const MAX_BLOCK_BYTES_LIMIT = 64 * 1024 * 1024;
export const MAX_BLOCK_TXS_LIMIT = 1_000_000;

/** Letters, digits, `.`, `_`, `-`, starting with a letter or digit: safe in paths and logs. */
const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

function name(max: number) {
  return z.string().min(1).max(max).regex(NAME_PATTERN, {
    error: 'expected letters, digits, ".", "_" or "-", starting with a letter or digit',
  });
}

const millis = z.int().min(0).max(Number.MAX_SAFE_INTEGER);

const timeoutsSchema = z.strictObject({
  proposeMs: millis,
  proposeDeltaMs: millis,
  prevoteMs: millis,
  prevoteDeltaMs: millis,
  precommitMs: millis,
  precommitDeltaMs: millis,
});

const validatorSchema = z.strictObject({
  name: name(MAX_VALIDATOR_NAME_LENGTH),
  publicKey: hexString(ED25519_PUBLIC_KEY_BYTES),
  pqPublicKey: hexString(FALCON1024_PUBLIC_KEY_BYTES).refine(
    (hex) => Number.parseInt(hex.slice(0, 2), 16) === FALCON1024_PUBLIC_KEY_HEADER,
    { error: 'not a FALCON-1024 public key (its first byte must be 0x0a)' },
  ),
  power: z.int().min(1).max(MAX_TOTAL_VOTING_POWER),
  storageRoot: hexString(STORAGE_ROOT_BYTES),
});

const genesisJsonSchema = z
  .strictObject({
    format: z.literal(GENESIS_FILE_FORMAT),
    version: z.literal(GENESIS_FILE_VERSION),
    chainId: name(MAX_CHAIN_ID_LENGTH),
    genesisTime: millis,
    validators: z.array(validatorSchema).min(1).max(MAX_GENESIS_VALIDATORS),
    consensus: z.strictObject({
      timeouts: timeoutsSchema,
      commitDelayMs: z.int().min(0).max(MAX_COMMIT_DELAY_MS),
      maxBlockBytes: z.int().min(1).max(MAX_BLOCK_BYTES_LIMIT),
      maxBlockTxs: z.int().min(1).max(MAX_BLOCK_TXS_LIMIT),
      requirePq: z.boolean(),
    }),
    proof: proofParamsSchema,
  })
  .superRefine((doc, ctx) => {
    const names = new Map<string, number>();
    const keys = new Map<string, number>();
    let totalPower = 0;
    for (const [index, validator] of doc.validators.entries()) {
      const sameName = names.get(validator.name);
      if (sameName !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['validators', index, 'name'],
          message: `duplicate validator name "${validator.name}" (also validators[${sameName}])`,
        });
      }
      names.set(validator.name, index);
      const sameKey = keys.get(validator.publicKey);
      if (sameKey !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['validators', index, 'publicKey'],
          message: `duplicate public key (also validators[${sameKey}])`,
        });
      }
      keys.set(validator.publicKey, index);
      totalPower += validator.power;
    }
    if (totalPower > MAX_TOTAL_VOTING_POWER) {
      ctx.addIssue({
        code: 'custom',
        path: ['validators'],
        message: `total voting power ${totalPower} exceeds ${MAX_TOTAL_VOTING_POWER}`,
      });
    }
  });

type GenesisJson = z.infer<typeof genesisJsonSchema>;

function invalidGenesis(message: string, detail: Record<string, unknown> = {}): ConsensusError {
  return new ConsensusError(ConsensusErrorCode.INVALID_GENESIS, message, detail);
}

function toJsonValue(doc: GenesisDocument): GenesisJson {
  const { consensus, proof } = doc;
  return {
    format: GENESIS_FILE_FORMAT,
    version: GENESIS_FILE_VERSION,
    chainId: doc.chainId,
    genesisTime: doc.genesisTime,
    validators: doc.validators.map((validator) => ({
      name: validator.name,
      publicKey: toHex(validator.publicKey),
      pqPublicKey: toHex(validator.pqPublicKey),
      power: validator.power,
      storageRoot: toHex(validator.storageRoot),
    })),
    consensus: {
      timeouts: {
        proposeMs: consensus.timeouts.proposeMs,
        proposeDeltaMs: consensus.timeouts.proposeDeltaMs,
        prevoteMs: consensus.timeouts.prevoteMs,
        prevoteDeltaMs: consensus.timeouts.prevoteDeltaMs,
        precommitMs: consensus.timeouts.precommitMs,
        precommitDeltaMs: consensus.timeouts.precommitDeltaMs,
      },
      commitDelayMs: consensus.commitDelayMs,
      maxBlockBytes: consensus.maxBlockBytes,
      maxBlockTxs: consensus.maxBlockTxs,
      requirePq: consensus.requirePq,
    },
    proof: {
      space: {
        blockCount: proof.space.blockCount,
        slotsPerBlock: proof.space.slotsPerBlock,
        slotDifficulty: proof.space.slotDifficulty,
        challengeCount: proof.space.challengeCount,
      },
      work: { stampDifficulty: proof.work.stampDifficulty },
      time: {
        iterations: proof.time.iterations,
        checkpointInterval: proof.time.checkpointInterval,
      },
    },
  };
}

function fromJsonValue(json: GenesisJson): GenesisDocument {
  return {
    chainId: json.chainId,
    genesisTime: json.genesisTime,
    validators: json.validators.map((validator) => ({
      name: validator.name,
      publicKey: fromHex(validator.publicKey),
      pqPublicKey: fromHex(validator.pqPublicKey),
      power: validator.power,
      storageRoot: fromHex(validator.storageRoot),
    })),
    consensus: json.consensus,
    proof: json.proof,
  };
}

/** Schema and chain rules over the JSON value; returns the document. */
function parseGenesisValue(value: unknown): GenesisDocument {
  let json: GenesisJson;
  try {
    json = parseInput(genesisJsonSchema, value, 'genesis');
  } catch (error) {
    if (!(error instanceof SchemaError)) throw error;
    throw invalidGenesis(error.message, { issues: error.issues });
  }
  const doc = fromJsonValue(json);
  const timeoutError = checkTimeoutConfig(doc.consensus.timeouts);
  if (timeoutError !== undefined) {
    throw invalidGenesis(`genesis.consensus.timeouts: ${timeoutError.message}`);
  }
  try {
    genesisValidatorSet(doc);
  } catch (error) {
    if (!(error instanceof ConsensusError)) throw error;
    throw invalidGenesis(`genesis.validators: ${error.message}`, { ...error.detail });
  }
  return doc;
}

/**
 * Throws `CONSENSUS_INVALID_GENESIS` naming the first offending fields unless `doc` is a valid
 * genesis document (the rules of `parseGenesisJson`).
 */
export function assertGenesisDocument(doc: GenesisDocument): void {
  if (typeof doc !== 'object' || doc === null) throw invalidGenesis('genesis is not a record');
  let value: GenesisJson;
  try {
    value = toJsonValue(doc);
  } catch (error) {
    throw invalidGenesis(`genesis is not a genesis document: ${(error as Error).message}`);
  }
  parseGenesisValue(value);
}

/** The genesis file's text: pretty JSON, bytes as lowercase hex. Validates `doc` first. */
export function genesisToJson(doc: GenesisDocument): string {
  assertGenesisDocument(doc);
  return `${JSON.stringify(toJsonValue(doc), null, 2)}\n`;
}

/**
 * Parses a genesis file. Strict: unknown keys, missing fields, wrong types, hex of the wrong
 * length, duplicate validator names or keys, non-positive power, out-of-range proof parameters
 * are all refused with `CONSENSUS_INVALID_GENESIS`, whose message names the field
 * (`genesis.validators[2].pqPublicKey: ...`) and whose `detail.issues` lists every problem.
 */
export function parseGenesisJson(text: string): GenesisDocument {
  if (typeof text !== 'string') throw invalidGenesis('genesis JSON must be a string');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw invalidGenesis(`genesis is not JSON: ${(error as Error).message}`);
  }
  return parseGenesisValue(value);
}

/**
 * SHA-256 of the canonical CBOR (RFC 8949 §4.2.1) of the document under a versioned domain tag:
 * the first block's parent hash. Every field is covered; validators in document order.
 */
export function genesisHash(doc: GenesisDocument): Uint8Array {
  const value = toJsonValue(doc);
  return sha256(
    encodeCanonical({
      domain: GENESIS_DOMAIN,
      chainId: value.chainId,
      genesisTime: value.genesisTime,
      validators: doc.validators.map((validator) => ({
        name: validator.name,
        publicKey: validator.publicKey,
        pqPublicKey: validator.pqPublicKey,
        power: validator.power,
        storageRoot: validator.storageRoot,
      })),
      consensus: value.consensus,
      proof: value.proof,
    }),
  );
}

/** The engine's validator set of the first height: keys, FALCON keys, powers, storage roots. */
export function genesisValidatorSet(doc: GenesisDocument): ValidatorSet {
  return createValidatorSet(
    doc.validators.map((validator) => ({
      publicKey: validator.publicKey,
      power: validator.power,
      pqPublicKey: validator.pqPublicKey,
      storageRoot: validator.storageRoot,
    })),
  );
}

/** The engine's context of height 1: the genesis validator set, parent = the genesis. */
export function genesisHeightContext(doc: GenesisDocument): HeightContext {
  return genesisContext(genesisValidatorSet(doc), {
    hash: genesisHash(doc),
    time: doc.genesisTime,
  });
}
