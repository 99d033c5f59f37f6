import { z } from 'zod';
import { encodeCanonical } from '../codec/cbor.js';
import { hexString, parseInput, SchemaError } from '../codec/schema.js';
import { fromHex, toHex } from '../crypto/bytes.js';
import { ED25519_PUBLIC_KEY_BYTES } from '../crypto/ed25519.js';
import { FALCON1024_PUBLIC_KEY_BYTES, FALCON1024_PUBLIC_KEY_HEADER } from '../crypto/falcon.js';
import { sha256 } from '../crypto/hash.js';
import { DEFAULT_MAX_RECORD_BYTES } from '../storage/wal-format.js';
import { DEFAULT_MAX_MESSAGE_BYTES } from '../stoq/rpc/framing.js';
import { MODULE_NAME_PATTERN } from './application/envelope.js';
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

/**
 * A JSON value in the genesis `app` section. Numbers are safe integers only: amounts and other
 * large or fractional quantities are written as decimal strings, which every JSON parser reads
 * exactly.
 */
export type GenesisAppValue =
  | null
  | boolean
  | number
  | string
  | readonly GenesisAppValue[]
  | { readonly [key: string]: GenesisAppValue };

/**
 * The application's genesis data, one entry per module name (e.g. `caesar`): opaque to
 * consensus, which only checks that it is canonical JSON data within its bounds and covers it
 * by the genesis hash. The module's own parser (layer 5) gives it meaning.
 */
export type GenesisAppState = { readonly [module: string]: GenesisAppValue };

export interface GenesisDocument {
  readonly chainId: string;
  /** Milliseconds since the Unix epoch: the first block's time. */
  readonly genesisTime: number;
  readonly validators: readonly GenesisValidator[];
  readonly consensus: GenesisConsensusParams;
  /** Chain-wide consensus-proof parameters (docs/consensus-proof.md). */
  readonly proof: ConsensusProofParams;
  /**
   * Module genesis data (the `app` section of the file); absent when no module has any. When
   * present it is part of the genesis hash; when absent the hash is that of a document that
   * never had the section.
   */
  readonly app?: GenesisAppState;
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
/**
 * Schema bound on `maxBlockBytes`; a genesis is further held to full proposals of at most
 * `MAX_PROPOSAL_WIRE_BYTES` (`proposalOverheadBytes`).
 */
export const MAX_BLOCK_BYTES_LIMIT = 64 * 1024 * 1024;
export const MAX_BLOCK_TXS_LIMIT = 1_000_000;
/**
 * Largest `app` section, measured as its canonical CBOR: room for Caesar's 100,000 genesis
 * allocations (~125 bytes each) with a margin; more state than this belongs in a snapshot.
 */
export const MAX_GENESIS_APP_BYTES = 16 * 1024 * 1024;
/** Deepest nesting of arrays and objects in the `app` section. */
export const MAX_GENESIS_APP_DEPTH = 32;
/** Largest genesis file text accepted by `parseGenesisJson` (UTF-16 code units). */
export const MAX_GENESIS_TEXT_LENGTH = 64 * 1024 * 1024;

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
    app: z
      .record(z.string(), z.unknown())
      .refine((app) => Object.keys(app).length > 0, {
        error: 'expected at least one module section (leave "app" out when there is none)',
      })
      .optional(),
  })
  .superRefine((doc, ctx) => {
    if (doc.app !== undefined) checkAppSection(doc.app, ctx);
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

/** A lone UTF-16 surrogate: JSON text can carry one (`"\\ud800"`), UTF-8 and CBOR cannot. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
/** Issues reported for one bad `app` section before the walk stops. */
const MAX_APP_ISSUES = 10;

/**
 * Checks that the `app` section is data every node reads and hashes identically: only null,
 * booleans, safe integers (no fractions, no -0), strings without lone surrogates, arrays and
 * objects, nested at most `MAX_GENESIS_APP_DEPTH` deep, at most `MAX_GENESIS_APP_BYTES` as
 * canonical CBOR. What the data means is for each module to check.
 */
function checkAppSection(app: Record<string, unknown>, ctx: z.RefinementCtx): void {
  let issues = 0;
  const issue = (path: (string | number)[], message: string): void => {
    issues += 1;
    if (issues <= MAX_APP_ISSUES) ctx.addIssue({ code: 'custom', path: ['app', ...path], message });
  };
  const walk = (value: unknown, path: (string | number)[], depth: number): void => {
    if (issues >= MAX_APP_ISSUES) return;
    if (value === null || typeof value === 'boolean') return;
    if (typeof value === 'number') {
      if (!Number.isSafeInteger(value) || Object.is(value, -0)) {
        issue(
          path,
          `got the number ${value}; numbers here are integers of at most 2^53 - 1 (write amounts and fractions as decimal strings)`,
        );
      }
      return;
    }
    if (typeof value === 'string') {
      if (LONE_SURROGATE.test(value)) issue(path, 'string contains a lone UTF-16 surrogate');
      return;
    }
    if (typeof value !== 'object') {
      issue(path, `expected JSON data, got ${typeof value}`);
      return;
    }
    if (depth >= MAX_GENESIS_APP_DEPTH) {
      issue(path, `nested deeper than ${MAX_GENESIS_APP_DEPTH} levels`);
      return;
    }
    if (Array.isArray(value)) {
      for (const [index, item] of value.entries()) walk(item, [...path, index], depth + 1);
      return;
    }
    if (
      Object.getPrototypeOf(value) !== Object.prototype &&
      Object.getPrototypeOf(value) !== null
    ) {
      issue(path, 'expected a JSON object');
      return;
    }
    for (const [key, item] of Object.entries(value)) {
      if (LONE_SURROGATE.test(key)) issue(path, 'a key contains a lone UTF-16 surrogate');
      walk(item, [...path, key], depth + 1);
    }
  };
  for (const [module, value] of Object.entries(app)) {
    if (!MODULE_NAME_PATTERN.test(module)) {
      issue(
        [module],
        'expected a module name: 1 to 32 of a-z, 0-9 and "-", starting with a letter',
      );
    }
    walk(value, [module], 1);
  }
  if (issues > 0) return;
  const size = encodeCanonical(app).length;
  if (size > MAX_GENESIS_APP_BYTES) {
    issue([], `${size} bytes as canonical CBOR, above the limit of ${MAX_GENESIS_APP_BYTES}`);
  }
}

type GenesisJson = z.infer<typeof genesisJsonSchema>;

function invalidGenesis(message: string, detail: Record<string, unknown> = {}): ConsensusError {
  return new ConsensusError(ConsensusErrorCode.INVALID_GENESIS, message, detail);
}

/**
 * Largest encoded proposal one node can hand to another: it travels as one gossip message, at
 * most `DEFAULT_MAX_MESSAGE_BYTES` (4 MiB, the STOQ default every node's endpoint uses) with
 * the gossip map and the STOQ message frame around it, and its block is logged in one WAL
 * record of at most `DEFAULT_MAX_RECORD_BYTES` (16 MiB) next to the rest of the engine's state.
 * A larger one is dropped at send (`too_large`), or fails the proposer's WAL append
 * (RECORD_TOO_LARGE), which halts its consensus.
 */
export const MAX_PROPOSAL_WIRE_BYTES =
  Math.min(DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_MAX_RECORD_BYTES) - 1024;

/**
 * Evidence items a proposal is assumed to carry: the most a valid block may carry
 * (`MAX_BLOCK_EVIDENCE` in block.ts, and so the most `maxEvidencePerBlock` may be), so every
 * valid full proposal fits the wire. It was the driver's default 16 before the count became a
 * block rule (2026-11-29): a node configured for more could make proposals larger than
 * `proposalOverheadBytes` said.
 */
export const PROPOSAL_EVIDENCE_RESERVE = 64;

// Upper bounds, in bytes, on the parts of an encoded proposal (wire.ts, pos/encoding.ts) besides
// its transactions' own bytes. test/consensus/proposal-size.test.ts encodes the largest proposal
// a genesis allows and checks it against their sum.

/** The proposal's fields, the block header without its consensus proof, the commit's fields. */
const PROPOSAL_FIXED_BYTES = 1024;
/** A transaction's CBOR header (5 bytes from 65,536) and its PoWork stamp `[txHash, nonce]`. */
const PER_TRANSACTION_BYTES = 5 + 44;
/** A precommit with the largest FALCON-1024 signature, and the largest integers and round. */
const PRECOMMIT_BYTES = 1728;
/** Duplicate-vote evidence: two such votes in a map. */
const EVIDENCE_BYTES = 2 * PRECOMMIT_BYTES + 16;
/** The consensus proof's keys, root, address (256 characters), signature, seed and headers. */
const PROOF_FIXED_BYTES = 2048;
/** One PoSpace answer's keys, index and headers, besides its block and path. */
const ANSWER_FIXED_BYTES = 32;
/** A 32-byte hash as a CBOR byte string. */
const HASH_ITEM_BYTES = 34;

/** What `proposalOverheadBytes` adds to the transactions' bytes, part by part. */
export interface ProposalOverhead {
  readonly fixed: number;
  /** Headers and PoWork stamps of up to min(maxBlockTxs, maxBlockBytes) transactions. */
  readonly transactions: number;
  /** PoSpace answers and PoTime checkpoints for the genesis proof parameters. */
  readonly consensusProof: number;
  /** The last commit, one precommit per genesis validator. */
  readonly lastCommit: number;
  /** `PROPOSAL_EVIDENCE_RESERVE` evidence items. */
  readonly evidence: number;
  /**
   * The block's own commit (every genesis validator's precommit), which block sync sends beside
   * the block in one message: a block that fits gossip but not sync could never be caught up on.
   */
  readonly syncCommit: number;
  readonly total: number;
}

/**
 * Bytes a full proposal of this chain adds to `maxBlockBytes` of transactions when encoded:
 * every transaction's header and stamp (each transaction is at least one byte, so there are at
 * most min(maxBlockTxs, maxBlockBytes)), the consensus proof for `doc.proof`, a last commit of
 * every genesis validator's precommit and `PROPOSAL_EVIDENCE_RESERVE` evidence items, plus room
 * for the block's own commit, which block sync sends beside it. Validators that join later make
 * commits larger; the bound is for the genesis set.
 */
export function proposalOverheadBytes(
  doc: Pick<GenesisDocument, 'consensus' | 'proof' | 'validators'>,
): ProposalOverhead {
  const { maxBlockBytes, maxBlockTxs } = doc.consensus;
  const { space, time } = doc.proof;
  const fixed = PROPOSAL_FIXED_BYTES;
  const transactions = PER_TRANSACTION_BYTES * Math.min(maxBlockTxs, maxBlockBytes);
  const pathLength = Math.ceil(Math.log2(space.blockCount));
  const answer = ANSWER_FIXED_BYTES + 4 * space.slotsPerBlock + pathLength * HASH_ITEM_BYTES;
  const checkpoints = time.iterations / time.checkpointInterval;
  const consensusProof =
    PROOF_FIXED_BYTES + space.challengeCount * answer + checkpoints * HASH_ITEM_BYTES;
  const lastCommit = doc.validators.length * PRECOMMIT_BYTES;
  const evidence = PROPOSAL_EVIDENCE_RESERVE * EVIDENCE_BYTES;
  const syncCommit = doc.validators.length * PRECOMMIT_BYTES;
  return {
    fixed,
    transactions,
    consensusProof,
    lastCommit,
    evidence,
    syncCommit,
    total: fixed + transactions + consensusProof + lastCommit + evidence + syncCommit,
  };
}

/**
 * The largest `maxBlockBytes` whose full proposals fit `MAX_PROPOSAL_WIRE_BYTES` with the rest
 * of `doc` unchanged; 0 when none does.
 */
export function largestFittingBlockBytes(
  doc: Pick<GenesisDocument, 'consensus' | 'proof' | 'validators'>,
): number {
  const { maxBlockTxs } = doc.consensus;
  // While maxBlockBytes >= maxBlockTxs the overhead is fixed; below, every byte may be a
  // transaction of its own and costs PER_TRANSACTION_BYTES more.
  const withAllTxs = proposalOverheadBytes({
    ...doc,
    consensus: { ...doc.consensus, maxBlockBytes: maxBlockTxs },
  });
  const room = MAX_PROPOSAL_WIRE_BYTES - withAllTxs.total;
  if (room >= maxBlockTxs) return room;
  const rest = withAllTxs.total - withAllTxs.transactions;
  return Math.max(0, Math.floor((MAX_PROPOSAL_WIRE_BYTES - rest) / (1 + PER_TRANSACTION_BYTES)));
}

/**
 * Refuses a genesis whose full proposal would not fit one gossip message or WAL record, or a full
 * block and its commit one block-sync message.
 */
function checkProposalSize(doc: GenesisDocument): void {
  const overhead = proposalOverheadBytes(doc);
  const size = doc.consensus.maxBlockBytes + overhead.total;
  if (size <= MAX_PROPOSAL_WIRE_BYTES) return;
  const largest = largestFittingBlockBytes(doc);
  const parts =
    `${overhead.transactions} for up to ${Math.min(doc.consensus.maxBlockTxs, doc.consensus.maxBlockBytes)} ` +
    `transactions' headers and stamps, ${overhead.lastCommit} for ${doc.validators.length} ` +
    `validators' precommits, ${overhead.syncCommit} for the block's own commit in block sync, ` +
    `${overhead.consensusProof} for the consensus proof, ` +
    `${overhead.evidence} for evidence, ${overhead.fixed} for the other fields`;
  const remedy =
    largest > 0
      ? `maxBlockBytes can be at most ${largest} with these validators, maxBlockTxs and proof parameters`
      : 'no maxBlockBytes fits: use fewer validators, a smaller maxBlockTxs or fewer proof checkpoints or challenges';
  throw invalidGenesis(
    `genesis.consensus.maxBlockBytes: a full proposal would take up to ${size} bytes ` +
      `(${doc.consensus.maxBlockBytes} of transactions plus ${overhead.total} of encoding: ${parts}), ` +
      `above the ${MAX_PROPOSAL_WIRE_BYTES}-byte limit of one gossip message and WAL record; ${remedy}`,
    {
      path: ['consensus', 'maxBlockBytes'],
      size,
      limit: MAX_PROPOSAL_WIRE_BYTES,
      largestMaxBlockBytes: largest,
    },
  );
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
    ...(doc.app === undefined ? {} : { app: doc.app as Record<string, unknown> }),
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
    // checkAppSection has established that the section is JSON data of the GenesisAppValue kind.
    ...(json.app === undefined ? {} : { app: json.app as GenesisAppState }),
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
  checkProposalSize(doc);
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
  if (text.length > MAX_GENESIS_TEXT_LENGTH) {
    throw invalidGenesis(
      `genesis is ${text.length} characters long, above the limit of ${MAX_GENESIS_TEXT_LENGTH}`,
    );
  }
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
 * the first block's parent hash. Every field is covered; validators in document order. The
 * `app` section enters the hashed map only when present, so a document without one hashes
 * exactly as before the section existed, and two documents that differ in any module's genesis
 * data (e.g. Caesar allocations) have different hashes, so their nodes cannot agree on a block.
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
      ...(value.app === undefined ? {} : { app: value.app }),
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
