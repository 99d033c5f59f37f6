import type { KeyObject } from 'node:crypto';
import { bytesEqual, toHex } from '../../crypto/bytes.js';
import type { FalconBackend } from '../../crypto/falcon.js';
import { taggedHash } from '../../crypto/hash.js';
import type { ProofAnchor } from './anchor.js';
import { anchorOf } from './anchor.js';
import { bftTimeOf } from './bft-time.js';
import type { ConsensusProof, ProposerProof } from './encoding.js';
import {
  assertConsensusProof,
  CONSENSUS_PROOF_VERSION,
  encodeConsensusProof,
  encodeProposerProof,
  encodeQuorumCertificate,
} from './encoding.js';
import { invalidInput } from './errors.js';
import type { ProofHeader } from './header.js';
import { assertProofHeader } from './header.js';
import type { ConsensusProofParams } from './params.js';
import { assertProofParams } from './params.js';
import type { QuorumCertificate } from './quorum-certificate.js';
import { verifyQuorumCertificate } from './quorum-certificate.js';
import type { SequentialWorkCheck } from './sequential-work.js';
import {
  computeSequentialWork,
  sequentialWorkSeed,
  verifySequentialWork,
} from './sequential-work.js';
import { buildSpaceProof, verifySpaceProof } from './space.js';
import type { StoragePlot } from './storage-plot.js';
import { verifyTimeProof } from './time.js';
import type { ConsensusProofVerdict, PartVerdict } from './verdict.js';
import { failure, StakeFailure, VALID } from './verdict.js';
import type { ValidatorSet } from './validators.js';
import { assertValidatorSet, hashValidatorSet } from './validators.js';
import type { StateTransition, TransactionStamp } from './work.js';
import { buildWorkProof, verifyWorkProof } from './work.js';

/**
 * The four-part consensus proof ("Proof of State", ARCHITECTURE.md): where (PoSpace), who
 * (PoStake), what (PoWork), when (PoTime). It is built in two phases because the quorum signs
 * the header and the header commits to the proof:
 *
 *   1. the proposer builds its parts — storage-challenge answers and signed address, the block's
 *      transaction stamps, the sequential hash chain — and puts `proposerProofHash` into the
 *      header it proposes (`buildProposerProof`); validators check them before voting
 *      (`verifyProposerProof`);
 *   2. once more than 2/3 of the voting power has precommitted the header, the precommits form
 *      the quorum certificate, whose weighted-median timestamp is the BFT time
 *      (`buildConsensusProof`). Anyone can then check the whole (`verifyConsensusProof`).
 */
export function proposerProofHash(proof: ProposerProof): Uint8Array {
  return taggedHash('hypermesh/proposer-proof', encodeProposerProof(proof));
}

export function proposerProofOf(proof: ConsensusProof): ProposerProof {
  return { space: proof.space, work: proof.work, sequentialWork: proof.time.sequentialWork };
}

/**
 * What the next block's proof chains from: the hash of this proof's canonical encoding, quorum
 * certificate included. The canonical proof of a block is the one whose certificate is the last
 * commit carried by the next block.
 */
export function consensusProofOutput(proof: ConsensusProof): Uint8Array {
  return taggedHash('hypermesh/consensus-proof/output', encodeConsensusProof(proof));
}

/** The `previousProofOutput` of height 1. */
export function genesisProofOutput(chainId: string, genesisHash: Uint8Array): Uint8Array {
  if (!(genesisHash instanceof Uint8Array) || genesisHash.length !== 32) {
    throw invalidInput('the genesis hash must be 32 bytes');
  }
  return taggedHash('hypermesh/consensus-proof/genesis', chainId, genesisHash);
}

export interface ProposerProofInput {
  readonly params: ConsensusProofParams;
  readonly anchor: ProofAnchor;
  readonly plot: StoragePlot;
  /** The proposer's Ed25519 key (signs its address). */
  readonly privateKey: KeyObject;
  /** The proposer's network address, from its configuration. */
  readonly address: string;
  /** The block's transactions with their stamps, in block order. */
  readonly stamps: readonly TransactionStamp[];
}

/** Phase 1: the proposer's parts. Costs T hashes for the chain plus k plot look-ups. */
export function buildProposerProof(input: ProposerProofInput): ProposerProof {
  assertProofParams(input.params);
  const { params, anchor } = input;
  if (
    input.plot.params.blockCount !== params.space.blockCount ||
    input.plot.params.slotsPerBlock !== params.space.slotsPerBlock ||
    input.plot.params.slotDifficulty !== params.space.slotDifficulty
  ) {
    throw invalidInput('the plot was built under other space parameters');
  }
  return {
    space: buildSpaceProof({
      plot: input.plot,
      anchor,
      address: input.address,
      privateKey: input.privateKey,
    }),
    work: buildWorkProof(input.stamps, params.work),
    sequentialWork: computeSequentialWork(sequentialWorkSeed(anchor), params.time),
  };
}

export interface ConsensusProofInput {
  readonly proposerProof: ProposerProof;
  readonly quorumCertificate: QuorumCertificate;
  /** The validator set that voted (its powers weight the BFT time). */
  readonly validators: ValidatorSet;
}

/** Phase 2: adds the quorum certificate and its BFT time. */
export function buildConsensusProof(input: ConsensusProofInput): ConsensusProof {
  const { proposerProof, quorumCertificate, validators } = input;
  return {
    version: CONSENSUS_PROOF_VERSION,
    space: proposerProof.space,
    stake: quorumCertificate,
    work: proposerProof.work,
    time: {
      bftTime: bftTimeOf(quorumCertificate, validators),
      sequentialWork: proposerProof.sequentialWork,
    },
  };
}

/** What a validator knows when it checks a proposal. */
export interface ProposerProofContext {
  readonly params: ConsensusProofParams;
  readonly header: ProofHeader;
  /** The validator set that votes on `header.height`, with registered storage roots. */
  readonly validators: ValidatorSet;
  /** `consensusProofOutput` of the canonical parent proof, or `genesisProofOutput` at height 1. */
  readonly previousProofOutput: Uint8Array;
  readonly reexecute: StateTransition;
}

/** What anyone checking a committed block knows. */
export interface ConsensusProofContext extends ProposerProofContext {
  /** BFT time of the parent (the genesis time at height 1), in milliseconds. */
  readonly parentTime: number;
  /** Needed when precommits carry FALCON-1024 attestations. */
  readonly falcon?: FalconBackend;
}

export interface VerifyOptions {
  /**
   * How much of the hash chain to recompute. `full` (default) is exact and costs T hashes;
   * `sampled` costs s·C and is probabilistic (docs/consensus-proof.md, "Sampled checks").
   */
  readonly sequentialWork?: SequentialWorkCheck;
}

function assertContext(context: ProposerProofContext): void {
  assertProofParams(context.params);
  assertProofHeader(context.header);
  assertValidatorSet(context.validators);
  const output = context.previousProofOutput;
  if (!(output instanceof Uint8Array) || output.length !== 32) {
    throw invalidInput('previousProofOutput must be 32 bytes');
  }
  if (typeof context.reexecute !== 'function') {
    throw invalidInput('reexecute must be a function');
  }
}

function assertCheck(check: SequentialWorkCheck): void {
  if (check.mode === 'full') return;
  if (check.mode !== 'sampled' || !Number.isSafeInteger(check.segments) || check.segments < 1) {
    throw invalidInput('sampled sequential-work checks need a positive number of segments');
  }
}

function validatorSetVerdict(context: ProposerProofContext): PartVerdict<'stake'> {
  if (bytesEqual(hashValidatorSet(context.validators), context.header.validatorSetHash)) {
    return VALID;
  }
  return failure(
    'stake',
    StakeFailure.VALIDATOR_SET_MISMATCH,
    "the validator set does not hash to the header's validatorSetHash",
  );
}

function attestationVerdict(
  proposerProof: ProposerProof,
  header: ProofHeader,
): PartVerdict<'stake'> {
  const committed = proposerProofHash(proposerProof);
  if (bytesEqual(committed, header.proposerProofHash)) return VALID;
  return failure(
    'stake',
    StakeFailure.PROOF_NOT_ATTESTED,
    "the header's proposerProofHash does not commit to these proof parts",
    { header: toHex(header.proposerProofHash), parts: toHex(committed) },
  );
}

function registeredRootOf(validators: ValidatorSet, proposer: Uint8Array): Uint8Array | undefined {
  return validators.find((validator) => bytesEqual(validator.publicKey, proposer))?.storageRoot;
}

/** Runs verifiers in order and returns the first failure. */
function firstFailure(checks: readonly (() => ConsensusProofVerdict)[]): ConsensusProofVerdict {
  for (const check of checks) {
    const verdict = check();
    if (!verdict.ok) return verdict;
  }
  return VALID;
}

/** PoSpace against the proposer's registered storage commitment; shared by both verifiers. */
function spaceVerdict(
  space: ProposerProof['space'],
  context: ProposerProofContext,
  anchor: ReturnType<typeof anchorOf>,
): ConsensusProofVerdict {
  return verifySpaceProof(space, {
    anchor,
    registeredRoot: registeredRootOf(context.validators, context.header.proposer),
    params: context.params.space,
  });
}

/**
 * Checks a proposal's proof parts before voting: validator set, space, work (including
 * re-execution), the whole hash chain, and that the header commits to exactly these parts.
 * Throws `ProofError` only for a malformed context.
 */
export function verifyProposerProof(
  proof: ProposerProof,
  context: ProposerProofContext,
): ConsensusProofVerdict {
  assertContext(context);
  const { params, header } = context;
  const anchor = anchorOf(header, context.previousProofOutput);
  return firstFailure([
    () => validatorSetVerdict(context),
    () => spaceVerdict(proof.space, context, anchor),
    () =>
      verifyWorkProof(proof.work, { header, params: params.work, reexecute: context.reexecute }),
    () =>
      verifySequentialWork(proof.sequentialWork, {
        expectedSeed: sequentialWorkSeed(anchor),
        params: params.time,
        check: { mode: 'full' },
        sampleBinding: new Uint8Array(0),
      }),
    () => attestationVerdict(proof, header),
  ]);
}

/**
 * Checks a committed block's proof against what the verifier knows. Order: the validator set
 * (stake), PoSpace, the rest of PoStake (certificate, then that the header commits to the
 * proposer's parts), PoWork, PoTime; the first failure is returned. Throws `ProofError` for a
 * malformed context or a proof value that is not shaped like a v1 proof (bytes from elsewhere
 * should come through `decodeConsensusProof`).
 */
export function verifyConsensusProof(
  proof: ConsensusProof,
  context: ConsensusProofContext,
  options: VerifyOptions = {},
): ConsensusProofVerdict {
  assertContext(context);
  if (!Number.isSafeInteger(context.parentTime) || context.parentTime < 0) {
    throw invalidInput('parentTime must be non-negative integer milliseconds');
  }
  const check = options.sequentialWork ?? { mode: 'full' };
  assertCheck(check);
  assertConsensusProof(proof);
  const { params, header, validators } = context;
  const anchor = anchorOf(header, context.previousProofOutput);
  return firstFailure([
    () => validatorSetVerdict(context),
    () => spaceVerdict(proof.space, context, anchor),
    () =>
      verifyQuorumCertificate(proof.stake, {
        header,
        validators,
        params: params.stake,
        ...(context.falcon === undefined ? {} : { falcon: context.falcon }),
      }),
    () => attestationVerdict(proposerProofOf(proof), header),
    () =>
      verifyWorkProof(proof.work, { header, params: params.work, reexecute: context.reexecute }),
    () =>
      verifyTimeProof(proof.time, {
        qc: proof.stake,
        validators,
        parentTime: context.parentTime,
        expectedSeed: sequentialWorkSeed(anchor),
        params: params.time,
        check,
        sampleBinding: encodeQuorumCertificate(proof.stake),
      }),
  ]);
}
