import { randomBytes } from 'node:crypto';
import {
  BONDED_KEY,
  DEFAULT_STAKING_PARAMS,
  FEE_POOL_KEY,
  PARAMS_KEY,
  UNBONDING_TOTAL_KEY,
  VALIDATORS_KEY,
  balanceKey,
  caesarInitialState,
  caesarStateKey,
  consensusAddress,
  createCaesarModule,
  decodeStoredAmount,
  decodeTokenParams,
  decodeUnbondingEntries,
  decodeValidatorList,
  decodeValidatorRecord,
  ed25519Address,
  encodeStakingTx,
  formatConsensusAddress,
  unbondingKey,
  validatorKey,
} from '../../src/caesar/index.js';
import type {
  CaesarGenesis,
  StakingParams,
  StakingTx,
  UnbondingEntry,
  ValidatorRecord,
} from '../../src/caesar/index.js';
import type { BlockExecutionResult, LastCommitInfo } from '../../src/consensus/app.js';
import type { DuplicateVoteEvidence, Vote } from '../../src/consensus/types.js';
import { CHAIN_ID, makeSender, openNode, tx } from '../consensus/application/fixture.js';
import type { Sender, TestNode } from '../consensus/application/fixture.js';
import { TOKEN } from './caesar-fixture.js';

/** A validator's keys for tests: its Ed25519 sender, a FALCON-sized key and a storage root. */
export interface TestValidator {
  readonly sender: Sender;
  readonly pqKey: Uint8Array;
  readonly storageRoot: Uint8Array;
  /** 20-byte consensus address. */
  readonly address: Uint8Array;
  /** As blocks name it (hex). */
  readonly id: string;
  /** Operator account (SHA-256 of the key). */
  readonly account: Uint8Array;
}

/** `sender`: a key that exists already (e.g. a genesis intermediate holder's). */
export function makeValidator(sender: Sender = makeSender()): TestValidator {
  const address = consensusAddress(sender.publicKey);
  return {
    sender,
    pqKey: new Uint8Array(randomBytes(1793)),
    storageRoot: new Uint8Array(randomBytes(32)),
    address,
    id: formatConsensusAddress(address),
    account: ed25519Address(sender.publicKey),
  };
}

/** Small, round parameters for tests: power = stake / 100. */
export const TEST_PARAMS: StakingParams = {
  ...DEFAULT_STAKING_PARAMS,
  epochBlocks: 4,
  maxValidators: 3,
  minValidatorStake: 1_000n,
  powerUnit: 100n,
  unbondingBlocks: 5,
  blockReward: 0n,
  proposerBonusBps: 1_000,
  slashFractionBps: 1_000,
  signedWindow: 4,
  maxMissed: 2,
  jailBlocks: 3,
};

export interface StakingGenesisInput {
  readonly params?: Partial<StakingParams>;
  readonly validators: readonly {
    validator: TestValidator;
    selfBond: bigint;
    commission?: number;
  }[];
  readonly balances: readonly { address: Uint8Array; amount: bigint }[];
}

export function stakingGenesis(input: StakingGenesisInput): CaesarGenesis {
  const bonded = input.validators.reduce((sum, v) => sum + v.selfBond, 0n);
  const allocated = input.balances.reduce((sum, b) => sum + b.amount, 0n);
  return {
    token: { ...TOKEN, supply: bonded + allocated },
    allocations: input.balances.filter((b) => b.amount > 0n),
    staking: {
      params: { ...TEST_PARAMS, ...input.params },
      validators: input.validators.map(({ validator, selfBond, commission }) => ({
        publicKey: validator.sender.publicKey,
        pqPublicKey: validator.pqKey,
        storageRoot: validator.storageRoot,
        selfBond,
        commission: commission ?? 0,
      })),
    },
  };
}

export function openStakingNode(genesis: CaesarGenesis): Promise<TestNode> {
  return openNode({ modules: [createCaesarModule()], initialState: caesarInitialState(genesis) });
}

export function stakingTx(sender: Sender, body: StakingTx, sequence?: number): Uint8Array {
  return tx(sender, encodeStakingTx(body), {
    module: 'caesar',
    ...(sequence === undefined ? {} : { sequence }),
  });
}

/** A fake equivocation by `validator` at `height` (consensus verified it; Caesar reads names). */
export function equivocation(validator: TestValidator, height: number): DuplicateVoteEvidence {
  const vote = (fill: number): Vote => ({
    type: 'precommit',
    height,
    round: 0,
    blockHash: new Uint8Array(32).fill(fill),
    timestamp: 0,
    validator: validator.id,
    signature: new Uint8Array(64),
  });
  return { voteA: vote(1), voteB: vote(2) };
}

export interface BlockExtras {
  readonly proposer?: TestValidator;
  readonly lastCommit?: {
    readonly signed: readonly { validator: TestValidator; power: number }[];
    readonly missed?: readonly { validator: TestValidator; power: number }[];
  };
  readonly evidence?: readonly DuplicateVoteEvidence[];
}

export function lastCommitOf(height: number, extras: BlockExtras): LastCommitInfo | undefined {
  const info = extras.lastCommit;
  if (info === undefined) return undefined;
  const votes = [
    ...info.signed.map(({ validator, power }) => ({
      validator: validator.id,
      power,
      signed: true,
    })),
    ...(info.missed ?? []).map(({ validator, power }) => ({
      validator: validator.id,
      power,
      signed: false,
    })),
  ].sort((a, b) => (a.validator < b.validator ? -1 : 1));
  return { height: height - 1, votes };
}

export function blockInput(
  height: number,
  transactions: readonly Uint8Array[],
  extras: BlockExtras,
) {
  const lastCommit = lastCommitOf(height, extras);
  return {
    chainId: CHAIN_ID,
    height,
    time: 1_700_000_000_000 + height * 1000,
    proposer: extras.proposer?.id ?? 'ff'.repeat(20),
    transactions,
    evidence: extras.evidence ?? [],
    ...(lastCommit === undefined ? {} : { lastCommit }),
  };
}

/** Executes the next block on `node` and commits it. */
export function runBlock(
  node: TestNode,
  transactions: readonly Uint8Array[] = [],
  extras: BlockExtras = {},
): BlockExecutionResult {
  const result = node.app.executeBlock(blockInput(node.nextHeight(), transactions, extras));
  node.commit(result);
  return result;
}

const read = (node: TestNode, key: Uint8Array) => node.store.state.get(caesarStateKey(key));

export const balanceOf = (node: TestNode, address: Uint8Array): bigint =>
  decodeStoredAmount(read(node, balanceKey(address)));
export const feePoolOf = (node: TestNode): bigint => decodeStoredAmount(read(node, FEE_POOL_KEY));
export const bondedOf = (node: TestNode): bigint => decodeStoredAmount(read(node, BONDED_KEY));
export const unbondingTotalOf = (node: TestNode): bigint =>
  decodeStoredAmount(read(node, UNBONDING_TOTAL_KEY));
export const supplyOf = (node: TestNode): bigint =>
  decodeTokenParams(read(node, PARAMS_KEY)!).supply;

export function recordOf(node: TestNode, validator: TestValidator): ValidatorRecord | undefined {
  const value = read(node, validatorKey(validator.address));
  return value === null ? undefined : decodeValidatorRecord(value);
}

export function unbondingOf(node: TestNode, delegator: Uint8Array): UnbondingEntry[] {
  const value = read(node, unbondingKey(delegator));
  return value === null ? [] : decodeUnbondingEntries(value);
}

/** The consensus addresses in `vals` (hex), in stored order. */
export function validatorListOf(node: TestNode): string[] {
  const value = read(node, VALIDATORS_KEY);
  return value === null ? [] : decodeValidatorList(value).map(formatConsensusAddress);
}
