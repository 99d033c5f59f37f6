import { CborError } from '../codec/cbor.js';
import { CanonicalReader } from '../codec/canonical-reader.js';
import { encodeFlatCanonical, type FlatRecord } from '../codec/flat-canonical.js';
import { SchemaError } from '../codec/schema.js';
import { ED25519_SIGNATURE_BYTES } from '../crypto/ed25519.js';
import {
  FALCON1024_MAX_SIGNATURE_BYTES,
  FALCON1024_MIN_SIGNATURE_BYTES,
} from '../crypto/falcon.js';
import type { GossipMessage } from './driver/ports.js';
import { ConsensusError, ConsensusErrorCode } from './errors.js';
import { BLOCK_HASH_BYTES } from './messages.js';
import type {
  Block,
  BlockHeader,
  DuplicateVoteEvidence,
  Proposal,
  QuorumCertificate,
  Vote,
  VoteType,
} from './types.js';
import { MAX_ROUND } from './verify.js';
import { voteRecord } from './vote-record.js';

/**
 * The wire format of consensus values: what validators gossip, what a syncing node fetches and
 * what the node stores. Every encoding is deterministic CBOR (RFC 8949 §4.2.1) of a map tagged
 * `v: 1` at the top level (nested records follow the top-level version). Decoders accept exactly
 * the canonical bytes the encoders produce, check every field's type, length and range, and
 * enforce the limits below before allocating, so any byte string yields either a value or a
 * `ConsensusError(MALFORMED_MESSAGE)` whose message names the field. Decoding does not check
 * signatures, quorums or chain rules: verify.ts, commit.ts and block.ts do.
 *
 * Encoders take well-formed values (built by the engine or returned by a decoder) and do not
 * re-validate them on the hot path.
 */

export const WIRE_VERSION = 1;

/** Largest encoded block (transactions, evidence and last commit included). */
export const MAX_BLOCK_WIRE_BYTES = 16 * 1024 * 1024;
/** Largest single transaction, in blocks and in mempool gossip. */
export const MAX_TX_BYTES = 64 * 1024;
/** Most transactions in one block; proposers must stay below it. */
export const MAX_TXS_PER_BLOCK = 100_000;
/** Most transactions in one `txs` gossip message. */
export const MAX_TXS_PER_GOSSIP = 1_000;
/** Most precommits in a quorum certificate (one per validator). */
export const MAX_PRECOMMITS = 10_000;
/** Most duplicate-vote evidence items in one block. */
export const MAX_EVIDENCE_PER_BLOCK = 1_000;
/** Largest encoded vote (a precommit with the largest FALCON-1024 signature is about 1.7 KiB). */
export const MAX_VOTE_WIRE_BYTES = 4 * 1024;
/** Largest encoded evidence item: two votes. */
export const MAX_EVIDENCE_WIRE_BYTES = 2 * MAX_VOTE_WIRE_BYTES;
/** Largest encoded quorum certificate. */
export const MAX_COMMIT_WIRE_BYTES = MAX_BLOCK_WIRE_BYTES;
/** Largest proposal or gossip message: a block plus the proposal's own fields. */
export const MAX_GOSSIP_WIRE_BYTES = MAX_BLOCK_WIRE_BYTES + 4 * 1024;

/** Chain ids are 1 to 64 characters (the bound the genesis document and transactions use). */
const MAX_CHAIN_ID_LENGTH = 64;
const ADDRESS = /^[0-9a-f]{40}$/;
const ADDRESS_CHARS = 40;

type FieldReader<T> = (reader: CanonicalReader, path: string) => T;

/** How to read a record: a reader per key, and which keys may be absent. */
interface RecordSpec<T> {
  readonly fields: { readonly [K in keyof T]-?: FieldReader<T[K]> };
  readonly required: ReadonlySet<string>;
}

function spec<T>(
  fields: { readonly [K in keyof T]-?: FieldReader<T[K]> },
  optional: readonly (keyof T & string)[] = [],
): RecordSpec<T> {
  const keys = Object.keys(fields);
  const required = new Set(keys.filter((key) => !optional.includes(key as keyof T & string)));
  return { fields, required };
}

function malformed(path: string, message: string): ConsensusError {
  return new ConsensusError(ConsensusErrorCode.MALFORMED_MESSAGE, `${path}: ${message}`, { path });
}

/**
 * Reads a map of `spec`'s fields. A top-level (`versioned`) map starts with `v` — the shortest
 * key, so canonical order puts it first — and it must be `WIRE_VERSION`.
 */
function readRecord<T>(
  reader: CanonicalReader,
  path: string,
  { fields, required }: RecordSpec<T>,
  versioned = false,
): T {
  // More entries than fields means an unknown or repeated key, which the loop names.
  const count = reader.readMapLength(path, Number.MAX_SAFE_INTEGER);
  const out: Record<string, unknown> = {};
  let previous: string | undefined;
  let index = 0;
  if (versioned) {
    const key = count === 0 ? undefined : reader.readKey(path, undefined);
    if (key !== 'v') {
      throw malformed(
        `${path}.v`,
        key === undefined
          ? 'missing version tag'
          : `missing version tag (the first key must be "v", got ${JSON.stringify(key)})`,
      );
    }
    const version = reader.readUint(`${path}.v`);
    if (version !== WIRE_VERSION) {
      throw malformed(`${path}.v`, `unsupported version ${version} (expected ${WIRE_VERSION})`);
    }
    previous = key;
    index = 1;
  }
  let requiredSeen = 0;
  for (; index < count; index++) {
    const key = reader.readKey(path, previous);
    if (!Object.hasOwn(fields, key)) throw malformed(path, `unexpected key ${JSON.stringify(key)}`);
    const read = (fields as Record<string, FieldReader<unknown>>)[key]!;
    out[key] = read(reader, `${path}.${key}`);
    if (required.has(key)) requiredSeen++;
    previous = key;
  }
  if (requiredSeen < required.size) {
    const missing = [...required].find((key) => !Object.hasOwn(out, key))!;
    throw malformed(`${path}.${missing}`, 'missing');
  }
  return out as T;
}

const uint: FieldReader<number> = (reader, path) => reader.readUint(path);
const round: FieldReader<number> = (reader, path) => reader.readUint(path, 0, MAX_ROUND);
const hash: FieldReader<Uint8Array> = (reader, path) =>
  reader.readBytes(path, BLOCK_HASH_BYTES, BLOCK_HASH_BYTES);
const signature: FieldReader<Uint8Array> = (reader, path) =>
  reader.readBytes(path, ED25519_SIGNATURE_BYTES, ED25519_SIGNATURE_BYTES);
const pqSignature: FieldReader<Uint8Array> = (reader, path) =>
  reader.readBytes(path, FALCON1024_MIN_SIGNATURE_BYTES, FALCON1024_MAX_SIGNATURE_BYTES);
const transaction: FieldReader<Uint8Array> = (reader, path) =>
  reader.readBytes(path, 1, MAX_TX_BYTES);

const address: FieldReader<string> = (reader, path) => {
  const text = reader.readText(path, ADDRESS_CHARS);
  if (!ADDRESS.test(text)) {
    throw malformed(path, 'expected a validator address (40 lowercase hex digits)');
  }
  return text;
};

const voteType: FieldReader<VoteType> = (reader, path) => {
  const text = reader.readText(path, 16);
  if (text !== 'prevote' && text !== 'precommit') {
    throw malformed(path, `expected "prevote" or "precommit", got ${JSON.stringify(text)}`);
  }
  return text;
};

const chainId: FieldReader<string> = (reader, path) => {
  // UTF-8 takes at most 3 bytes per UTF-16 code unit.
  const text = reader.readText(path, 3 * MAX_CHAIN_ID_LENGTH);
  if (text.length < 1 || text.length > MAX_CHAIN_ID_LENGTH) {
    throw malformed(path, `expected 1 to ${MAX_CHAIN_ID_LENGTH} characters, got ${text.length}`);
  }
  return text;
};

function nullable<T>(read: FieldReader<T>): FieldReader<T | null> {
  return (reader, path) => (reader.readNull() ? null : read(reader, path));
}

function list<T>(max: number, read: FieldReader<T>, min = 0): FieldReader<T[]> {
  return (reader, path) => {
    const count = reader.readArrayLength(path, max);
    if (count < min) throw malformed(path, `expected at least ${min} items, got ${count}`);
    const items = new Array<T>(count);
    for (let i = 0; i < count; i++) items[i] = read(reader, `${path}[${i}]`);
    return items;
  };
}

function record<T>(recordSpec: RecordSpec<T>): FieldReader<T> {
  return (reader, path) => readRecord(reader, path, recordSpec);
}

const voteSpec = spec<Vote>(
  {
    type: voteType,
    height: uint,
    round,
    blockHash: nullable(hash),
    timestamp: uint,
    validator: address,
    signature,
    pqSignature,
  },
  ['pqSignature'],
);
const vote = record(voteSpec);

const evidenceSpec = spec<DuplicateVoteEvidence>({ voteA: vote, voteB: vote });

const commitSpec = spec<QuorumCertificate>({
  height: uint,
  round,
  blockHash: hash,
  precommits: list(MAX_PRECOMMITS, vote),
});

const headerSpec = spec<BlockHeader>({
  chainId,
  height: uint,
  time: uint,
  parentHash: hash,
  transactionsRoot: hash,
  evidenceRoot: hash,
  lastCommitHash: hash,
  appStateRoot: hash,
  validatorsHash: hash,
  proposer: address,
  consensusProof: (reader, path) => reader.readBytes(path, 0, MAX_BLOCK_WIRE_BYTES),
});

const blockSpec = spec<Block>({
  header: record(headerSpec),
  transactions: list(MAX_TXS_PER_BLOCK, transaction),
  evidence: list(MAX_EVIDENCE_PER_BLOCK, record(evidenceSpec)),
  lastCommit: nullable(record(commitSpec)),
});

const proposalSpec = spec<Proposal>({
  height: uint,
  round,
  block: record(blockSpec),
  validRound: (reader, path) => reader.readInt(path, -1, MAX_ROUND),
  proposer: address,
  signature,
});

type GossipKind = GossipMessage['kind'];
const GOSSIP_KINDS: readonly GossipKind[] = ['proposal', 'vote', 'txs', 'status'];

/** Every field any gossip kind has; which ones a message must have depends on its kind. */
interface GossipFields {
  readonly kind: GossipKind;
  readonly proposal: Proposal;
  readonly vote: Vote;
  readonly txs: Uint8Array[];
  readonly committedHeight: number;
  readonly height: number;
  readonly round: number;
}

const GOSSIP_BODY: Readonly<Record<GossipKind, readonly (keyof GossipFields)[]>> = {
  proposal: ['proposal'],
  vote: ['vote'],
  txs: ['txs'],
  status: ['committedHeight', 'height', 'round'],
};

const gossipSpec = spec<GossipFields>(
  {
    kind: (reader, path) => {
      const text = reader.readText(path, 16);
      if (!(GOSSIP_KINDS as readonly string[]).includes(text)) {
        throw malformed(path, `unknown kind ${JSON.stringify(text)}`);
      }
      return text as GossipKind;
    },
    proposal: record(proposalSpec),
    vote,
    txs: list(MAX_TXS_PER_GOSSIP, transaction, 1),
    committedHeight: uint,
    height: uint,
    round,
  },
  ['proposal', 'vote', 'txs', 'committedHeight', 'height', 'round'],
);

/** The ConsensusError a codec-level refusal becomes; anything else is a bug, reported as such. */
function asMalformed(what: string, error: unknown): ConsensusError {
  if (error instanceof ConsensusError) return error;
  if (error instanceof SchemaError) {
    const path = error.issues[0]?.path ?? what;
    return new ConsensusError(
      ConsensusErrorCode.MALFORMED_MESSAGE,
      error.message,
      { path, reason: error.code },
      { cause: error },
    );
  }
  if (error instanceof CborError) {
    return new ConsensusError(
      ConsensusErrorCode.MALFORMED_MESSAGE,
      error.message,
      { ...error.detail, reason: error.code },
      { cause: error },
    );
  }
  return new ConsensusError(
    ConsensusErrorCode.MALFORMED_MESSAGE,
    `${what}: cannot decode (${error instanceof Error ? error.message : String(error)})`,
    { path: what },
    { cause: error },
  );
}

function decodeTop<T>(
  what: string,
  bytes: Uint8Array,
  maxBytes: number,
  read: (reader: CanonicalReader) => T,
): T {
  if (!(bytes instanceof Uint8Array)) {
    throw malformed(what, `expected bytes, got ${bytes === null ? 'null' : typeof bytes}`);
  }
  if (bytes.length > maxBytes) {
    throw malformed(what, `${bytes.length} bytes exceeds the limit of ${maxBytes}`);
  }
  try {
    const reader = new CanonicalReader(bytes);
    const value = read(reader);
    reader.end(what);
    return value;
  } catch (error) {
    throw asMalformed(what, error);
  }
}

/*
 * The records below list their keys in canonical order (shorter first, then bytewise), so the
 * encoder does not sort them.
 */

function evidenceRecord(value: DuplicateVoteEvidence): FlatRecord {
  return { voteA: voteRecord(value.voteA), voteB: voteRecord(value.voteB) };
}

function commitRecord(value: QuorumCertificate): FlatRecord {
  return {
    round: value.round,
    height: value.height,
    blockHash: value.blockHash,
    precommits: value.precommits.map(voteRecord),
  };
}

function headerRecord(header: BlockHeader): FlatRecord {
  return {
    time: header.time,
    height: header.height,
    chainId: header.chainId,
    proposer: header.proposer,
    parentHash: header.parentHash,
    appStateRoot: header.appStateRoot,
    evidenceRoot: header.evidenceRoot,
    consensusProof: header.consensusProof,
    lastCommitHash: header.lastCommitHash,
    validatorsHash: header.validatorsHash,
    transactionsRoot: header.transactionsRoot,
  };
}

function blockRecord(block: Block): FlatRecord {
  return {
    header: headerRecord(block.header),
    evidence: block.evidence.map(evidenceRecord),
    lastCommit: block.lastCommit === null ? null : commitRecord(block.lastCommit),
    transactions: block.transactions,
  };
}

function proposalRecord(proposal: Proposal): FlatRecord {
  return {
    block: blockRecord(proposal.block),
    round: proposal.round,
    height: proposal.height,
    proposer: proposal.proposer,
    signature: proposal.signature,
    validRound: proposal.validRound,
  };
}

export function encodeVote(value: Vote): Uint8Array {
  return encodeFlatCanonical({ v: WIRE_VERSION, ...voteRecord(value) });
}

export function decodeVote(bytes: Uint8Array): Vote {
  return decodeTop('vote', bytes, MAX_VOTE_WIRE_BYTES, (reader) =>
    readRecord(reader, 'vote', voteSpec, true),
  );
}

export function encodeEvidence(value: DuplicateVoteEvidence): Uint8Array {
  return encodeFlatCanonical({ v: WIRE_VERSION, ...evidenceRecord(value) });
}

export function decodeEvidence(bytes: Uint8Array): DuplicateVoteEvidence {
  return decodeTop('evidence', bytes, MAX_EVIDENCE_WIRE_BYTES, (reader) =>
    readRecord(reader, 'evidence', evidenceSpec, true),
  );
}

export function encodeQuorumCertificate(value: QuorumCertificate): Uint8Array {
  return encodeFlatCanonical({ v: WIRE_VERSION, ...commitRecord(value) });
}

export function decodeQuorumCertificate(bytes: Uint8Array): QuorumCertificate {
  return decodeTop('commit', bytes, MAX_COMMIT_WIRE_BYTES, (reader) =>
    readRecord(reader, 'commit', commitSpec, true),
  );
}

export function encodeBlock(block: Block): Uint8Array {
  return encodeFlatCanonical({ v: WIRE_VERSION, ...blockRecord(block) });
}

export function decodeBlock(bytes: Uint8Array): Block {
  return decodeTop('block', bytes, MAX_BLOCK_WIRE_BYTES, (reader) =>
    readRecord(reader, 'block', blockSpec, true),
  );
}

export function encodeProposal(proposal: Proposal): Uint8Array {
  return encodeFlatCanonical({ v: WIRE_VERSION, ...proposalRecord(proposal) });
}

export function decodeProposal(bytes: Uint8Array): Proposal {
  return decodeTop('proposal', bytes, MAX_GOSSIP_WIRE_BYTES, (reader) =>
    readRecord(reader, 'proposal', proposalSpec, true),
  );
}

export function encodeGossip(message: GossipMessage): Uint8Array {
  switch (message.kind) {
    case 'proposal':
      return encodeFlatCanonical({
        v: WIRE_VERSION,
        kind: 'proposal',
        proposal: proposalRecord(message.proposal),
      });
    case 'vote':
      return encodeFlatCanonical({ v: WIRE_VERSION, kind: 'vote', vote: voteRecord(message.vote) });
    case 'txs':
      return encodeFlatCanonical({ v: WIRE_VERSION, txs: message.txs, kind: 'txs' });
    case 'status':
      return encodeFlatCanonical({
        v: WIRE_VERSION,
        kind: 'status',
        round: message.round,
        height: message.height,
        committedHeight: message.committedHeight,
      });
  }
}

export function decodeGossip(bytes: Uint8Array): GossipMessage {
  return decodeTop('gossip', bytes, MAX_GOSSIP_WIRE_BYTES, (reader) => {
    const fields = readRecord(reader, 'gossip', gossipSpec, true) as Partial<GossipFields>;
    const { kind } = fields;
    if (kind === undefined) throw malformed('gossip.kind', 'missing');
    const body = GOSSIP_BODY[kind];
    for (const key of Object.keys(fields) as (keyof GossipFields)[]) {
      if (key !== 'kind' && !body.includes(key)) {
        throw malformed(`gossip.${key}`, `not a field of a ${kind} message`);
      }
    }
    for (const key of body) {
      if (fields[key] === undefined) throw malformed(`gossip.${key}`, 'missing');
    }
    switch (kind) {
      case 'proposal':
        return { kind, proposal: fields.proposal! };
      case 'vote':
        return { kind, vote: fields.vote! };
      case 'txs':
        return { kind, txs: fields.txs! };
      case 'status':
        return {
          kind,
          committedHeight: fields.committedHeight!,
          height: fields.height!,
          round: fields.round!,
        };
    }
  });
}
