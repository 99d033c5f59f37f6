import type { KeyObject } from 'node:crypto';
import { randomBytes } from 'node:crypto';
import { ed25519RawPublicKey, generateEd25519KeyPair } from '../../src/crypto/ed25519.js';
import type { FalconBackend, FalconKeyPair } from '../../src/crypto/falcon.js';
import { defaultFalcon } from '../../src/crypto/falcon.js';
import { taggedHash } from '../../src/crypto/hash.js';
import type { ProofAnchor } from '../../src/consensus/proof/anchor.js';
import type {
  ConsensusProofContext,
  ProposerProofContext,
} from '../../src/consensus/proof/consensus-proof.js';
import {
  buildConsensusProof,
  buildProposerProof,
  genesisProofOutput,
  proposerProofHash,
} from '../../src/consensus/proof/consensus-proof.js';
import type { ConsensusProof, ProposerProof } from '../../src/consensus/proof/encoding.js';
import { mintStamp } from '../../src/consensus/proof/hashcash.js';
import type { ProofHeader } from '../../src/consensus/proof/header.js';
import { hashProofHeader, transactionsRoot } from '../../src/consensus/proof/header.js';
import type { ConsensusProofParams } from '../../src/consensus/proof/params.js';
import type { CommitSignature } from '../../src/consensus/proof/precommit.js';
import { attestPrecommit, signPrecommit } from '../../src/consensus/proof/precommit.js';
import type { QuorumCertificate } from '../../src/consensus/proof/quorum-certificate.js';
import { StoragePlot } from '../../src/consensus/proof/storage-plot.js';
import type { ValidatorSet } from '../../src/consensus/proof/validators.js';
import { hashValidatorSet } from '../../src/consensus/proof/validators.js';
import type { StateTransition, TransactionStamp } from '../../src/consensus/proof/work.js';

/**
 * Builds validator sets, plots and whole blocks with honest or deliberately forged consensus
 * proofs for the proof tests. Keys are generated at test time.
 */

/** Small parameters so every check runs in milliseconds; each one still bites. */
export const TEST_PARAMS: ConsensusProofParams = {
  space: { blockCount: 16, slotsPerBlock: 4, slotDifficulty: 6, challengeCount: 3 },
  stake: { requireFalconAttestations: true },
  work: { stampDifficulty: 6 },
  time: { iterations: 256, checkpointInterval: 16 },
};

export const CHAIN_ID = 'hypermesh-proof-test';
export const GENESIS_TIME = 1_700_000_000_000;

export interface TestValidator {
  readonly privateKey: KeyObject;
  readonly publicKey: Uint8Array;
  readonly falcon: FalconKeyPair | undefined;
  readonly plot: StoragePlot;
  readonly votingPower: number;
  readonly address: string;
}

export interface TestChain {
  readonly params: ConsensusProofParams;
  readonly validators: readonly TestValidator[];
  readonly set: ValidatorSet;
  readonly falcon: FalconBackend;
  readonly genesisHash: Uint8Array;
}

export async function makeChain(
  powers: readonly number[],
  params: ConsensusProofParams = TEST_PARAMS,
  withFalcon = params.stake.requireFalconAttestations,
): Promise<TestChain> {
  const falcon = defaultFalcon();
  const validators: TestValidator[] = [];
  for (const [i, votingPower] of powers.entries()) {
    const { privateKey } = generateEd25519KeyPair();
    const publicKey = ed25519RawPublicKey(privateKey);
    validators.push({
      privateKey,
      publicKey,
      falcon: withFalcon ? await falcon.generateKeyPair() : undefined,
      plot: StoragePlot.build(publicKey, params.space),
      votingPower,
      // Addresses are data inside the proof; nothing connects to them.
      address: `stoq://validator-${i}.test:9292`,
    });
  }
  const set: ValidatorSet = validators.map((validator) => ({
    publicKey: validator.publicKey,
    votingPower: validator.votingPower,
    storageRoot: validator.plot.root,
    ...(validator.falcon === undefined ? {} : { falconPublicKey: validator.falcon.publicKey }),
  }));
  return { params, validators, set, falcon, genesisHash: new Uint8Array(randomBytes(32)) };
}

/** A toy deterministic application: the state root hashes the parent root and the txs. */
export function toyStateRoot(parentStateRoot: Uint8Array, txHashes: readonly Uint8Array[]) {
  return taggedHash('test/toy-state', parentStateRoot, ...txHashes);
}

export interface ParentInfo {
  readonly height: number;
  readonly hash: Uint8Array;
  readonly proofOutput: Uint8Array;
  readonly time: number;
  readonly stateRoot: Uint8Array;
}

export function genesisParent(chain: TestChain): ParentInfo {
  return {
    height: 0,
    hash: chain.genesisHash,
    proofOutput: genesisProofOutput(CHAIN_ID, chain.genesisHash),
    time: GENESIS_TIME,
    stateRoot: new Uint8Array(32),
  };
}

export interface BlockPlan {
  readonly parent: ParentInfo;
  readonly proposer?: number;
  readonly round?: number;
  readonly txCount?: number;
  /** Validators (by position) whose precommits go into the certificate; default all. */
  readonly signers?: readonly number[];
  /** Precommit timestamp of each validator position; default parent time + 1 s + 10 ms·i. */
  readonly timestamps?: readonly number[];
  /** A Byzantine proposer's changes to its parts before the header commits to them. */
  readonly forgeProposerProof?: (proof: ProposerProof) => ProposerProof;
  /** A Byzantine proposer's changes to the header before it is signed. */
  readonly forgeHeader?: (header: ProofHeader) => ProofHeader;
}

export interface BlockFixture {
  readonly header: ProofHeader;
  readonly proposerProof: ProposerProof;
  readonly qc: QuorumCertificate;
  readonly proof: ConsensusProof;
  readonly context: ConsensusProofContext;
  readonly proposerContext: ProposerProofContext;
  readonly txHashes: readonly Uint8Array[];
  readonly stateRoot: Uint8Array;
}

export function stampedTransactions(count: number, difficulty: number): TransactionStamp[] {
  return Array.from({ length: count }, () => {
    const txHash = new Uint8Array(randomBytes(32));
    return { txHash, nonce: mintStamp(txHash, difficulty) };
  });
}

export async function makeBlock(chain: TestChain, plan: BlockPlan): Promise<BlockFixture> {
  const { parent } = plan;
  const height = parent.height + 1;
  const round = plan.round ?? 0;
  const proposerIndex = plan.proposer ?? height % chain.validators.length;
  const proposer = chain.validators[proposerIndex] as TestValidator;
  const stamps = stampedTransactions(plan.txCount ?? 3, chain.params.work.stampDifficulty);
  const txHashes = stamps.map((stamp) => stamp.txHash);
  const stateRoot = toyStateRoot(parent.stateRoot, txHashes);
  const anchor: ProofAnchor = {
    chainId: CHAIN_ID,
    height,
    parentHash: parent.hash,
    previousProofOutput: parent.proofOutput,
    proposer: proposer.publicKey,
  };
  const honestParts = buildProposerProof({
    params: chain.params,
    anchor,
    plot: proposer.plot,
    privateKey: proposer.privateKey,
    address: proposer.address,
    stamps,
  });
  const proposerProof = plan.forgeProposerProof?.(honestParts) ?? honestParts;
  const honestHeader: ProofHeader = {
    chainId: CHAIN_ID,
    height,
    parentHash: parent.hash,
    transactionsRoot: transactionsRoot(txHashes),
    stateRoot,
    validatorSetHash: hashValidatorSet(chain.set),
    proposer: proposer.publicKey,
    proposerProofHash: proposerProofHash(proposerProof),
    extensionHash: taggedHash('test/extension', String(height)),
  };
  const header = plan.forgeHeader?.(honestHeader) ?? honestHeader;
  const signers = plan.signers ?? chain.validators.map((_, i) => i);
  const signatures: CommitSignature[] = [];
  for (const i of signers) {
    const validator = chain.validators[i] as TestValidator;
    const timestamp = plan.timestamps?.[i] ?? parent.time + 1000 + 10 * i;
    let signature = signPrecommit(header, round, timestamp, validator.privateKey);
    if (validator.falcon !== undefined) {
      signature = await attestPrecommit(
        signature,
        header,
        round,
        chain.falcon,
        validator.falcon.secretKey,
      );
    }
    signatures.push(signature);
  }
  // Assembled by hand, not by buildQuorumCertificate (which verifies), so that a certificate
  // without a quorum can be made.
  const qc: QuorumCertificate = {
    height,
    round,
    blockHash: hashProofHeader(header),
    signatures,
  };
  const proof = buildConsensusProof({
    proposerProof,
    quorumCertificate: qc,
    validators: chain.set,
  });
  const reexecute: StateTransition = () => toyStateRoot(parent.stateRoot, txHashes);
  const proposerContext: ProposerProofContext = {
    params: chain.params,
    header,
    validators: chain.set,
    previousProofOutput: parent.proofOutput,
    reexecute,
  };
  const context: ConsensusProofContext = {
    ...proposerContext,
    parentTime: parent.time,
    falcon: chain.falcon,
  };
  return { header, proposerProof, qc, proof, context, proposerContext, txHashes, stateRoot };
}
