import type { KeyObject } from 'node:crypto';
import {
  CAESAR_MODULE_NAME,
  CaesarError,
  CaesarErrorCode,
  JailReason,
  UNJAIL_OP,
  CREATE_VALIDATOR_OP,
  DELEGATE_OP,
  EDIT_VALIDATOR_OP,
  UNBOND_OP,
  caesarDelegationQuery,
  caesarDelegatorIndexQuery,
  caesarGenesisFromApp,
  caesarStakingParamsQuery,
  caesarUnbondingQuery,
  caesarValidatorQuery,
  caesarValidatorSetQuery,
  caesarValidatorsQuery,
  ed25519Address,
  encodeStakingTx,
  formatConsensusAddress,
  sharesValue,
  verifyCaesarDelegation,
  verifyCaesarDelegatorIndex,
  verifyCaesarStakingParams,
  verifyCaesarUnbonding,
  verifyCaesarValidator,
  verifyCaesarValidatorSet,
  verifyCaesarValidators,
} from '../caesar/index.js';
import type {
  StakingParams,
  StakingTx,
  TokenParams,
  UnbondingEntry,
  ValidatorRecord,
} from '../caesar/index.js';
import type { QueryRequest, QueryResponse } from '../consensus/app.js';
import type { GenesisDocument } from '../consensus/genesis.js';
import type { NodeRpcClient } from '../consensus/net/index.js';
import { toHex } from '../crypto/bytes.js';
import { ed25519RawPublicKey } from '../crypto/ed25519.js';
import type { FalconKeyPair } from '../crypto/falcon.js';
import {
  stakingMethodAdmits,
  type CaesarRpcClient,
  type StakingMethod,
} from '../faces/caesar-rpc.js';
import { CliError } from './cli-error.js';
import { submitTransaction, type SubmitOptions, type SubmitOutcome } from './tx-submit.js';
import { committedRootsOf, type CommittedRoots } from './verified-root.js';
import { ledgerSubmission, ledgerToken } from './wallet-ledger.js';

/**
 * The ledger side of `hypermesh stake`: the staking a chain's genesis defines, proven reads of
 * the validators, an account's delegations (through its delegator index) and unbondings
 * (docs/caesar.md, "Queries"), and staking transactions with `submitTransaction` (as `wallet
 * send` does): the sequence is a proven read of the node API, and admission is the
 * `hypermesh.caesar.v1` method for the transaction's kind (`stake`, `unstake`, `delegate`;
 * `submitTx` for `unjail` and `edit-validator`).
 */

/** Typed codes of the `stake` commands' own refusals (shown in brackets after the message). */
export enum StakeErrorCode {
  /** The chain's genesis has no Caesar staking section. */
  STAKING_OFF = 'STAKE_STAKING_OFF',
  /** `--validator` is neither a 40-hex-digit consensus address nor a node of the cluster. */
  BAD_VALIDATOR = 'STAKE_BAD_VALIDATOR',
  /** An amount of zero. */
  ZERO_AMOUNT = 'STAKE_ZERO_AMOUNT',
  /** The validator's keys or storage plot cannot be used for `create-validator`. */
  BAD_VALIDATOR_IDENTITY = 'STAKE_BAD_VALIDATOR_IDENTITY',
  /** A node's answer does not verify against the state root it names. */
  PROOF_INVALID = 'STAKE_PROOF_INVALID',
  /** The proven reads a command needs did not finish within its time limit. */
  DEADLINE_EXCEEDED = 'STAKE_DEADLINE_EXCEEDED',
}

/** A CliError carrying a `StakeErrorCode`; the message ends with the code in brackets. */
export class StakeCliError extends CliError {
  constructor(
    readonly code: StakeErrorCode,
    message: string,
    exitCode = 2,
  ) {
    super(`${message} [${code}]`, exitCode);
    this.name = 'StakeCliError';
  }
}

/** The chain's token and staking parameters, from its genesis file. */
export function stakingOf(
  genesis: GenesisDocument,
  genesisFile: string,
): { readonly token: TokenParams; readonly params: StakingParams } {
  const token = ledgerToken(genesis, genesisFile);
  const staking = caesarGenesisFromApp(genesis.app)?.staking;
  if (staking === undefined) {
    throw new StakeCliError(
      StakeErrorCode.STAKING_OFF,
      `chain "${genesis.chainId}" has no staking: the app.${CAESAR_MODULE_NAME} section of ${genesisFile} has no staking section (hypermesh cluster init --staking writes one)`,
      1,
    );
  }
  return { token, params: staking.params };
}

const CONSENSUS_ADDRESS = /^[0-9a-f]{40}$/;

/**
 * Parses `--validator`: a 20-byte consensus address (40 hex digits, either case, optional
 * `0x`), or the name of one of `nodes` (`node-2`), whose `id` is its consensus address.
 */
export function parseValidatorArgument(
  text: string,
  nodes: readonly { readonly name: string; readonly id: string }[],
): Uint8Array {
  const named = nodes.find((node) => node.name === text);
  if (named !== undefined) return Uint8Array.from(Buffer.from(named.id, 'hex'));
  const digits = (/^0x/i.test(text) ? text.slice(2) : text).toLowerCase();
  if (CONSENSUS_ADDRESS.test(digits)) return Uint8Array.from(Buffer.from(digits, 'hex'));
  const why = /^[0-9a-f]*$/.test(digits)
    ? `it has ${digits.length} hex digits, a validator address has 40 (an account address has 64: a validator is named by its consensus address, hypermesh stake validators lists them)`
    : 'it is not hex';
  throw new StakeCliError(
    StakeErrorCode.BAD_VALIDATOR,
    `--validator "${text}" is neither a node of the cluster (${nodes.map((node) => node.name).join(', ')}) nor a validator address: ${why}`,
  );
}

/** Checks a node's answer; a proof that does not verify is the node's fault (exit code 1). */
function verified<T>(check: () => T): T {
  try {
    return check();
  } catch (error) {
    throw new StakeCliError(
      StakeErrorCode.PROOF_INVALID,
      `the node's answer does not verify: ${(error as Error).message}`,
      1,
    );
  }
}

/**
 * A proven reader pinned to one height, so every answer comes from the same state. Each answer's
 * proof is checked against the root it names, and that root against block H's committed header
 * and its quorum certificate (verified-root.ts; once per height). The client must carry that
 * check (`withCommittedRoots`, as the operator session's clients do); a plain client is refused.
 */
export class ProvenReader {
  height: number | undefined;
  stateRoot = '';
  private readonly roots: CommittedRoots;
  constructor(
    private readonly client: NodeRpcClient,
    height?: number,
  ) {
    this.height = height;
    this.roots = committedRootsOf(client);
  }

  async read<T>(
    build: (height?: number) => QueryRequest,
    check: (response: QueryResponse) => T,
  ): Promise<T> {
    const response = await this.client.query(build(this.height));
    if (this.height !== undefined && response.height !== this.height) {
      throw new StakeCliError(
        StakeErrorCode.PROOF_INVALID,
        `asked for the state at height ${this.height}, the node answered at height ${response.height ?? '-'}`,
        1,
      );
    }
    const value = verified(() => check(response));
    await this.roots.check(response.height, response.stateRoot);
    if (this.height === undefined && response.height !== null) this.height = response.height;
    this.stateRoot = toHex(response.stateRoot);
    return value;
  }
}

export interface ValidatorView {
  /** 20-byte consensus address, 40 hex digits. */
  readonly address: string;
  /** The operator's account (SHA-256 of the key), 64 hex digits. */
  readonly operator: string;
  readonly record: ValidatorRecord;
  /** In the set staking last handed to consensus. */
  readonly inSet: boolean;
}

export interface ProvenValidators {
  readonly height: number | null;
  readonly stateRoot: string;
  readonly params: StakingParams;
  readonly validators: readonly ValidatorView[];
}

/** The proven staking parameters; a chain without staking is `STAKING_OFF`. */
async function readProvenStakingParams(reader: ProvenReader): Promise<StakingParams> {
  const params = await reader.read(caesarStakingParamsQuery, verifyCaesarStakingParams);
  if (params === null) {
    throw new StakeCliError(
      StakeErrorCode.STAKING_OFF,
      'the node proves that its chain has no staking parameters',
      1,
    );
  }
  return params;
}

/**
 * The staking parameters and the addresses of every validator record, each proven (the first
 * reads of the commands that walk the validators). A chain without staking is `STAKING_OFF`.
 */
async function readProvenStaking(
  reader: ProvenReader,
): Promise<{ params: StakingParams; addresses: readonly Uint8Array[] }> {
  const params = await readProvenStakingParams(reader);
  const addresses = await reader.read(caesarValidatorsQuery, verifyCaesarValidators);
  return { params, addresses };
}

/** The record of a validator the node listed, proven; a listed address without one is a lie. */
async function readListedValidator(reader: ProvenReader, address: Uint8Array) {
  const record = await reader.read(
    (at) => caesarValidatorQuery(address, at),
    (response) => verifyCaesarValidator(address, response),
  );
  if (record === null) {
    throw new StakeCliError(
      StakeErrorCode.PROOF_INVALID,
      `the node lists validator ${toHex(address)} but proves it has no record`,
      1,
    );
  }
  return record;
}

/**
 * Every validator with its record, and which are in the set — each read with its proof checked,
 * all at the height of the first answer. Sorted by stake (descending), then address.
 */
export async function readProvenValidators(
  client: NodeRpcClient,
  height?: number,
): Promise<ProvenValidators> {
  const reader = new ProvenReader(client, height);
  const { params, addresses } = await readProvenStaking(reader);
  const set = new Set(
    (await reader.read(caesarValidatorSetQuery, verifyCaesarValidatorSet)).map(toHex),
  );
  const validators: ValidatorView[] = [];
  for (const address of addresses) {
    const record = await readListedValidator(reader, address);
    const hex = formatConsensusAddress(address);
    validators.push({
      address: hex,
      operator: toHex(ed25519Address(record.publicKey)),
      record,
      inSet: set.has(hex),
    });
  }
  validators.sort((a, b) =>
    a.record.tokens === b.record.tokens
      ? a.address.localeCompare(b.address)
      : a.record.tokens > b.record.tokens
        ? -1
        : 1,
  );
  return { height: reader.height ?? null, stateRoot: reader.stateRoot, params, validators };
}

export interface ProvenDelegation {
  readonly height: number | null;
  readonly stateRoot: string;
  /** The validator's record; null when there is no such validator (proven absent). */
  readonly validator: ValidatorRecord | null;
  readonly shares: bigint;
  readonly unbonding: readonly UnbondingEntry[];
}

/** A delegator's shares with a validator and its unbonding entries, proven at one height. */
export async function readProvenDelegation(
  client: NodeRpcClient,
  validator: Uint8Array,
  delegator: Uint8Array,
  height?: number,
): Promise<ProvenDelegation> {
  const reader = new ProvenReader(client, height);
  const record = await reader.read(
    (at) => caesarValidatorQuery(validator, at),
    (response) => verifyCaesarValidator(validator, response),
  );
  const shares = await reader.read(
    (at) => caesarDelegationQuery(validator, delegator, at),
    (response) => verifyCaesarDelegation(validator, delegator, response),
  );
  const unbonding = await reader.read(
    (at) => caesarUnbondingQuery(delegator, at),
    (response) => verifyCaesarUnbonding(delegator, response),
  );
  return {
    height: reader.height ?? null,
    stateRoot: reader.stateRoot,
    validator: record,
    shares,
    unbonding,
  };
}

export interface DelegationView {
  /** The validator's consensus address, 40 hex digits. */
  readonly validator: string;
  readonly record: ValidatorRecord;
  readonly shares: bigint;
  /** What the shares are worth now: shares × the validator's tokens / its shares. */
  readonly tokens: bigint;
}

export interface ProvenDelegations {
  readonly height: number | null;
  readonly stateRoot: string;
  /** The delegator's delegations (shares above zero), by worth (descending), then address. */
  readonly delegations: readonly DelegationView[];
  /** Its unbonding entries, by completion height, then validator. */
  readonly unbonding: readonly UnbondingEntry[];
  /**
   * How many validator records were read (each with the delegation at it): the validators the
   * account's proven delegator index names, so equal to the number of delegations.
   */
  readonly validatorsRead: number;
}

/**
 * Every delegation of `delegator` and its unbonding entries, each read with its proof checked,
 * all at the height of the first answer. The account's delegator index (`caesar/delegations`,
 * docs/caesar.md "Delegator index") names exactly the validators it has shares of, at most
 * `MAX_DELEGATIONS_PER_ACCOUNT`; its proof makes the list complete (a node cannot leave one out
 * or add one), so this reads the staking parameters, the index, then at each validator it names
 * the record (for the worth and the jail) and the delegation, then the unbonding entries:
 * 3 + 2 × (at most 32) proven reads, however many validators exist.
 */
export async function readProvenDelegations(
  client: NodeRpcClient,
  delegator: Uint8Array,
  height?: number,
): Promise<ProvenDelegations> {
  const reader = new ProvenReader(client, height);
  // The first answer pins the height, so the reads after it may run together.
  await readProvenStakingParams(reader);
  const index = await reader.read(
    (at) => caesarDelegatorIndexQuery(delegator, at),
    (response) => verifyCaesarDelegatorIndex(delegator, response),
  );
  const readOne = async (address: Uint8Array): Promise<DelegationView> => {
    const [record, shares] = await Promise.all([
      reader.read(
        (at) => caesarValidatorQuery(address, at),
        (response) => verifyCaesarValidator(address, response),
      ),
      reader.read(
        (at) => caesarDelegationQuery(address, delegator, at),
        (response) => verifyCaesarDelegation(address, delegator, response),
      ),
    ]);
    // The index names exactly the validators with shares above zero and a record; a proven
    // state that breaks this is not one the ledger writes (docs/caesar.md, "Staking state").
    if (record === null || shares === 0n) {
      throw new StakeCliError(
        StakeErrorCode.PROOF_INVALID,
        `the node's proven delegator index names validator ${toHex(address)}, at which it proves ${record === null ? 'no validator record' : 'no shares'}`,
        1,
      );
    }
    return {
      validator: formatConsensusAddress(address),
      record,
      shares,
      tokens: sharesValue(record, shares),
    };
  };
  const delegations = (await Promise.all(index.map(readOne))).sort((a, b) =>
    a.tokens === b.tokens ? a.validator.localeCompare(b.validator) : a.tokens > b.tokens ? -1 : 1,
  );
  const unbonding = [
    ...(await reader.read(
      (at) => caesarUnbondingQuery(delegator, at),
      (response) => verifyCaesarUnbonding(delegator, response),
    )),
  ].sort((a, b) =>
    a.completionHeight === b.completionHeight
      ? toHex(a.validator).localeCompare(toHex(b.validator))
      : a.completionHeight - b.completionHeight,
  );
  return {
    height: reader.height ?? null,
    stateRoot: reader.stateRoot,
    delegations,
    unbonding,
    validatorsRead: index.length,
  };
}

/** `no`, or why the validator is jailed and from which height it may unjail. */
export function describeJail(record: ValidatorRecord): string {
  switch (record.jailed) {
    case JailReason.NONE:
      return 'no';
    case JailReason.DOWNTIME:
      return `downtime, unjail from height ${record.jailedUntil}`;
    case JailReason.EQUIVOCATION:
      return `equivocation, unjail from height ${record.jailedUntil}`;
  }
}

export interface StakingTxRequest {
  /** The node API: the sender's proven sequence and, with `wait`, the transaction's status. */
  readonly client: NodeRpcClient;
  /** The same node's `hypermesh.caesar.v1`, whose staking method for the kind admits it. */
  readonly caesar: CaesarRpcClient;
  readonly genesis: GenesisDocument;
  readonly privateKey: KeyObject;
  /**
   * A hybrid wallet's FALCON key: the delegate or unbond acts for the hybrid account, signed by
   * both keys. `create-validator`, `unjail` and `edit-validator` act for a validator's consensus
   * key and are refused with it (`CaesarError HYBRID_VALIDATOR_OP`, before anything is sent).
   */
  readonly falcon?: FalconKeyPair | undefined;
  readonly tx: StakingTx;
  readonly wait: boolean;
  readonly timeoutMs: number;
  /** Told as soon as the node admits the transaction, before waiting. */
  readonly onAdmitted?: SubmitOptions['onAdmitted'];
}

/**
 * The `hypermesh.caesar.v1` method that admits `tx` signed by Ed25519 key `sender` (in a hybrid
 * body when `hybrid`): `stake` for `create-validator` and a self-bond, `unstake` for `unbond`,
 * `delegate` for a delegation to another validator (or from a hybrid account); null for
 * `unjail` and `edit-validator`, which `submitTx` admits.
 */
export function stakingMethodFor(
  tx: StakingTx,
  sender: Uint8Array,
  hybrid: boolean,
): StakingMethod | null {
  switch (tx.op) {
    case CREATE_VALIDATOR_OP:
      return 'stake';
    case DELEGATE_OP:
      return !hybrid && stakingMethodAdmits('stake', tx, sender) ? 'stake' : 'delegate';
    case UNBOND_OP:
      return 'unstake';
    default:
      return null;
  }
}

/** Signs and submits a staking transaction (and waits for its commit when asked). */
export async function sendStakingTx(request: StakingTxRequest): Promise<SubmitOutcome> {
  const { client, caesar, genesis, privateKey, falcon, tx, wait, timeoutMs } = request;
  if (
    falcon !== undefined &&
    (tx.op === CREATE_VALIDATOR_OP || tx.op === UNJAIL_OP || tx.op === EDIT_VALIDATOR_OP)
  ) {
    throw new CaesarError(
      CaesarErrorCode.HYBRID_VALIDATOR_OP,
      `${tx.op} acts for a validator's Ed25519 consensus key; a hybrid account cannot send it`,
      { op: tx.op },
    );
  }
  const method = stakingMethodFor(tx, ed25519RawPublicKey(privateKey), falcon !== undefined);
  // The node API still proves the sequence and reports the status (the spread keeps the
  // client's committed-roots checker); only admission goes to the staking method.
  const admitting: NodeRpcClient =
    method === null ? client : { ...client, submitTx: (bytes) => caesar[method](bytes) };
  return submitTransaction({
    client: admitting,
    genesis,
    privateKey,
    module: CAESAR_MODULE_NAME,
    ...ledgerSubmission(genesis, privateKey, encodeStakingTx(tx), falcon),
    wait,
    timeoutMs,
    onAdmitted: request.onAdmitted,
  });
}
