import type { KeyObject } from 'node:crypto';
import { sha256 } from '../../../src/crypto/hash.js';
import { ed25519KeyPairFromSeed, ed25519RawPublicKey } from '../../../src/crypto/ed25519.js';
import { blockTemplate, buildBlock } from '../../../src/consensus/block.js';
import type { ConsensusAction } from '../../../src/consensus/events.js';
import { genesisContext, type HeightContext } from '../../../src/consensus/height-context.js';
import { signProposal, signVote } from '../../../src/consensus/signer.js';
import type { ConsensusConfig } from '../../../src/consensus/state.js';
import type { TimeoutConfig } from '../../../src/consensus/timeouts.js';
import type { Block, Proposal, Vote, VoteType } from '../../../src/consensus/types.js';
import {
  createValidatorSet,
  validatorAddress,
  type ValidatorSet,
} from '../../../src/consensus/validator-set.js';
import { ed25519SignatureVerifier } from '../../../src/consensus/verify.js';
import { Prng } from './prng.js';

/** Shared helpers for the consensus unit tests: keys, votes, proposals and blocks. */

export const CHAIN_ID = 'hypermesh-test';
export const GENESIS_TIME = 1_700_000_000_000;
export const GENESIS_HASH = sha256(new TextEncoder().encode('hypermesh-test/genesis'));

export const TEST_TIMEOUTS: TimeoutConfig = {
  proposeMs: 1000,
  proposeDeltaMs: 100,
  prevoteMs: 500,
  prevoteDeltaMs: 50,
  precommitMs: 500,
  precommitDeltaMs: 50,
};

export interface TestValidator {
  readonly privateKey: KeyObject;
  readonly publicKey: Uint8Array;
  readonly address: string;
  readonly power: number;
}

/**
 * Validators with the given powers, keys derived from `seed` at test time. Returned in address
 * order (the order of the validator set).
 */
export function makeValidators(
  powers: readonly number[],
  seed = 1,
): { validators: TestValidator[]; set: ValidatorSet } {
  const prng = new Prng(seed);
  const validators = powers.map((power) => {
    const pair = ed25519KeyPairFromSeed(prng.bytes(32));
    const publicKey = ed25519RawPublicKey(pair.publicKey);
    return { privateKey: pair.privateKey, publicKey, address: validatorAddress(publicKey), power };
  });
  const set = createValidatorSet(validators.map(({ publicKey, power }) => ({ publicKey, power })));
  validators.sort((a, b) => (a.address < b.address ? -1 : 1));
  return { validators, set };
}

export function makeConfig(
  self: string | null,
  overrides: Partial<ConsensusConfig> = {},
): ConsensusConfig {
  return {
    chainId: CHAIN_ID,
    self,
    timeouts: TEST_TIMEOUTS,
    verifier: ed25519SignatureVerifier,
    requirePq: false,
    ...overrides,
  };
}

export function makeGenesis(set: ValidatorSet): HeightContext {
  return genesisContext(set, { hash: GENESIS_HASH, time: GENESIS_TIME });
}

export function makeVote(
  validator: TestValidator,
  type: VoteType,
  height: number,
  round: number,
  blockHash: Uint8Array | null,
  timestamp = GENESIS_TIME + 1000,
): Vote {
  return signVote(
    CHAIN_ID,
    { type, height, round, blockHash, validator: validator.address, notBefore: 0, pq: false },
    timestamp,
    validator.privateKey,
  );
}

/** A block valid for `context`, proposed by `proposer`, made different by `tag`. */
export function makeBlock(context: HeightContext, proposer: string, tag = 0): Block {
  return buildBlock(blockTemplate(CHAIN_ID, context, proposer), {
    transactions: [Uint8Array.of(1, 2, 3, tag)],
    evidence: [],
    appStateRoot: sha256(Uint8Array.of(tag)),
    consensusProof: new Uint8Array(0),
  });
}

export function makeProposal(
  proposer: TestValidator,
  block: Block,
  round: number,
  validRound = -1,
): Proposal {
  return signProposal(
    CHAIN_ID,
    { height: block.header.height, round, block, validRound, proposer: proposer.address },
    proposer.privateKey,
  );
}

/** The actions of one type. */
export function actionsOf<T extends ConsensusAction['type']>(
  actions: readonly ConsensusAction[],
  type: T,
): (ConsensusAction & { type: T })[] {
  return actions.filter((action): action is ConsensusAction & { type: T } => action.type === type);
}
