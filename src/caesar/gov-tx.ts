import { isAmount } from './amount.js';
import { amountItem, mapItem, textItem, uintItem } from './cbor.js';
import type { CaesarReader } from './cbor.js';
import { CaesarError, CaesarErrorCode } from './errors.js';
import {
  AMOUNT_PARAMS,
  GOVERNABLE_PARAMS,
  MAX_PARAM_CHANGES,
  isGovernableParam,
  unknownParam,
} from './gov-changes.js';
import type { ParamChange } from './gov-changes.js';

/**
 * The governance transaction bodies (docs/caesar.md, "Governance transactions"), canonical
 * CBOR maps like the transfer (transfer.ts), each with an `op` and a `fee`:
 *
 *   { op: "gov/submit-proposal", fee, title: text(1..140), changes: { name: amount, … },
 *     deposit: amount }
 *   { op: "gov/vote", fee, option: 1 (yes) | 2 (no) | 3 (abstain), proposal: uint }
 *
 * `changes` maps each governable parameter to its new value (a CBOR integer; amounts above
 * 2^64 as tag-2 bignums), keys in canonical order, at least one. The proposer and the voter are
 * the envelope's sender (their account is SHA-256 of the key).
 */
export const SUBMIT_PROPOSAL_OP = 'gov/submit-proposal';
export const VOTE_OP = 'gov/vote';
export const MAX_TITLE_LENGTH = 140;
export const TITLE_PATTERN = /^[\x20-\x7e]{1,140}$/;

export enum VoteOption {
  YES = 1,
  NO = 2,
  ABSTAIN = 3,
}

export interface SubmitProposal {
  readonly op: typeof SUBMIT_PROPOSAL_OP;
  readonly fee: bigint;
  /** 1 to 140 printable ASCII characters. */
  readonly title: string;
  /** One change per parameter, sorted in canonical key order. */
  readonly changes: readonly ParamChange[];
  /** Base units locked with the proposal, at least `minDeposit`. */
  readonly deposit: bigint;
}

export interface Vote {
  readonly op: typeof VOTE_OP;
  readonly fee: bigint;
  readonly proposal: number;
  readonly option: VoteOption;
}

export type GovTx = SubmitProposal | Vote;

export const GOV_FIELDS = {
  [SUBMIT_PROPOSAL_OP]: ['op', 'fee', 'title', 'changes', 'deposit'],
  [VOTE_OP]: ['op', 'fee', 'option', 'proposal'],
} as const;

function malformed(message: string, field?: string): never {
  throw new CaesarError(
    CaesarErrorCode.MALFORMED_BODY,
    message,
    field === undefined ? {} : { field },
  );
}

function amountOf(op: string, field: string, value: unknown): bigint {
  if (typeof value !== 'bigint' || value < 0n) {
    throw new CaesarError(
      CaesarErrorCode.INVALID_AMOUNT,
      `${op}.${field}: expected a non-negative bigint of base units`,
      { field },
    );
  }
  if (!isAmount(value)) {
    throw new CaesarError(
      CaesarErrorCode.AMOUNT_TOO_LARGE,
      `${op}.${field}: ${value} is 2^128 or more; the limit is 2^128 - 1`,
      { field },
    );
  }
  return value;
}

function titleOf(title: unknown): string {
  if (typeof title !== 'string' || !TITLE_PATTERN.test(title)) {
    malformed(
      `${SUBMIT_PROPOSAL_OP}.title: expected 1 to ${MAX_TITLE_LENGTH} printable ASCII characters`,
      'title',
    );
  }
  return title;
}

function optionOf(option: unknown): VoteOption {
  if (option !== VoteOption.YES && option !== VoteOption.NO && option !== VoteOption.ABSTAIN) {
    malformed(`${VOTE_OP}.option: expected 1 (yes), 2 (no) or 3 (abstain)`, 'option');
  }
  return option;
}

function proposalIdOf(id: unknown): number {
  if (!Number.isSafeInteger(id) || (id as number) < 1) {
    malformed(`${VOTE_OP}.proposal: expected a proposal number from 1`, 'proposal');
  }
  return id as number;
}

/** Sorts and checks a proposal's changes: governable names, each once, 1 to 15 of them. */
export function normalizeChanges(changes: readonly ParamChange[]): ParamChange[] {
  if (!Array.isArray(changes) || changes.length === 0 || changes.length > MAX_PARAM_CHANGES) {
    malformed(
      `${SUBMIT_PROPOSAL_OP}.changes: expected 1 to ${MAX_PARAM_CHANGES} parameter changes`,
      'changes',
    );
  }
  const sorted = [...changes].sort(
    (a, b) => GOVERNABLE_PARAMS.indexOf(a.name) - GOVERNABLE_PARAMS.indexOf(b.name),
  );
  for (const [i, change] of sorted.entries()) {
    if (!isGovernableParam(change.name)) unknownParam(String(change.name));
    if (i > 0 && sorted[i - 1]!.name === change.name) {
      malformed(`${SUBMIT_PROPOSAL_OP}.changes: ${change.name} is changed twice`, 'changes');
    }
    amountOf(SUBMIT_PROPOSAL_OP, `changes.${change.name}`, change.value);
  }
  return sorted;
}

/** The body of a governance transaction. Throws `CaesarError` for what the decoder refuses. */
export function encodeGovTx(tx: GovTx): Uint8Array {
  const fee = amountOf(tx.op, 'fee', tx.fee);
  switch (tx.op) {
    case SUBMIT_PROPOSAL_OP: {
      const changes: Record<string, Uint8Array> = {};
      for (const change of normalizeChanges(tx.changes)) {
        changes[change.name] = amountItem(change.value);
      }
      return mapItem({
        op: textItem(tx.op),
        fee: amountItem(fee),
        title: textItem(titleOf(tx.title)),
        changes: mapItem(changes),
        deposit: amountItem(amountOf(tx.op, 'deposit', tx.deposit)),
      });
    }
    case VOTE_OP:
      return mapItem({
        op: textItem(tx.op),
        fee: amountItem(fee),
        option: uintItem(optionOf(tx.option)),
        proposal: uintItem(proposalIdOf(tx.proposal)),
      });
    default:
      return malformed(`unknown governance op ${JSON.stringify(String((tx as GovTx).op))}`);
  }
}

/** Reads the `changes` map of a proposal. An unknown name is `GOV_UNKNOWN_PARAM`. */
function readChanges(reader: CaesarReader): ParamChange[] {
  const count = reader.readMapLength();
  if (count === 0 || count > MAX_PARAM_CHANGES) {
    reader.malformed(`expected 1 to ${MAX_PARAM_CHANGES} parameter changes, got ${count}`);
  }
  const changes: ParamChange[] = [];
  let previous: string | undefined;
  for (let i = 0; i < count; i++) {
    let name: string;
    try {
      name = reader.readKey(GOVERNABLE_PARAMS, previous);
    } catch (error) {
      if (error instanceof CaesarError && error.code === CaesarErrorCode.UNKNOWN_FIELD) {
        unknownParam(String(error.detail['field']));
      }
      throw error;
    }
    previous = name;
    if (!isGovernableParam(name)) unknownParam(name);
    changes.push({ name, value: reader.readAmount(`changes.${name}`) });
  }
  return changes;
}

/**
 * Reads the fields after `op` of a governance body (`reader` after the op's value, `count` the
 * map's length). Throws `CaesarError`.
 */
export function readGovTx(reader: CaesarReader, op: GovTx['op'], count: number): GovTx {
  const known = GOV_FIELDS[op];
  const read: Record<string, unknown> = {};
  let previous = 'op';
  for (let i = 1; i < count; i++) {
    const key = reader.readKey(known, previous);
    previous = key;
    switch (key) {
      case 'fee':
      case 'deposit':
        read[key] = reader.readAmount(key);
        break;
      case 'title':
        read[key] = reader.readAsciiText(key, MAX_TITLE_LENGTH);
        break;
      case 'changes':
        read[key] = readChanges(reader);
        break;
      case 'option':
        read[key] = reader.readSmallUint(key, Number.MAX_SAFE_INTEGER);
        break;
      case 'proposal':
        read[key] = reader.readSmallUint(key, Number.MAX_SAFE_INTEGER);
        break;
      default:
        reader.malformed(`field ${JSON.stringify(key)} out of place`);
    }
  }
  reader.end();
  for (const field of known) {
    if (field !== 'op' && read[field] === undefined) {
      reader.malformed(
        `missing field ${JSON.stringify(field)}${field === 'fee' ? ' (write 0 for no fee)' : ''}`,
      );
    }
  }
  const fee = read['fee'] as bigint;
  if (op === SUBMIT_PROPOSAL_OP) {
    return {
      op,
      fee,
      title: read['title'] as string,
      changes: read['changes'] as ParamChange[],
      deposit: read['deposit'] as bigint,
    };
  }
  return {
    op,
    fee,
    option: optionOf(read['option']),
    proposal: proposalIdOf(read['proposal']),
  };
}

/** `yes`, `no` or `abstain`. */
export function voteOptionName(option: VoteOption): 'yes' | 'no' | 'abstain' {
  return option === VoteOption.YES ? 'yes' : option === VoteOption.NO ? 'no' : 'abstain';
}

/** Parses `yes`, `no` or `abstain`; undefined otherwise. */
export function parseVoteOption(text: string): VoteOption | undefined {
  switch (text) {
    case 'yes':
      return VoteOption.YES;
    case 'no':
      return VoteOption.NO;
    case 'abstain':
      return VoteOption.ABSTAIN;
    default:
      return undefined;
  }
}

/** Whether a change's value is an amount of base units (else a small integer). */
export const isAmountParam = (name: ParamChange['name']): boolean => AMOUNT_PARAMS.has(name);
