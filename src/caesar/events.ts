import { bytesEqual } from '../crypto/bytes.js';
import { ed25519Address, formatAddress } from './address.js';
import { VoteOption } from './gov-tx.js';
import { formatConsensusAddress } from './staking-state.js';

/**
 * The events Caesar records in an applied transaction's receipt (docs/caesar.md, "Events";
 * docs/application.md, "Events"). The apply functions return them and the module hands them to
 * `ExecutionContext.emit` in order, so they are a pure function of the transaction and the
 * state, like the writes. Attributes are strings: amounts in base units as decimal digits,
 * accounts as `formatAddress` writes them (64 hex digits), validators as their 40-hex-digit
 * consensus address. `accounts` are the raw 32-byte account addresses the event concerns, under
 * which nodes index the receipt for account history.
 */
export interface CaesarEvent {
  /** Without the module prefix, which the router adds (`caesar/<name>`). */
  readonly name: CaesarEventName;
  readonly attributes: Readonly<Record<string, string>>;
  readonly accounts: readonly Uint8Array[];
}

/** Every event name Caesar emits. */
export const CAESAR_EVENT_NAMES = [
  'transfer',
  'fee',
  'create-validator',
  'delegate',
  'unbond',
  'unjail',
  'edit-validator',
  'submit-proposal',
  'vote',
] as const;
export type CaesarEventName = (typeof CAESAR_EVENT_NAMES)[number];

/** `emit` as the module receives it (absent in a module's own unit tests). */
export type CaesarEmit = (
  name: string,
  attributes: Readonly<Record<string, string>>,
  accounts?: readonly Uint8Array[],
) => void;

function distinct(accounts: readonly Uint8Array[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const account of accounts) {
    if (!out.some((seen) => bytesEqual(seen, account))) out.push(account);
  }
  return out;
}

function event(
  name: CaesarEventName,
  attributes: Record<string, string>,
  accounts: readonly Uint8Array[],
): CaesarEvent {
  return { name, attributes, accounts: distinct(accounts) };
}

/** `fee {payer, amount}`, only for a fee above zero (a zero fee moves nothing). */
export function feeEvents(payer: Uint8Array, fee: bigint): CaesarEvent[] {
  if (fee === 0n) return [];
  return [event('fee', { payer: formatAddress(payer), amount: fee.toString() }, [payer])];
}

export function transferEvent(from: Uint8Array, to: Uint8Array, amount: bigint): CaesarEvent {
  return event(
    'transfer',
    { from: formatAddress(from), to: formatAddress(to), amount: amount.toString() },
    [from, to],
  );
}

export function createValidatorEvent(
  validator: Uint8Array,
  operator: Uint8Array,
  bond: bigint,
  commissionBps: number,
): CaesarEvent {
  return event(
    'create-validator',
    {
      validator: formatConsensusAddress(validator),
      operator: formatAddress(operator),
      bond: bond.toString(),
      commissionBps: String(commissionBps),
    },
    [operator],
  );
}

/**
 * `delegate` and `unbond` concern the delegator and the validator's operator account (whose
 * validator's stake changed); for a self-bond they are one account.
 */
export function delegateEvent(
  delegator: Uint8Array,
  validator: Uint8Array,
  validatorKey: Uint8Array,
  amount: bigint,
  shares: bigint,
): CaesarEvent {
  const operator = ed25519Address(validatorKey);
  return event(
    'delegate',
    {
      delegator: formatAddress(delegator),
      validator: formatConsensusAddress(validator),
      operator: formatAddress(operator),
      amount: amount.toString(),
      shares: shares.toString(),
    },
    [delegator, operator],
  );
}

export function unbondEvent(
  delegator: Uint8Array,
  validator: Uint8Array,
  validatorKey: Uint8Array,
  amount: bigint,
  shares: bigint,
  completionHeight: number,
): CaesarEvent {
  const operator = ed25519Address(validatorKey);
  return event(
    'unbond',
    {
      delegator: formatAddress(delegator),
      validator: formatConsensusAddress(validator),
      operator: formatAddress(operator),
      amount: amount.toString(),
      shares: shares.toString(),
      completionHeight: String(completionHeight),
    },
    [delegator, operator],
  );
}

export function unjailEvent(validator: Uint8Array, operator: Uint8Array): CaesarEvent {
  return event(
    'unjail',
    { validator: formatConsensusAddress(validator), operator: formatAddress(operator) },
    [operator],
  );
}

/** `edit-validator`: the commission before and after, basis points. */
export function editValidatorEvent(
  validator: Uint8Array,
  operator: Uint8Array,
  oldCommissionBps: number,
  newCommissionBps: number,
): CaesarEvent {
  return event(
    'edit-validator',
    {
      validator: formatConsensusAddress(validator),
      operator: formatAddress(operator),
      oldCommissionBps: String(oldCommissionBps),
      newCommissionBps: String(newCommissionBps),
    },
    [operator],
  );
}

export function submitProposalEvent(
  proposal: number,
  proposer: Uint8Array,
  title: string,
  deposit: bigint,
  votingEnd: number,
  executeHeight: number,
): CaesarEvent {
  return event(
    'submit-proposal',
    {
      proposal: String(proposal),
      proposer: formatAddress(proposer),
      title,
      deposit: deposit.toString(),
      votingEnd: String(votingEnd),
      executeHeight: String(executeHeight),
    },
    [proposer],
  );
}

const OPTION_NAMES: Readonly<Record<VoteOption, string>> = {
  [VoteOption.YES]: 'yes',
  [VoteOption.NO]: 'no',
  [VoteOption.ABSTAIN]: 'abstain',
};

export function voteEvent(proposal: number, voter: Uint8Array, option: VoteOption): CaesarEvent {
  return event(
    'vote',
    { proposal: String(proposal), voter: formatAddress(voter), option: OPTION_NAMES[option] },
    [voter],
  );
}

/** Hands `events` to `emit` in order (nothing when no one collects them). */
export function emitCaesarEvents(
  emit: CaesarEmit | undefined,
  events: readonly CaesarEvent[],
): void {
  if (emit === undefined) return;
  for (const { name, attributes, accounts } of events) emit(name, attributes, accounts);
}
