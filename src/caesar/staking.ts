import type { ModuleState, ModuleStateReader } from '../consensus/application/module.js';
import { bytesEqual, toHex } from '../crypto/bytes.js';
import { ed25519Address } from './address.js';
import { AMOUNT_LIMIT } from './amount.js';
import { CaesarError, CaesarErrorCode } from './errors.js';
import { decodeStakingParams } from './staking-params.js';
import type { StakingParams } from './staking-params.js';
import {
  BONDED_KEY,
  JailReason,
  MAX_DELEGATIONS_PER_ACCOUNT,
  MAX_UNBONDING_ENTRIES,
  MAX_VALIDATOR_CANDIDATES,
  STAKING_PARAMS_KEY,
  UNBONDING_TOTAL_KEY,
  VALIDATORS_KEY,
  compareAddresses,
  consensusAddress,
  encodeValidatorList,
  formatConsensusAddress,
  missedKey,
  readDelegatorIndex,
  readQueue,
  readShares,
  readUnbondingEntries,
  readValidator,
  readValidatorList,
  sharesValue,
  withVacancy,
  writeQueue,
  writeShares,
  writeUnbondingEntries,
  writeValidator,
} from './staking-state.js';
import type { ValidatorRecord } from './staking-state.js';
import {
  CREATE_VALIDATOR_OP,
  DELEGATE_OP,
  EDIT_VALIDATOR_OP,
  UNBOND_OP,
  UNJAIL_OP,
} from './staking-tx.js';
import type {
  CreateValidator,
  Delegate,
  EditValidator,
  StakingTx,
  Unbond,
  Unjail,
} from './staking-tx.js';
import { FEE_POOL_KEY, balanceKey, readAmount, writeAmount } from './state.js';
import {
  createValidatorEvent,
  delegateEvent,
  editValidatorEvent,
  feeEvents,
  unbondEvent,
  unjailEvent,
} from './events.js';
import type { CaesarEvent } from './events.js';

/**
 * The stateful rules of the staking transactions (docs/caesar.md, "Staking transactions").
 * Each `plan…` function checks everything against the state and returns what to write, so
 * `check` (read-only, at admission) and `apply` run exactly the same rules; `apply` then writes
 * the plan. A refusal throws `CaesarError` before anything is written.
 *
 * `account` is the address the transaction acts for: `ed25519Address(sender)` for a plain
 * transaction, the hybrid address for one wrapped in a hybrid body (hybrid.ts). Delegations and
 * unbonds belong to it; `create-validator`, `unjail` and `edit-validator` act for the sender's
 * consensus key and its own address only.
 */

/** The staking parameters, or `STAKING_DISABLED` when the genesis has no staking section. */
export function requireStakingParams(state: ModuleStateReader): StakingParams {
  const value = state.get(STAKING_PARAMS_KEY);
  if (value === null) {
    throw new CaesarError(
      CaesarErrorCode.STAKING_DISABLED,
      'staking: this chain has no staking (its Caesar genesis has no staking section)',
    );
  }
  return decodeStakingParams(value);
}

function requireFunds(state: ModuleStateReader, op: string, account: Uint8Array, cost: bigint) {
  const balance = readAmount(state, balanceKey(account));
  if (balance < cost) {
    throw new CaesarError(
      CaesarErrorCode.INSUFFICIENT_FUNDS,
      `${op}: balance ${balance} is below the ${cost} base units it needs`,
      { address: toHex(account), balance: balance.toString(), needed: cost.toString() },
    );
  }
  return balance;
}

function requireValidator(
  state: ModuleStateReader,
  op: string,
  validator: Uint8Array,
): ValidatorRecord {
  const record = readValidator(state, validator);
  if (record === undefined) {
    throw new CaesarError(
      CaesarErrorCode.UNKNOWN_VALIDATOR,
      `${op}: no validator ${formatConsensusAddress(validator)}`,
      { validator: formatConsensusAddress(validator) },
    );
  }
  return record;
}

/** Debits `cost` (already checked) and adds `fee` to the fee pool. */
function pay(state: ModuleState, account: Uint8Array, balance: bigint, cost: bigint, fee: bigint) {
  writeAmount(state, balanceKey(account), balance - cost);
  if (fee > 0n) writeAmount(state, FEE_POOL_KEY, readAmount(state, FEE_POOL_KEY) + fee);
}

function addTotal(state: ModuleState, key: Uint8Array, delta: bigint): void {
  writeAmount(state, key, readAmount(state, key) + delta);
}

/** Validator-key ops only for the sender's own Ed25519 account (never hybrid). */
function requireOwnKey(op: string, sender: Uint8Array, account: Uint8Array): void {
  if (!bytesEqual(account, ed25519Address(sender))) {
    throw new CaesarError(
      CaesarErrorCode.HYBRID_VALIDATOR_OP,
      `${op}: acts for the validator's Ed25519 consensus key and its own account only, not for ${toHex(account)}`,
      { op, account: toHex(account) },
    );
  }
}

interface CreatePlan {
  readonly operator: Uint8Array;
  readonly balance: bigint;
  readonly validators: Uint8Array[];
}

/**
 * What a new validator's consensus key must satisfy beyond the staking rules: on a chain with the
 * `ca` module, holding a TrustChain intermediate in effect (validator-intermediate.ts, wired in
 * module.ts). Throws `CaesarError`; absent, any key may register.
 */
export type ValidatorKeyRule = (consensusKey: Uint8Array) => void;

function planCreate(
  state: ModuleStateReader,
  tx: CreateValidator,
  sender: Uint8Array,
  keyRule: ValidatorKeyRule | undefined,
): CreatePlan {
  const params = requireStakingParams(state);
  const validator = consensusAddress(sender);
  if (readValidator(state, validator) !== undefined) {
    throw new CaesarError(
      CaesarErrorCode.VALIDATOR_EXISTS,
      `create-validator: key ${toHex(sender)} already has validator ${formatConsensusAddress(validator)}`,
      { validator: formatConsensusAddress(validator) },
    );
  }
  keyRule?.(sender);
  // A validator that could never be selected would only take a place in the bounded `vals`
  // list: registering costs at least the stake that qualifies for the set.
  if (tx.bond < params.minValidatorStake) {
    throw new CaesarError(
      CaesarErrorCode.SELF_BOND_TOO_SMALL,
      `create-validator: a self-bond of ${tx.bond} is below minValidatorStake ${params.minValidatorStake}`,
      { bond: tx.bond.toString(), minValidatorStake: params.minValidatorStake.toString() },
    );
  }
  const validators = readValidatorList(state);
  if (validators.length >= MAX_VALIDATOR_CANDIDATES) {
    throw new CaesarError(
      CaesarErrorCode.TOO_MANY_VALIDATORS,
      `create-validator: ${validators.length} validators exist, the most there can be`,
    );
  }
  const operator = ed25519Address(sender);
  requireDelegationRoom(state, tx.op, operator, validator);
  const balance = requireFunds(state, tx.op, operator, tx.bond + tx.fee);
  return { operator, balance, validators };
}

/**
 * Refuses to give `account` shares of `validator` when it has none of it yet and already has
 * shares of `MAX_DELEGATIONS_PER_ACCOUNT` validators: its delegator index, which weighing its
 * votes and proving its delegations read in full, stays bounded.
 */
function requireDelegationRoom(
  state: ModuleStateReader,
  op: string,
  account: Uint8Array,
  validator: Uint8Array,
): void {
  const index = readDelegatorIndex(state, account);
  if (index.length < MAX_DELEGATIONS_PER_ACCOUNT) return;
  if (index.some((item) => compareAddresses(item, validator) === 0)) return;
  throw new CaesarError(
    CaesarErrorCode.TOO_MANY_DELEGATIONS,
    `${op}: account ${toHex(account)} has shares of ${index.length} validators, the most one account may have (unbond one fully first)`,
    { account: toHex(account), delegations: index.length, max: MAX_DELEGATIONS_PER_ACCOUNT },
  );
}

interface DelegatePlan {
  readonly delegator: Uint8Array;
  readonly balance: bigint;
  readonly record: ValidatorRecord;
  readonly shares: bigint;
}

function planDelegate(state: ModuleStateReader, tx: Delegate, delegator: Uint8Array): DelegatePlan {
  requireStakingParams(state);
  const record = requireValidator(state, tx.op, tx.validator);
  requireDelegationRoom(state, tx.op, delegator, tx.validator);
  const balance = requireFunds(state, tx.op, delegator, tx.amount + tx.fee);
  if (record.tokens === 0n && record.shares > 0n) {
    // Shares without tokens have no price, and the rate below would divide by zero. A slash
    // keeps a validator's last token while it has shares (end-block.ts), but an older build's
    // slash could burn it.
    throw new CaesarError(
      CaesarErrorCode.INVALID_DELEGATION,
      `delegate: validator ${formatConsensusAddress(tx.validator)} has ${record.shares} shares and no tokens; its shares have no price`,
    );
  }
  // Shares at the validator's current rate (Cosmos `AddTokensFromDel`); the first delegation of
  // an empty validator buys one share per base unit.
  const shares = record.shares === 0n ? tx.amount : (tx.amount * record.shares) / record.tokens;
  if (shares === 0n) {
    throw new CaesarError(
      CaesarErrorCode.INVALID_DELEGATION,
      `delegate: ${tx.amount} base units buy no share of validator ${formatConsensusAddress(tx.validator)} (one share is worth ${record.tokens / record.shares} or more)`,
    );
  }
  if (record.shares + shares >= AMOUNT_LIMIT) {
    throw new CaesarError(
      CaesarErrorCode.INVALID_DELEGATION,
      'delegate: the validator would have 2^128 shares or more',
    );
  }
  // Shares worth nothing (a slashed validator's rate) would hold one of the delegator's places
  // in the delegator index and buy nothing back.
  const after = { ...record, tokens: record.tokens + tx.amount, shares: record.shares + shares };
  if (sharesValue(after, shares) === 0n) {
    throw new CaesarError(
      CaesarErrorCode.INVALID_DELEGATION,
      `delegate: ${tx.amount} base units buy shares of validator ${formatConsensusAddress(tx.validator)} worth nothing at its rate`,
    );
  }
  return { delegator, balance, record, shares };
}

interface UnbondPlan {
  readonly delegator: Uint8Array;
  readonly balance: bigint;
  readonly record: ValidatorRecord;
  readonly delegated: bigint;
  readonly sharesOut: bigint;
  readonly tokensOut: bigint;
  readonly entries: ReturnType<typeof readUnbondingEntries>;
  readonly unbondingBlocks: number;
}

function planUnbond(state: ModuleStateReader, tx: Unbond, delegator: Uint8Array): UnbondPlan {
  const params = requireStakingParams(state);
  const record = requireValidator(state, tx.op, tx.validator);
  const delegated = readShares(state, tx.validator, delegator);
  const worth = sharesValue(record, delegated);
  if (worth === 0n && delegated > 0n) {
    // Worth nothing (shares left after a slash): any unbond closes it, its shares leave, nothing
    // is paid, and no unbonding entry is made — so it frees its place in the delegator index.
    const balance = requireFunds(state, tx.op, delegator, tx.fee);
    return {
      delegator,
      balance,
      record,
      delegated,
      sharesOut: delegated,
      tokensOut: delegated === record.shares ? record.tokens : 0n,
      entries: readUnbondingEntries(state, delegator),
      unbondingBlocks: params.unbondingBlocks,
    };
  }
  if (tx.amount > worth) {
    throw new CaesarError(
      CaesarErrorCode.INSUFFICIENT_BOND,
      `unbond: the delegation to ${formatConsensusAddress(tx.validator)} is worth ${worth}, below ${tx.amount}`,
      { worth: worth.toString(), amount: tx.amount.toString() },
    );
  }
  const entries = readUnbondingEntries(state, delegator);
  if (entries.length >= MAX_UNBONDING_ENTRIES) {
    throw new CaesarError(
      CaesarErrorCode.TOO_MANY_UNBONDING,
      `unbond: ${entries.length} unbondings are already waiting, the most a delegator may have`,
    );
  }
  const balance = requireFunds(state, tx.op, delegator, tx.fee);
  // Shares rounded up: the rounding favours those who stay (Cosmos `SharesFromTokens`).
  let sharesOut = (tx.amount * record.shares + record.tokens - 1n) / record.tokens;
  let tokensOut = tx.amount;
  if (tx.amount === worth || sharesOut >= delegated) {
    // All of it, asked for or rounded up to: the delegation's whole worth leaves with its last
    // share, and the last delegator of the validator also takes the rounding remainder the
    // others left behind, so a validator's tokens and shares are zero together.
    sharesOut = delegated;
    tokensOut = delegated === record.shares ? record.tokens : worth;
  }
  const left = delegated - sharesOut;
  const rest = { ...record, tokens: record.tokens - tokensOut, shares: record.shares - sharesOut };
  if (left > 0n && sharesValue(rest, left) === 0n) {
    // What would stay is worth nothing: it leaves too (its worth, zero, with it).
    sharesOut = delegated;
    tokensOut = delegated === record.shares ? record.tokens : worth;
  }
  return {
    delegator,
    balance,
    record,
    delegated,
    sharesOut,
    tokensOut,
    entries,
    unbondingBlocks: params.unbondingBlocks,
  };
}

function planUnjail(
  state: ModuleStateReader,
  tx: Unjail,
  sender: Uint8Array,
  height: number,
): { record: ValidatorRecord; operator: Uint8Array; balance: bigint } {
  requireStakingParams(state);
  const record = requireValidator(state, tx.op, consensusAddress(sender));
  if (record.jailed === JailReason.NONE) {
    throw new CaesarError(CaesarErrorCode.NOT_JAILED, 'unjail: the validator is not jailed');
  }
  if (height < record.jailedUntil) {
    throw new CaesarError(
      CaesarErrorCode.JAIL_NOT_OVER,
      `unjail: the validator is jailed until height ${record.jailedUntil}; this is height ${height}`,
      { until: record.jailedUntil, height },
    );
  }
  const operator = ed25519Address(sender);
  return { record, operator, balance: requireFunds(state, tx.op, operator, tx.fee) };
}

/**
 * `edit-validator` (docs/caesar.md, "Staking transactions"): the sender's key has a validator;
 * its last change, if any, was at least `epochBlocks` blocks ago (at most one per epoch's worth
 * of blocks, counted from the change, so a governed `epochBlocks` needs no migration); the new
 * commission is within `maxCommissionChangeBps` of the current one; the operator pays the fee.
 * The commission is already bounded to 10,000 by the decoder (`INVALID_COMMISSION`).
 */
function planEdit(
  state: ModuleStateReader,
  tx: EditValidator,
  sender: Uint8Array,
  height: number,
): { record: ValidatorRecord; operator: Uint8Array; balance: bigint } {
  const params = requireStakingParams(state);
  const record = requireValidator(state, tx.op, consensusAddress(sender));
  const last = record.commissionChangedAt;
  if (last !== undefined && height < last + params.epochBlocks) {
    throw new CaesarError(
      CaesarErrorCode.COMMISSION_CHANGE_TOO_SOON,
      `edit-validator: the commission changed at height ${last}; the next change is accepted from height ${last + params.epochBlocks} (one per ${params.epochBlocks} blocks), this is height ${height}`,
      { changedAt: last, next: last + params.epochBlocks, height },
    );
  }
  const step = Math.abs(tx.commission - record.commissionBps);
  if (step > params.maxCommissionChangeBps) {
    throw new CaesarError(
      CaesarErrorCode.COMMISSION_CHANGE_TOO_LARGE,
      `edit-validator: from ${record.commissionBps} to ${tx.commission} basis points is a change of ${step}; the most is ${params.maxCommissionChangeBps} (maxCommissionChangeBps)`,
      { from: record.commissionBps, to: tx.commission, max: params.maxCommissionChangeBps },
    );
  }
  const operator = ed25519Address(sender);
  return { record, operator, balance: requireFunds(state, tx.op, operator, tx.fee) };
}

/**
 * `check` for a staking transaction from `sender` acting for `account`: its rules against the
 * state, nothing written. `keyRule`: what a `create-validator`'s key must also satisfy.
 */
export function checkStakingTx(
  state: ModuleStateReader,
  tx: StakingTx,
  sender: Uint8Array,
  account: Uint8Array,
  height: number,
  keyRule?: ValidatorKeyRule,
): void {
  switch (tx.op) {
    case CREATE_VALIDATOR_OP:
      requireOwnKey(tx.op, sender, account);
      planCreate(state, tx, sender, keyRule);
      return;
    case DELEGATE_OP:
      planDelegate(state, tx, account);
      return;
    case UNBOND_OP:
      planUnbond(state, tx, account);
      return;
    case UNJAIL_OP:
      requireOwnKey(tx.op, sender, account);
      planUnjail(state, tx, sender, height);
      return;
    case EDIT_VALIDATOR_OP:
      requireOwnKey(tx.op, sender, account);
      planEdit(state, tx, sender, height);
      return;
  }
}

/**
 * `apply` for a staking transaction from `sender` acting for `account`: the same rules (the same
 * `keyRule`), then the writes. Returns the events of its receipt (docs/caesar.md, "Events").
 */
export function applyStakingTx(
  state: ModuleState,
  tx: StakingTx,
  sender: Uint8Array,
  account: Uint8Array,
  height: number,
  keyRule?: ValidatorKeyRule,
): CaesarEvent[] {
  switch (tx.op) {
    case CREATE_VALIDATOR_OP: {
      requireOwnKey(tx.op, sender, account);
      const { operator, balance, validators } = planCreate(state, tx, sender, keyRule);
      pay(state, operator, balance, tx.bond + tx.fee, tx.fee);
      const validator = consensusAddress(sender);
      writeValidator(state, {
        publicKey: sender,
        pqPublicKey: tx.pqKey,
        storageRoot: tx.storageRoot,
        commissionBps: tx.commission,
        tokens: tx.bond,
        shares: tx.bond,
        power: 0,
        jailed: JailReason.NONE,
        jailedUntil: 0,
      });
      writeShares(state, validator, operator, tx.bond);
      const list = [...validators, validator].sort(compareAddresses);
      state.set(VALIDATORS_KEY, encodeValidatorList(list));
      addTotal(state, BONDED_KEY, tx.bond);
      return [
        createValidatorEvent(validator, operator, tx.bond, tx.commission),
        ...feeEvents(operator, tx.fee),
      ];
    }
    case DELEGATE_OP: {
      const { delegator, balance, record, shares } = planDelegate(state, tx, account);
      pay(state, delegator, balance, tx.amount + tx.fee, tx.fee);
      writeValidator(
        state,
        withVacancy(
          { ...record, tokens: record.tokens + tx.amount, shares: record.shares + shares },
          height,
        ),
      );
      writeShares(
        state,
        tx.validator,
        delegator,
        readShares(state, tx.validator, delegator) + shares,
      );
      addTotal(state, BONDED_KEY, tx.amount);
      return [
        delegateEvent(delegator, tx.validator, record.publicKey, tx.amount, shares),
        ...feeEvents(delegator, tx.fee),
      ];
    }
    case UNBOND_OP: {
      const plan = planUnbond(state, tx, account);
      const { delegator, record, sharesOut, tokensOut } = plan;
      pay(state, delegator, plan.balance, tx.fee, tx.fee);
      // Left without tokens, shares and power, the validator is vacant from here: an epoch's
      // end removes its record once nothing can refer to it (end-block.ts).
      writeValidator(
        state,
        withVacancy(
          { ...record, tokens: record.tokens - tokensOut, shares: record.shares - sharesOut },
          height,
        ),
      );
      writeShares(state, tx.validator, delegator, plan.delegated - sharesOut);
      const completion = height + plan.unbondingBlocks;
      if (tokensOut === 0n) {
        // A delegation worth nothing closed (planUnbond): no tokens to hold back.
        // Nothing waits: the event's completion height is this block's.
        return [
          unbondEvent(delegator, tx.validator, record.publicKey, 0n, sharesOut, height),
          ...feeEvents(delegator, tx.fee),
        ];
      }
      writeUnbondingEntries(state, delegator, [
        ...plan.entries,
        {
          validator: tx.validator,
          amount: tokensOut,
          creationHeight: height,
          completionHeight: completion,
        },
      ]);
      const queue = readQueue(state, completion);
      if (!queue.some((entry) => compareAddresses(entry, delegator) === 0)) {
        writeQueue(state, completion, [...queue, delegator].sort(compareAddresses));
      }
      addTotal(state, BONDED_KEY, -tokensOut);
      addTotal(state, UNBONDING_TOTAL_KEY, tokensOut);
      return [
        unbondEvent(delegator, tx.validator, record.publicKey, tokensOut, sharesOut, completion),
        ...feeEvents(delegator, tx.fee),
      ];
    }
    case UNJAIL_OP: {
      requireOwnKey(tx.op, sender, account);
      const { record, operator, balance } = planUnjail(state, tx, sender, height);
      pay(state, operator, balance, tx.fee, tx.fee);
      writeValidator(state, { ...record, jailed: JailReason.NONE, jailedUntil: 0 });
      // A fresh window: misses before the jail do not count again.
      state.delete(missedKey(consensusAddress(sender)));
      return [unjailEvent(consensusAddress(sender), operator), ...feeEvents(operator, tx.fee)];
    }
    case EDIT_VALIDATOR_OP: {
      requireOwnKey(tx.op, sender, account);
      const { record, operator, balance } = planEdit(state, tx, sender, height);
      pay(state, operator, balance, tx.fee, tx.fee);
      // The rewards paid at this block's end (end-block.ts reads the record) use it already.
      writeValidator(state, {
        ...record,
        commissionBps: tx.commission,
        commissionChangedAt: height,
      });
      return [
        editValidatorEvent(consensusAddress(sender), operator, record.commissionBps, tx.commission),
        ...feeEvents(operator, tx.fee),
      ];
    }
  }
}
