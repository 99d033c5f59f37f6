import { encodeCanonical } from '../codec/cbor.js';
import { encodeFlatCanonical, type FlatRecord } from '../codec/flat-canonical.js';
import { concatBytes } from '../crypto/bytes.js';
import { FALCON_ALGORITHM_ID } from '../crypto/falcon.js';
import { sha256 } from '../crypto/hash.js';
import { leafHash, rootFromLeafHashes } from '../crypto/merkle.js';
import type {
  BlockHeader,
  DuplicateVoteEvidence,
  QuorumCertificate,
  Vote,
  VoteType,
  ValidatorAddress,
} from './types.js';
import { voteRecord } from './vote-record.js';

/**
 * Canonical bytes of everything the engine signs or hashes: deterministic CBOR (RFC 8949
 * §4.2.1) of a map whose `domain` names what it is and its version, and which carries the
 * chain id, so a signature for one purpose or one chain is never valid for another.
 */
export const VOTE_DOMAIN = 'hypermesh/consensus/vote/v1';
export const PROPOSAL_DOMAIN = 'hypermesh/consensus/proposal/v1';
export const PRECOMMIT_PQ_DOMAIN = 'hypermesh/consensus/precommit-pq/v1';
export const BLOCK_HEADER_DOMAIN = 'hypermesh/consensus/block-header/v1';
export const COMMIT_DOMAIN = 'hypermesh/consensus/commit/v1';
export const EVIDENCE_DOMAIN = 'hypermesh/consensus/evidence/v1';

/** Length of a block hash (SHA-256). */
export const BLOCK_HASH_BYTES = 32;

export interface VoteContent {
  readonly type: VoteType;
  readonly height: number;
  readonly round: number;
  readonly blockHash: Uint8Array | null;
  readonly timestamp: number;
  readonly validator: ValidatorAddress;
}

/**
 * What a validator's Ed25519 vote signature covers. Votes are the most frequent signed message
 * (every validator checks every other's), hence the fast flat encoder (codec/flat-canonical.ts).
 */
export function voteSignBytes(chainId: string, vote: VoteContent): Uint8Array {
  return encodeFlatCanonical({
    domain: VOTE_DOMAIN,
    chainId,
    type: vote.type,
    height: vote.height,
    round: vote.round,
    blockHash: vote.blockHash,
    timestamp: vote.timestamp,
    validator: vote.validator,
  });
}

export interface ProposalContent {
  readonly height: number;
  readonly round: number;
  readonly blockHash: Uint8Array;
  readonly validRound: number;
  readonly proposer: ValidatorAddress;
}

/** What the proposer's Ed25519 proposal signature covers (the block by its hash). */
export function proposalSignBytes(chainId: string, proposal: ProposalContent): Uint8Array {
  return encodeFlatCanonical({
    domain: PROPOSAL_DOMAIN,
    chainId,
    height: proposal.height,
    round: proposal.round,
    blockHash: proposal.blockHash,
    validRound: proposal.validRound,
    proposer: proposal.proposer,
  });
}

/**
 * What the FALCON-1024 signature of a precommit covers: the block header, through its hash, and
 * the round. Tagged with the FALCON format (Round 3, not FIPS 206) so a later format cannot be
 * confused with it.
 */
export function precommitPqSignBytes(
  chainId: string,
  precommit: { readonly height: number; readonly round: number; readonly blockHash: Uint8Array },
): Uint8Array {
  return encodeFlatCanonical({
    domain: PRECOMMIT_PQ_DOMAIN,
    algorithm: FALCON_ALGORITHM_ID,
    chainId,
    height: precommit.height,
    round: precommit.round,
    blockHash: precommit.blockHash,
  });
}

/** Canonical encoding of a header; its SHA-256 is the block hash. */
export function blockHeaderBytes(header: BlockHeader): Uint8Array {
  return encodeFlatCanonical({
    domain: BLOCK_HEADER_DOMAIN,
    chainId: header.chainId,
    height: header.height,
    time: header.time,
    parentHash: header.parentHash,
    transactionsRoot: header.transactionsRoot,
    evidenceRoot: header.evidenceRoot,
    lastCommitHash: header.lastCommitHash,
    appStateRoot: header.appStateRoot,
    validatorsHash: header.validatorsHash,
    proposer: header.proposer,
    consensusProof: header.consensusProof,
  });
}

/** id(v) of the paper: SHA-256 of the canonical header. */
export function blockHash(header: BlockHeader): Uint8Array {
  return sha256(blockHeaderBytes(header));
}

/**
 * A vote as hashed inside a commit or evidence: every signed field and the signatures, with
 * `pqSignature` always present (null when absent), unlike the WAL and wire forms that omit it.
 * These bytes are fixed: block hashes depend on them.
 */
function hashedVoteRecord(vote: Vote): FlatRecord {
  return { ...voteRecord(vote), pqSignature: vote.pqSignature ?? null };
}

/**
 * Hash of a block's last commit (null at height 1): the commit's fields and the SHA-256 of its
 * precommits' canonical encodings one after another (CBOR items delimit themselves).
 */
export function commitHash(commit: QuorumCertificate | null): Uint8Array {
  if (commit === null) return sha256(encodeFlatCanonical({ domain: COMMIT_DOMAIN, commit: null }));
  return sha256(
    encodeFlatCanonical({
      domain: COMMIT_DOMAIN,
      height: commit.height,
      round: commit.round,
      blockHash: commit.blockHash,
      precommits: sha256(
        concatBytes(
          ...commit.precommits.map((vote) => encodeFlatCanonical(hashedVoteRecord(vote))),
        ),
      ),
    }),
  );
}

/** Hash of a block's evidence list. */
export function evidenceRoot(evidence: readonly DuplicateVoteEvidence[]): Uint8Array {
  return sha256(
    encodeCanonical({
      domain: EVIDENCE_DOMAIN,
      evidence: evidence.map((item) => ({
        voteA: hashedVoteRecord(item.voteA),
        voteB: hashedVoteRecord(item.voteB),
      })),
    }),
  );
}

/** RFC 6962 Merkle tree hash over the transactions, so one can be proven by an inclusion path. */
export function transactionsRoot(transactions: readonly Uint8Array[]): Uint8Array {
  return rootFromLeafHashes(transactions.map((transaction) => leafHash(transaction)));
}
