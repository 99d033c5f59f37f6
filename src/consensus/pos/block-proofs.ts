import type { KeyObject } from 'node:crypto';
import { bytesEqual, toHex } from '../../crypto/bytes.js';
import { ed25519RawPublicKey } from '../../crypto/ed25519.js';
import type { BlockTemplate } from '../block.js';
import type { BlockProofs } from '../driver/ports.js';
import { ConsensusError, ConsensusErrorCode } from '../errors.js';
import { assertGenesisDocument, type GenesisDocument } from '../genesis.js';
import type { HeightContext } from '../height-context.js';
import { invalidInput, ProofError, ProofErrorCode } from '../proof/errors.js';
import { verifyStamp } from '../proof/hashcash.js';
import type { SpaceParams } from '../proof/params.js';
import { computeSequentialWork, sequentialWorkSeed } from '../proof/sequential-work.js';
import { buildSpaceProof, MAX_ADDRESS_LENGTH } from '../proof/space.js';
import type { StoragePlot } from '../proof/storage-plot.js';
import type { PartVerdict, ProofPart } from '../proof/verdict.js';
import type { Block } from '../types.js';
import { validatorAddress } from '../validator-set.js';
import { blockAnchor } from './anchor.js';
import { encodeBlockProof, type TransactionStamp } from './encoding.js';
import { checkSpacePart } from './space-part.js';
import { proofSubject } from './subject.js';
import { checkSequentialChain } from './time-part.js';
import { checkStamps, type StampOf } from './work-part.js';

/** What a validator node needs to propose: its consensus key, its plot and its address. */
export interface ProposerIdentity {
  /** The validator's Ed25519 private key (signs votes, proposals and its address). */
  readonly privateKey: KeyObject;
  /** Its PoSpace plot, whose root is its validator entry's `storageRoot`. */
  readonly plot: StoragePlot;
  /** The address it announces in its proofs (its STOQ endpoint, e.g. `stoq://host:9292`). */
  readonly networkAddress: string;
}

export interface BlockProofsOptions {
  readonly genesis: GenesisDocument;
  readonly genesisHash: Uint8Array;
  readonly stampOf: StampOf;
  /** Absent on a node that does not validate: it can check proposals but never build one. */
  readonly self?: ProposerIdentity;
}

function sameSpaceParams(a: SpaceParams, b: SpaceParams): boolean {
  return (
    a.blockCount === b.blockCount &&
    a.slotsPerBlock === b.slotsPerBlock &&
    a.slotDifficulty === b.slotDifficulty &&
    a.challengeCount === b.challengeCount
  );
}

interface Proposer {
  readonly identity: ProposerIdentity;
  readonly publicKey: Uint8Array;
  readonly address: string;
}

function checkIdentity(genesis: GenesisDocument, identity: ProposerIdentity): Proposer {
  let publicKey: Uint8Array;
  try {
    publicKey = ed25519RawPublicKey(identity.privateKey);
  } catch (error) {
    throw invalidInput('self.privateKey must be an Ed25519 private key', { cause: error });
  }
  const { plot, networkAddress } = identity;
  if (!bytesEqual(plot.publicKey, publicKey)) {
    throw invalidInput("self.plot belongs to another key than the node's consensus key", {
      plotKey: toHex(plot.publicKey),
      publicKey: toHex(publicKey),
    });
  }
  if (!sameSpaceParams(plot.params, genesis.proof.space)) {
    throw invalidInput("self.plot was built under other space parameters than the genesis'", {
      plot: plot.params,
      genesis: genesis.proof.space,
    });
  }
  if (
    typeof networkAddress !== 'string' ||
    networkAddress.length === 0 ||
    networkAddress.length > MAX_ADDRESS_LENGTH
  ) {
    throw invalidInput(`self.networkAddress must be 1..${MAX_ADDRESS_LENGTH} characters`);
  }
  const registered = genesis.validators.find((entry) => bytesEqual(entry.publicKey, publicKey));
  if (registered !== undefined && !bytesEqual(registered.storageRoot, plot.root)) {
    throw invalidInput(
      `self.plot's root is not the storage root genesis registers for validator ${registered.name}`,
      { registered: toHex(registered.storageRoot), plot: toHex(plot.root) },
    );
  }
  return { identity, publicKey, address: validatorAddress(publicKey) };
}

function stampsOf(
  stampOf: StampOf,
  transactions: readonly Uint8Array[],
  difficulty: number,
): TransactionStamp[] {
  return transactions.map((tx, index) => {
    const stamp = stampOf(tx);
    if (stamp === undefined) {
      throw invalidInput(`transaction ${index} is not a valid envelope and carries no stamp`, {
        transaction: index,
      });
    }
    if (!verifyStamp(stamp.txHash, stamp.nonce, difficulty)) {
      throw invalidInput(`transaction ${index} has no stamp of ${difficulty} bits`, {
        transaction: index,
      });
    }
    return { txHash: stamp.txHash, nonce: stamp.nonce };
  });
}

/** A failed part as the engine's error for an invalid block. */
function invalidBlock(verdict: Exclude<PartVerdict<ProofPart>, { ok: true }>): ConsensusError {
  return new ConsensusError(
    ConsensusErrorCode.INVALID_BLOCK,
    `consensus proof, ${verdict.part}: ${verdict.message}`,
    { ...verdict.detail, part: verdict.part, reason: verdict.reason },
  );
}

/**
 * The consensus proof as the driver uses it (driver/ports.ts `BlockProofs`). `build` makes the
 * proposer's parts for its block; `checkProposal` checks them before the validator prevotes.
 * Re-execution (PoWork's state root) and the commit (PoStake) are not checked here: the driver
 * re-executes through the application, and the commit exists only after the vote.
 *
 * Throws `ConsensusError(INVALID_GENESIS)` for an invalid genesis document, and
 * `ProofError(INVALID_INPUT)` for a `genesisHash` that is not 32 bytes, or a `self` whose key,
 * plot (other key, other parameters, a root genesis does not register) or address does not fit.
 */
export function createBlockProofs(options: BlockProofsOptions): BlockProofs {
  const { genesis, genesisHash, stampOf } = options;
  assertGenesisDocument(genesis);
  if (!(genesisHash instanceof Uint8Array) || genesisHash.length !== 32) {
    throw invalidInput('genesisHash must be 32 bytes');
  }
  if (typeof stampOf !== 'function') throw invalidInput('stampOf must be a function');
  const proposer = options.self === undefined ? undefined : checkIdentity(genesis, options.self);

  return {
    build(template: BlockTemplate, transactions: readonly Uint8Array[]): Uint8Array {
      if (proposer === undefined) {
        throw new ProofError(
          ProofErrorCode.NOT_THE_PROPOSER,
          'this node is not a validator: it has no consensus key and storage plot to build a consensus proof with',
        );
      }
      if (template.proposer !== proposer.address) {
        throw new ProofError(
          ProofErrorCode.NOT_THE_PROPOSER,
          `the block's proposer ${template.proposer} is not this node (${proposer.address})`,
          { proposer: template.proposer, self: proposer.address },
        );
      }
      if (template.chainId !== genesis.chainId) {
        throw invalidInput(`the block is for chain ${template.chainId}, not ${genesis.chainId}`);
      }
      const stamps = stampsOf(stampOf, transactions, genesis.proof.work.stampDifficulty);
      const anchor = blockAnchor({
        chainId: genesis.chainId,
        height: template.height,
        parentHash: template.parentHash,
        genesisHash,
        proposer: proposer.publicKey,
      });
      const { identity } = proposer;
      return encodeBlockProof({
        space: buildSpaceProof({
          plot: identity.plot,
          anchor,
          address: identity.networkAddress,
          privateKey: identity.privateKey,
        }),
        stamps,
        sequentialWork: computeSequentialWork(sequentialWorkSeed(anchor), genesis.proof.time),
      });
    },

    checkProposal(context: HeightContext, block: Block): ConsensusError | undefined {
      const subject = proofSubject(genesis, genesisHash, context, block);
      const checks = [
        () => checkSpacePart(subject),
        () => checkStamps(subject, stampOf),
        () => checkSequentialChain(subject, { mode: 'full' }, new Uint8Array(0)),
      ];
      for (const check of checks) {
        const verdict = check();
        if (!verdict.ok) return invalidBlock(verdict);
      }
      return undefined;
    },
  };
}
