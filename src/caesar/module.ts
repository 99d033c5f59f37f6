import type {
  CheckContext,
  SequenceAccountContext,
  EndBlockContext,
  ExecutionContext,
  Module,
  ModuleQueryAnswer,
  ModuleStateReader,
} from '../consensus/application/module.js';
import type { ValidatorUpdate } from '../consensus/app.js';
import { VALIDATOR_ADDRESS_BYTES } from '../consensus/validator-set.js';
import { BoundedMap } from '../codec/bounded-map.js';
import { bytesEqual, toHex } from '../crypto/bytes.js';
import { defaultFalcon } from '../crypto/falcon.js';
import type { FalconBackend } from '../crypto/falcon.js';
import { CA_MODULE_NAME } from '../trustchain/ca-module/state.js';
import { ADDRESS_BYTES, ed25519Address, hybridAddress } from './address.js';
import { CaesarError, CaesarErrorCode } from './errors.js';
import {
  CAESAR_MODULE_NAME,
  FEE_POOL_KEY,
  PARAMS_KEY,
  balanceKey,
  readAmount,
  writeAmount,
} from './state.js';
import { decodeCaesarBody } from './body.js';
import type { CaesarTx } from './body.js';
import { caesarEndBlock } from './end-block.js';
import { emitCaesarEvents, feeEvents, transferEvent } from './events.js';
import { applyGovTx, checkGovTx } from './gov.js';
import { govQueryKey } from './gov-query.js';
import { HYBRID_OP, checkHybridTx } from './hybrid.js';
import type { HybridCheckContext, HybridInnerTx, HybridTx } from './hybrid.js';
import { SUBMIT_PROPOSAL_OP, VOTE_OP } from './gov-tx.js';
import { applyStakingTx, checkStakingTx } from './staking.js';
import type { ValidatorKeyRule } from './staking.js';
import {
  ACTIVE_SET_KEY,
  BONDED_KEY,
  STAKING_PARAMS_KEY,
  UNBONDING_TOTAL_KEY,
  VALIDATORS_KEY,
  delegationKey,
  delegatorIndexKey,
  unbondingKey,
  validatorKey,
} from './staking-state.js';
import { TRANSFER_OP } from './transfer.js';
import type { Transfer } from './transfer.js';
import { requireIntermediate } from './validator-intermediate.js';
import type { ValidatorIntermediates } from './validator-intermediate.js';

/** Query paths of the module (`caesar/<path>`). */
export const BALANCE_QUERY = 'balance';
export const FEE_POOL_QUERY = 'fees';
export const PARAMS_QUERY = 'params';
export const VALIDATOR_QUERY = 'validator';
export const VALIDATORS_QUERY = 'validators';
export const VALIDATOR_SET_QUERY = 'validator-set';
export const DELEGATION_QUERY = 'delegation';
/** The validators a delegator has shares of (its delegator index). */
export const DELEGATOR_INDEX_QUERY = 'delegations';
export const UNBONDING_QUERY = 'unbonding';
export const STAKING_PARAMS_QUERY = 'staking-params';
export const BONDED_QUERY = 'bonded';
export const UNBONDING_TOTAL_QUERY = 'unbonding-total';

interface Debit {
  readonly from: Uint8Array;
  /** The sender's balance after paying amount + fee. */
  readonly remaining: bigint;
}

/**
 * The stateful rules of a transfer from `from` (the sender's account address), shared by
 * `check` and `apply`: the recipient is another address, and the balance covers amount + fee.
 */
function authorize(state: ModuleStateReader, tx: Transfer, from: Uint8Array): Debit {
  if (bytesEqual(from, tx.to)) {
    throw new CaesarError(
      CaesarErrorCode.SELF_TRANSFER,
      "transfer: the recipient is the sender's own address",
      { address: toHex(from) },
    );
  }
  const balance = readAmount(state, balanceKey(from));
  const cost = tx.amount + tx.fee;
  if (balance < cost) {
    throw new CaesarError(
      CaesarErrorCode.INSUFFICIENT_FUNDS,
      `transfer: balance ${balance} is below amount ${tx.amount} + fee ${tx.fee}`,
      {
        address: toHex(from),
        balance: balance.toString(),
        amount: tx.amount.toString(),
        fee: tx.fee.toString(),
      },
    );
  }
  return { from, remaining: balance - cost };
}

/** Debits `account` by amount + fee, credits the recipient, pools the fee. */
function applyTransfer(ctx: ExecutionContext, tx: Transfer, account: Uint8Array): void {
  const { state } = ctx;
  const { from, remaining } = authorize(state, tx, account);
  writeAmount(state, balanceKey(from), remaining);
  // Read after the debit: the recipient is never the sender (authorize), but reading the
  // written state keeps this correct even if that rule changes.
  const to = balanceKey(tx.to);
  writeAmount(state, to, readAmount(state, to) + tx.amount);
  if (tx.fee > 0n) writeAmount(state, FEE_POOL_KEY, readAmount(state, FEE_POOL_KEY) + tx.fee);
  emitCaesarEvents(ctx.emit, [transferEvent(from, tx.to, tx.amount), ...feeEvents(from, tx.fee)]);
}

function queryBytes(path: string, data: Uint8Array, length: number, what: string): Uint8Array {
  if (data.length !== length) {
    throw new CaesarError(
      CaesarErrorCode.INVALID_QUERY,
      `caesar/${path} takes ${what}, got ${data.length} bytes`,
    );
  }
  return data;
}

function queryAddress(path: string, data: Uint8Array): Uint8Array {
  return queryBytes(path, data, ADDRESS_BYTES, `a ${ADDRESS_BYTES}-byte address`);
}

function noData(path: string, data: Uint8Array): void {
  if (data.length !== 0) {
    throw new CaesarError(
      CaesarErrorCode.INVALID_QUERY,
      `caesar/${path} takes no data, got ${data.length} bytes`,
    );
  }
}

const SINGLE_KEY_QUERIES: Readonly<Record<string, Uint8Array>> = {
  [VALIDATORS_QUERY]: VALIDATORS_KEY,
  [VALIDATOR_SET_QUERY]: ACTIVE_SET_KEY,
  [STAKING_PARAMS_QUERY]: STAKING_PARAMS_KEY,
  [BONDED_QUERY]: BONDED_KEY,
  [UNBONDING_TOTAL_QUERY]: UNBONDING_TOTAL_KEY,
};

export interface CaesarModuleOptions {
  /** Verifies hybrid accounts' FALCON signatures; `defaultFalcon()` on first use if omitted. */
  readonly falcon?: FalconBackend;
  /** Transactions whose FALCON signature was verified, remembered (default 20,000). */
  readonly verifiedHybridEntries?: number;
  /**
   * Given on a chain with the `ca` module (node wiring, from its genesis): `create-validator`
   * then needs a TrustChain intermediate in effect for the consensus key
   * (validator-intermediate.ts), and the module declares `reads: ['ca']` to look the added ones
   * up. Absent: any key may register, as on a chain without the ca module.
   */
  readonly validatorIntermediates?: ValidatorIntermediates;
}

export const DEFAULT_VERIFIED_HYBRID_ENTRIES = 20_000;

/**
 * The Caesar ledger module: accounts and transfers (docs/caesar.md). A transfer debits the
 * sender by amount + fee, credits the recipient (creating its account) and adds the fee to the
 * fee pool, in one transaction whose writes the router keeps only if it is applied: a refused
 * transfer moves nothing and charges no fee (the sender's sequence number is still used).
 * Queries answer with one key each, which the router returns with a state proof.
 *
 * A hybrid account's transaction (hybrid.ts: a transfer, delegate, unbond, proposal or vote) has
 * its FALCON signature checked first by `sequenceAccount`, which the router calls when it admits
 * the bytes: a hybrid body whose FALCON half does not verify is not admissible at all
 * (`TX_BAD_ACCOUNT_PROOF`, a block holding it is invalid), and one that verifies uses the
 * sequence numbers of its hybrid address, which no other transaction of the Ed25519 key can use
 * (docs/caesar.md, "Hybrid accounts"). `check` and `apply` enforce the signature again (so the
 * module's rules hold without the router too) and then run the wrapped transaction's own rules
 * with the hybrid address as its account (the staking and governance rules take the account as
 * a parameter; only the validator-key ops, refused inside a hybrid body, use the sender itself).
 * The outcome of the FALCON check depends only on the chain id, sender, sequence and body, all
 * of which the transaction hash covers, so a verified hash is remembered and not verified again
 * (admission, the mempool's re-check after every block, a block's `check` and `apply`); a
 * transaction with any byte of its FALCON key or signature changed has another hash.
 *
 * With `validatorIntermediates` (a chain with the `ca` module), `create-validator` also needs the
 * consensus key to hold a TrustChain intermediate in effect, checked in `check` and again in
 * `apply` against the ca state the transaction runs on.
 */
export function createCaesarModule(options: CaesarModuleOptions = {}): Module<CaesarTx> {
  let falcon = options.falcon;
  const verified = new BoundedMap<string, true>(
    options.verifiedHybridEntries ?? DEFAULT_VERIFIED_HYBRID_ENTRIES,
  );
  const hybridFrom = (ctx: HybridCheckContext, tx: HybridTx, sender: Uint8Array): Uint8Array => {
    const id = toHex(ctx.txHash);
    if (verified.get(id) === true) return hybridAddress(sender, tx.pqKey);
    falcon ??= defaultFalcon();
    const from = checkHybridTx(ctx, tx, sender, falcon);
    verified.set(id, true);
    return from;
  };
  /** The transaction to run and the account it acts for (a hybrid body's only once verified). */
  const unwrap = (
    ctx: CheckContext,
    tx: CaesarTx,
    sender: Uint8Array,
  ): { inner: Exclude<CaesarTx, HybridTx>; account: Uint8Array } =>
    tx.op === HYBRID_OP
      ? { inner: tx.inner satisfies HybridInnerTx, account: hybridFrom(ctx, tx, sender) }
      : { inner: tx, account: ed25519Address(sender) };
  const intermediates = options.validatorIntermediates;
  /** The intermediate rule over the ca state `ctx` runs on (read when a key is checked). */
  const keyRule = (ctx: CheckContext | ExecutionContext): ValidatorKeyRule | undefined => {
    if (intermediates === undefined) return undefined;
    return (key) => {
      if (ctx.foreign === undefined) {
        // The router always supplies it; only a hand-built context can lack it.
        throw new TypeError('caesar: create-validator needs ctx.foreign to read the ca state');
      }
      requireIntermediate(intermediates, ctx.foreign(CA_MODULE_NAME), key);
    };
  };
  return {
    name: CAESAR_MODULE_NAME,
    ...(intermediates === undefined ? {} : { reads: [CA_MODULE_NAME] }),
    decodeBody: decodeCaesarBody,
    sequenceAccount(
      ctx: SequenceAccountContext,
      tx: CaesarTx,
      sender: Uint8Array,
    ): Uint8Array | undefined {
      return tx.op === HYBRID_OP ? hybridFrom(ctx, tx, sender) : undefined;
    },
    claimedSequenceAccount(tx: CaesarTx, sender: Uint8Array): Uint8Array | undefined {
      return tx.op === HYBRID_OP ? hybridAddress(sender, tx.pqKey) : undefined;
    },
    check(ctx: CheckContext, tx: CaesarTx, sender: Uint8Array): void {
      const { inner, account } = unwrap(ctx, tx, sender);
      if (inner.op === TRANSFER_OP) authorize(ctx.state, inner, account);
      else if (inner.op === SUBMIT_PROPOSAL_OP || inner.op === VOTE_OP) {
        checkGovTx(ctx.state, inner, account, ctx.height);
      } else checkStakingTx(ctx.state, inner, sender, account, ctx.height, keyRule(ctx));
    },
    apply(ctx: ExecutionContext, tx: CaesarTx, sender: Uint8Array): void {
      const { state } = ctx;
      const { inner, account } = unwrap(ctx, tx, sender);
      if (inner.op === TRANSFER_OP) applyTransfer(ctx, inner, account);
      else if (inner.op === SUBMIT_PROPOSAL_OP || inner.op === VOTE_OP) {
        emitCaesarEvents(ctx.emit, applyGovTx(state, inner, account, ctx.height));
      } else {
        emitCaesarEvents(
          ctx.emit,
          applyStakingTx(state, inner, sender, account, ctx.height, keyRule(ctx)),
        );
      }
    },
    query(path: string, data: Uint8Array): ModuleQueryAnswer | undefined {
      switch (path) {
        case BALANCE_QUERY:
          return { key: balanceKey(queryAddress(path, data)) };
        case FEE_POOL_QUERY:
          noData(path, data);
          return { key: FEE_POOL_KEY };
        case PARAMS_QUERY:
          noData(path, data);
          return { key: PARAMS_KEY };
        case VALIDATOR_QUERY:
          return {
            key: validatorKey(
              queryBytes(path, data, VALIDATOR_ADDRESS_BYTES, 'a 20-byte validator address'),
            ),
          };
        case DELEGATION_QUERY: {
          const both = queryBytes(
            path,
            data,
            VALIDATOR_ADDRESS_BYTES + ADDRESS_BYTES,
            'a 20-byte validator address followed by a 32-byte delegator address',
          );
          return {
            key: delegationKey(
              both.subarray(0, VALIDATOR_ADDRESS_BYTES),
              both.subarray(VALIDATOR_ADDRESS_BYTES),
            ),
          };
        }
        case DELEGATOR_INDEX_QUERY:
          return { key: delegatorIndexKey(queryAddress(path, data)) };
        case UNBONDING_QUERY:
          return { key: unbondingKey(queryAddress(path, data)) };
        case VALIDATORS_QUERY:
        case VALIDATOR_SET_QUERY:
        case STAKING_PARAMS_QUERY:
        case BONDED_QUERY:
        case UNBONDING_TOTAL_QUERY:
          noData(path, data);
          return { key: SINGLE_KEY_QUERIES[path]! };
        default:
          return govQueryKey(path, data);
      }
    },
    endBlock(ctx: EndBlockContext): readonly ValidatorUpdate[] {
      return caesarEndBlock(ctx);
    },
  };
}
