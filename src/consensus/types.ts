/**
 * The values Tendermint agrees on and the messages it exchanges (Buchman, Kwon, Milosevic 2018,
 * "The latest gossip on BFT consensus", arXiv:1807.04938, §2-§3). Everything here is plain
 * immutable data: hashes and signatures are byte strings, times are integer milliseconds since
 * the Unix epoch, and validators are named by their address.
 */

/** Lowercase hex of the first 20 bytes of SHA-256 over the validator's Ed25519 public key. */
export type ValidatorAddress = string;

export type VoteType = 'prevote' | 'precommit';

/** A step of a round (paper line 4), plus `commit` once the height has a decision (line 51). */
export type RoundStep = 'propose' | 'prevote' | 'precommit' | 'commit';

/** The steps that have a timeout (paper lines 57, 61, 65). */
export type TimeoutStep = 'propose' | 'prevote' | 'precommit';

/**
 * ⟨PREVOTE|PRECOMMIT, h, r, id(v)|nil⟩ signed by one validator. `blockHash` null is the nil vote.
 * `timestamp` is the validator's clock when it signed; the precommits of a commit determine the
 * next block's BFT time.
 */
export interface Vote {
  readonly type: VoteType;
  readonly height: number;
  readonly round: number;
  readonly blockHash: Uint8Array | null;
  readonly timestamp: number;
  readonly validator: ValidatorAddress;
  /** Ed25519 over `voteSignBytes` (messages.ts). */
  readonly signature: Uint8Array;
  /**
   * FALCON-1024 over `precommitPqSignBytes`: a precommit for a block carries it, so every
   * committed block has a post-quantum quorum attestation. Absent on prevotes and nil votes.
   */
  readonly pqSignature?: Uint8Array;
}

/** A vote before it is signed: what the state machine asks its signer for. */
export interface VoteRequest {
  readonly type: VoteType;
  readonly height: number;
  readonly round: number;
  readonly blockHash: Uint8Array | null;
  readonly validator: ValidatorAddress;
  /** The signed timestamp must be at least this (one past the time of the block voted on). */
  readonly notBefore: number;
  /** The signer must add a FALCON-1024 `pqSignature`. */
  readonly pq: boolean;
}

/** ⟨PROPOSAL, h, r, v, vr⟩ (paper line 19), signed by proposer(h, r). */
export interface Proposal {
  readonly height: number;
  readonly round: number;
  readonly block: Block;
  /** vr: the round in which `block` got a prevote quorum, or -1. */
  readonly validRound: number;
  readonly proposer: ValidatorAddress;
  /** Ed25519 over `proposalSignBytes`, which binds the block by its hash. */
  readonly signature: Uint8Array;
}

export type ProposalRequest = Omit<Proposal, 'signature'>;

/**
 * Block header (issue 3 §1). The body (transactions, evidence, last commit) is bound by its
 * roots, so the header hash — `id(v)` in the paper — commits to the whole block.
 */
export interface BlockHeader {
  readonly chainId: string;
  readonly height: number;
  /** BFT time: weighted median of the parent commit's precommit timestamps (block.ts). */
  readonly time: number;
  /** Hash of the block at height - 1; at height 1 the genesis document hash. */
  readonly parentHash: Uint8Array;
  /** RFC 6962 Merkle root over the transactions. */
  readonly transactionsRoot: Uint8Array;
  /** Hash of the evidence list. */
  readonly evidenceRoot: Uint8Array;
  /** Hash of `lastCommit`, the quorum certificate of the parent block. */
  readonly lastCommitHash: Uint8Array;
  /**
   * Application state root after executing this block's transactions: blocks are executed
   * immediately, by the proposer before proposing and by every validator before prevoting.
   */
  readonly appStateRoot: Uint8Array;
  /** Hash of the validator set that decides this height. */
  readonly validatorsHash: Uint8Array;
  readonly proposer: ValidatorAddress;
  /**
   * The proposer's parts of the four-part consensus proof (PoSpace answers and signed address,
   * PoWork stamps, PoTime hash chain), encoded by src/consensus/pos; opaque to the engine.
   */
  readonly consensusProof: Uint8Array;
}

export interface Block {
  readonly header: BlockHeader;
  readonly transactions: readonly Uint8Array[];
  readonly evidence: readonly DuplicateVoteEvidence[];
  /** The commit of the parent block; null at height 1. */
  readonly lastCommit: QuorumCertificate | null;
}

/**
 * The commit of a block: precommits for `blockHash` in one round from validators holding more
 * than 2/3 of the voting power (paper line 49), sorted by validator address.
 */
export interface QuorumCertificate {
  readonly height: number;
  readonly round: number;
  readonly blockHash: Uint8Array;
  readonly precommits: readonly Vote[];
}

/**
 * Two votes signed by one validator for different values at one height, round and type: proof
 * of equivocation (paper §5, accountability). `voteA` sorts before `voteB` (evidence.ts).
 */
export interface DuplicateVoteEvidence {
  readonly voteA: Vote;
  readonly voteB: Vote;
}
