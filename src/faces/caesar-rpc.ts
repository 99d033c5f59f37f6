import { z } from 'zod';
import {
  CAESAR_MODULE_NAME,
  CREATE_VALIDATOR_OP,
  CaesarError,
  CaesarStateError,
  CaesarStateErrorCode,
  JailReason,
  ProposalStatus,
  VoteOption,
  caesarBalanceQuery,
  caesarDelegationQuery,
  caesarDelegatorIndexQuery,
  caesarFeePoolQuery,
  caesarGovCountQuery,
  caesarGovActiveQuery,
  caesarGovParamsQuery,
  caesarParamsQuery,
  caesarProposalQuery,
  caesarStakingParamsQuery,
  caesarUnbondingQuery,
  caesarValidatorQuery,
  caesarValidatorSetQuery,
  caesarValidatorsQuery,
  caesarVotesQuery,
  compareAddresses,
  consensusAddress,
  decodeCaesarBody,
  DELEGATE_OP,
  ed25519Address,
  formatAddress,
  formatConsensusAddress,
  HYBRID_OP,
  sharesValue,
  UNBOND_OP,
  verifyCaesarBalance,
  verifyCaesarDelegation,
  verifyCaesarDelegatorIndex,
  verifyCaesarFeePool,
  verifyCaesarGovActive,
  verifyCaesarGovCount,
  verifyCaesarGovParams,
  verifyCaesarParams,
  verifyCaesarProposal,
  verifyCaesarStakingParams,
  verifyCaesarUnbonding,
  verifyCaesarValidator,
  verifyCaesarValidatorSet,
  verifyCaesarValidators,
  verifyCaesarVotes,
} from '../caesar/index.js';
import type {
  CaesarTx,
  GovParams,
  ProposalRecord,
  StakingParams,
  TokenParams,
  UnbondingEntry,
  ValidatorRecord,
  VoteRecord,
} from '../caesar/index.js';
import { bytes } from '../codec/schema.js';
import { EVENT_LIMITS, type QueryRequest, type QueryResponse } from '../consensus/app.js';
import {
  SEQUENCE_QUERY,
  TransactionError,
  accountSequenceKey,
  accountSequenceQuery,
  decodeSequence,
  decodeTransaction,
  sequenceKey,
} from '../consensus/application/index.js';
import {
  MAX_HISTORY_PAGE_SIZE,
  submitterOf,
  wireError,
  type AccountHistoryPage,
  type ServiceRegistry,
  type TxReceiptView,
  type TxSubmitResult,
} from '../consensus/net/index.js';
import { MAX_TX_BYTES } from '../consensus/wire.js';
import { bytesEqual, fromHex } from '../crypto/bytes.js';
import { decodeStateProof, verifyStateProof } from '../storage/index.js';
import {
  StoqError,
  StoqErrorCode,
  createClient,
  defineService,
  unary,
  type CallOptions,
  type RpcClient,
  type SessionSource,
  type StoqEndpoint,
} from '../stoq/index.js';

/**
 * The ledger's RPC face (`hypermesh.caesar.v1`, docs/caesar.md "RPC service"), served by every
 * node of a chain whose genesis has Caesar, next to the node API.
 *
 * State methods (balance, account, validators, rewards, params, proposals, votes) read every
 * key at one height and send each answer's value with its Merkle proof (`proofs`) next to a
 * decoded `view`. `createCaesarRpcClient` checks every proof against the answer's state root,
 * decodes the proven values itself, and refuses an answer whose `view` differs from them
 * (`CaesarStateError PROOF_INVALID`); the caller must still trust the state root (e.g. from a
 * committed header, `hypermesh block verify`). Receipts and history are the node's own account
 * of the blocks it executed (no proof); `receipt` tells a transaction pending in the node's
 * mempool (`status: 'pending'`) from one it does not know (`NOT_FOUND`). `submitTx` hands a
 * Caesar transaction to the node's admission, as the node API does; `stake`, `unstake` and
 * `delegate` do the same for the staking transactions each admits (`STAKING_METHOD_KINDS`,
 * `stakingMethodAdmits`), refusing any other with INVALID_ARGUMENT before admission.
 */
export const CAESAR_SERVICE_NAME = 'hypermesh.caesar.v1';

/** Validators one `validators` page holds at most. */
export const MAX_VALIDATORS_PAGE = 256;
/** Proposals one `proposals` page holds at most. */
export const MAX_PROPOSALS_PAGE = 32;
/**
 * Delegations an `account` answer may list on the wire. The ledger holds an account to
 * `MAX_DELEGATIONS_PER_ACCOUNT` (32) validators; the wire keeps its earlier, larger bound.
 */
export const MAX_ACCOUNT_DELEGATIONS = 1_000;
const MAX_PROVEN_BYTES = 256 * 1024;
const MAX_VALIDATOR_LIST = 10_000;

/** Reading is open to every authenticated role; so is submitting (transactions are signed). */
const anyone = ['validator', 'node', 'client'] as const;

const height = z.int().min(1).max(Number.MAX_SAFE_INTEGER);
const count = z.int().min(0).max(Number.MAX_SAFE_INTEGER);
const amount = z.string().regex(/^(0|[1-9][0-9]{0,38})$/, 'base units as decimal digits');
const accountHex = z.string().regex(/^[0-9a-f]{64}$/);
const validatorHex = z.string().regex(/^[0-9a-f]{40}$/);
const address = bytes({ length: 32 });
const validatorAddress = bytes({ length: 20 });
const proven = z.strictObject({
  value: bytes({ max: MAX_PROVEN_BYTES }).nullable(),
  proof: bytes({ max: MAX_PROVEN_BYTES }),
});
const read = { height, stateRoot: bytes({ length: 32 }) };
const paramRecord = z
  .record(z.string().min(1).max(32), z.union([amount, count]))
  .refine((record) => Object.keys(record).length <= 32, { message: 'at most 32 parameters' });

const jailNames = ['none', 'downtime', 'equivocation'] as const;
const statusNames = [
  'voting',
  'passed',
  'rejected',
  'rejected-no-quorum',
  'applied',
  'failed',
] as const;
const optionNames = ['yes', 'no', 'abstain'] as const;

const delegationView = z.strictObject({ validator: validatorHex, shares: amount, worth: amount });
const unbondingView = z.strictObject({
  validator: validatorHex,
  amount,
  creationHeight: count,
  completionHeight: count,
});
const accountView = z.strictObject({
  address: accountHex,
  balance: amount,
  sequence: count.nullable(),
  staking: z
    .strictObject({
      delegations: z.array(delegationView).max(MAX_ACCOUNT_DELEGATIONS),
      unbondings: z.array(unbondingView).max(64),
      bonded: amount,
      unbonding: amount,
    })
    .nullable(),
});
const validatorView = z.strictObject({
  address: validatorHex,
  operator: accountHex,
  tokens: amount,
  shares: amount,
  power: count,
  inSet: z.boolean(),
  jailed: z.enum(jailNames),
  jailedUntil: count,
  commissionBps: count,
});
const tallyView = z.strictObject({ yes: amount, no: amount, abstain: amount, bonded: amount });
const proposalView = z.strictObject({
  id: count,
  title: z.string().max(140),
  status: z.enum(statusNames),
  proposer: accountHex,
  deposit: amount,
  changes: z.array(z.strictObject({ name: z.string().max(32), value: amount })).max(16),
  submitHeight: count,
  votingEnd: count,
  executeHeight: count,
  tally: tallyView.nullable(),
});
const txHash = bytes({ length: 32 });
const receipt = z.strictObject({
  txHash,
  height,
  index: count,
  code: z.int().min(0).max(0xffff_ffff),
  log: z.string().max(4096),
  events: z
    .array(
      z.strictObject({
        type: z.string().min(1).max(128),
        attributes: z
          .record(z.string().min(1).max(64), z.string().max(EVENT_LIMITS.valueChars))
          .refine((record) => Object.keys(record).length <= EVENT_LIMITS.attributesPerEvent),
        accounts: z
          .array(bytes({ min: 1, max: EVENT_LIMITS.accountBytes }))
          .max(EVENT_LIMITS.accountsPerEvent),
      }),
    )
    .max(EVENT_LIMITS.eventsPerTx),
});
const position = z.strictObject({ height, index: count });
/**
 * What `receipt` answers for a transaction this node holds in its mempool, not yet in a block:
 * the client polls again (an unknown transaction is `NOT_FOUND` instead).
 */
const pendingReceipt = z.strictObject({ status: z.literal('pending'), txHash });
/** `reportDuplicate`: say whether the transaction was already pending (`duplicate`). */
const submitRequest = z.strictObject({
  tx: bytes({ min: 1, max: MAX_TX_BYTES }),
  reportDuplicate: z.literal(true).optional(),
});
/**
 * Admission's answer, as the node API's `submitTx`: the txHash (and, to a request with
 * `reportDuplicate`, whether it was already pending), or the refusal's code.
 */
const submitResponse = z.discriminatedUnion('ok', [
  z.strictObject({ ok: z.literal(true), txHash, duplicate: z.boolean().optional() }),
  z.strictObject({
    ok: z.literal(false),
    txHash: txHash.optional(),
    code: z.string().min(1).max(128),
    message: z.string().max(4096),
  }),
]);

/**
 * The dedicated staking methods (docs/caesar.md, "RPC service"). Each admits only the staking
 * transactions named here, so a client that means to stake cannot have a transfer or a vote
 * admitted by mistake; `unjail` and `edit-validator` (no tokens move) and every other Caesar
 * transaction go through `submitTx`.
 *
 * - `stake`: the validator's own stake: `create-validator`, or a `delegate` whose validator is
 *   the sender's own consensus address (a self-bond from the operator account, what
 *   `hypermesh stake bond` sends).
 * - `unstake`: an `unbond`, plain or in a hybrid body (from a self-bond or any delegation).
 * - `delegate`: a `delegate`, plain or in a hybrid body, to any validator (a plain one to the
 *   sender's own validator is a self-bond, which `stake` admits too).
 */
export const STAKING_METHOD_KINDS = {
  stake: ['create-validator', "delegate to the sender's own validator"],
  unstake: ['unbond', 'hybrid unbond'],
  delegate: ['delegate', 'hybrid delegate'],
} as const satisfies Record<string, readonly string[]>;

export type StakingMethod = keyof typeof STAKING_METHOD_KINDS;

/** Whether staking method `method` admits body `tx` signed by Ed25519 key `sender`. */
export function stakingMethodAdmits(
  method: StakingMethod,
  tx: CaesarTx,
  sender: Uint8Array,
): boolean {
  const inner = tx.op === HYBRID_OP ? tx.inner : tx;
  switch (method) {
    case 'stake':
      return (
        tx.op === CREATE_VALIDATOR_OP ||
        (tx.op === DELEGATE_OP && bytesEqual(tx.validator, consensusAddress(sender)))
      );
    case 'unstake':
      return inner.op === UNBOND_OP;
    case 'delegate':
      return inner.op === DELEGATE_OP;
  }
}

/** How a refused transaction is named: its op, `hybrid <op>` inside a hybrid body. */
function kindOf(tx: CaesarTx): string {
  return tx.op === HYBRID_OP ? `hybrid ${tx.inner.op}` : tx.op;
}

export const caesarService = defineService({
  name: CAESAR_SERVICE_NAME,
  methods: {
    balance: unary({
      request: z.strictObject({ address, height: height.optional() }),
      response: z.strictObject({
        ...read,
        view: z.strictObject({ address: accountHex, balance: amount }),
        proofs: z.strictObject({ balance: proven }),
      }),
      allow: anyone,
    }),
    account: unary({
      request: z.strictObject({
        address,
        /** The account's Ed25519 key: the router keeps sequences by key, not by address. */
        publicKey: bytes({ length: 32 }).optional(),
        /**
         * The address is a hybrid account's: prove its own sequence (`acct/sequence/caesar`,
         * kept by address). Not with `publicKey`.
         */
        hybrid: z.literal(true).optional(),
        height: height.optional(),
        /**
         * Also send the proven delegator index (`proofs.index`), which proves the listed
         * delegations complete. Optional so that clients from before it get the answer they know.
         */
        proveComplete: z.literal(true).optional(),
      }),
      response: z.strictObject({
        ...read,
        view: accountView,
        proofs: z.strictObject({
          balance: proven,
          sequence: proven.nullable(),
          stakingParams: proven,
          unbonding: proven.nullable(),
          /** The delegator index, when `proveComplete` asked for it and the chain has staking. */
          index: proven.optional(),
          delegations: z
            .array(
              z.strictObject({ validator: validatorAddress, record: proven, delegation: proven }),
            )
            .max(MAX_ACCOUNT_DELEGATIONS),
        }),
      }),
      allow: anyone,
    }),
    validators: unary({
      request: z
        .strictObject({
          /** The page starts strictly after this address: the previous page's `next`. */
          after: validatorAddress.optional(),
          /**
           * An index into the list, for clients from before `after` (their pages shift when the
           * list changes between them); its answer's `next` is an index too.
           */
          from: count.optional(),
          limit: z.int().min(1).max(MAX_VALIDATORS_PAGE).optional(),
          height: height.optional(),
        })
        .refine((request) => request.after === undefined || request.from === undefined, {
          message: 'after and from exclude each other',
        }),
      response: z.strictObject({
        ...read,
        view: z.strictObject({
          total: count,
          validators: z.array(validatorView).max(MAX_VALIDATORS_PAGE),
          /** The last address listed when more follow (an index, to a request with `from`). */
          next: z.union([validatorHex, count]).nullable(),
        }),
        proofs: z.strictObject({
          list: proven,
          set: proven,
          records: z.array(proven).max(MAX_VALIDATORS_PAGE),
        }),
      }),
      allow: anyone,
    }),
    rewards: unary({
      request: z.strictObject({
        validator: validatorAddress.optional(),
        height: height.optional(),
      }),
      response: z.strictObject({
        ...read,
        view: z.strictObject({
          blockReward: amount.nullable(),
          proposerBonusBps: count.nullable(),
          feePool: amount,
          validator: z
            .strictObject({
              address: validatorHex,
              operator: accountHex,
              commissionBps: count,
              tokens: amount,
              shares: amount,
            })
            .nullable(),
        }),
        proofs: z.strictObject({
          stakingParams: proven,
          feePool: proven,
          validator: proven.nullable(),
        }),
      }),
      allow: anyone,
    }),
    params: unary({
      request: z.strictObject({ height: height.optional() }),
      response: z.strictObject({
        ...read,
        view: z.strictObject({
          token: z.strictObject({
            name: z.string().max(64),
            symbol: z.string().max(12),
            decimals: count,
            supply: amount,
          }),
          staking: paramRecord.nullable(),
          governance: paramRecord.nullable(),
        }),
        proofs: z.strictObject({ token: proven, staking: proven, governance: proven }),
      }),
      allow: anyone,
    }),
    proposals: unary({
      request: z.strictObject({
        before: z.int().min(2).max(Number.MAX_SAFE_INTEGER).optional(),
        limit: z.int().min(1).max(MAX_PROPOSALS_PAGE).optional(),
        height: height.optional(),
      }),
      response: z.strictObject({
        ...read,
        view: z.strictObject({
          count,
          active: z.array(count).max(64),
          proposals: z.array(proposalView).max(MAX_PROPOSALS_PAGE),
          next: count.nullable(),
        }),
        proofs: z.strictObject({
          count: proven,
          active: proven,
          proposals: z.array(proven).max(MAX_PROPOSALS_PAGE),
        }),
      }),
      allow: anyone,
    }),
    votes: unary({
      request: z.strictObject({ proposal: height, height: height.optional() }),
      response: z.strictObject({
        ...read,
        view: z.strictObject({
          proposal: proposalView.nullable(),
          votes: z
            .array(z.strictObject({ voter: accountHex, option: z.enum(optionNames) }))
            .max(2_000),
        }),
        proofs: z.strictObject({ proposal: proven, votes: proven }),
      }),
      allow: anyone,
    }),
    submitTx: unary({ request: submitRequest, response: submitResponse, allow: anyone }),
    stake: unary({ request: submitRequest, response: submitResponse, allow: anyone }),
    unstake: unary({ request: submitRequest, response: submitResponse, allow: anyone }),
    delegate: unary({ request: submitRequest, response: submitResponse, allow: anyone }),
    receipt: unary({
      request: z.strictObject({ txHash }),
      /** The committed transaction's receipt, or `pendingReceipt` while it waits in the mempool. */
      response: z.union([receipt, pendingReceipt]),
      allow: anyone,
    }),
    history: unary({
      request: z.strictObject({
        account: address,
        before: position.optional(),
        limit: z.int().min(1).max(MAX_HISTORY_PAGE_SIZE),
      }),
      response: z.strictObject({
        receipts: z.array(receipt).max(MAX_HISTORY_PAGE_SIZE),
        next: position.nullable(),
      }),
      allow: anyone,
    }),
  },
});

export type CaesarRpcService = typeof caesarService;
export type ProvenRead = z.output<typeof proven>;
export type AccountView = z.output<typeof accountView>;
export type ValidatorView = z.output<typeof validatorView>;
export type ProposalView = z.output<typeof proposalView>;

type Awaitable<T> = T | Promise<T>;

/** What the face reads and where it submits: the node's application, admission and receipts. */
export interface CaesarRpcSource {
  /** The application's query (the router answers with proofs). */
  query(request: QueryRequest): QueryResponse;
  /**
   * Client admission, as the node API's `submitTx`; `caller` is the client's identity URI (the
   * intake queue's per-caller share).
   */
  submit(tx: Uint8Array, caller?: string): Awaitable<TxSubmitResult>;
  receipt(txHash: Uint8Array): TxReceiptView | null;
  /** Whether this node's mempool holds the transaction (admitted, not yet committed). */
  pending(txHash: Uint8Array): boolean;
  history(
    account: Uint8Array,
    before: { readonly height: number; readonly index: number } | undefined,
    limit: number,
  ): AccountHistoryPage;
}

// ---- Decoding proven answers into views: shared by the server and the verifying client. ----

/** A proven value as the readers take it, at the answer's height and root. */
interface Answer {
  readonly height: number;
  readonly stateRoot: Uint8Array;
}
const asResponse = (at: Answer, value: ProvenRead): QueryResponse => ({
  height: at.height,
  stateRoot: at.stateRoot,
  value: value.value,
  proof: value.proof,
});

const jailName = (reason: JailReason): (typeof jailNames)[number] =>
  reason === JailReason.DOWNTIME
    ? 'downtime'
    : reason === JailReason.EQUIVOCATION
      ? 'equivocation'
      : 'none';

const STATUS_NAMES: Readonly<Record<ProposalStatus, (typeof statusNames)[number]>> = {
  [ProposalStatus.VOTING]: 'voting',
  [ProposalStatus.PASSED]: 'passed',
  [ProposalStatus.REJECTED]: 'rejected',
  [ProposalStatus.REJECTED_NO_QUORUM]: 'rejected-no-quorum',
  [ProposalStatus.APPLIED]: 'applied',
  [ProposalStatus.FAILED]: 'failed',
};
const OPTION_NAMES: Readonly<Record<VoteOption, (typeof optionNames)[number]>> = {
  [VoteOption.YES]: 'yes',
  [VoteOption.NO]: 'no',
  [VoteOption.ABSTAIN]: 'abstain',
};

function paramsView(params: StakingParams | GovParams): Record<string, string | number> {
  return Object.fromEntries(
    Object.entries(params).map(([name, value]) => [
      name,
      typeof value === 'bigint' ? value.toString() : (value as number),
    ]),
  );
}

function validatorViewOf(
  validator: Uint8Array,
  record: ValidatorRecord,
  inSet: boolean,
): ValidatorView {
  return {
    address: formatConsensusAddress(validator),
    operator: formatAddress(ed25519Address(record.publicKey)),
    tokens: record.tokens.toString(),
    shares: record.shares.toString(),
    power: record.power,
    inSet,
    jailed: jailName(record.jailed),
    jailedUntil: record.jailedUntil,
    commissionBps: record.commissionBps,
  };
}

function proposalViewOf(record: ProposalRecord): ProposalView {
  return {
    id: record.id,
    title: record.title,
    status: STATUS_NAMES[record.status],
    proposer: formatAddress(record.proposer),
    deposit: record.deposit.toString(),
    changes: record.changes.map((change) => ({
      name: change.name,
      value: change.value.toString(),
    })),
    submitHeight: record.submitHeight,
    votingEnd: record.votingEnd,
    executeHeight: record.executeHeight,
    tally:
      record.tally === undefined
        ? null
        : {
            yes: record.tally.yes.toString(),
            no: record.tally.no.toString(),
            abstain: record.tally.abstain.toString(),
            bonded: record.tally.bonded.toString(),
          },
  };
}

function proofInvalid(what: string): never {
  throw new CaesarStateError(CaesarStateErrorCode.PROOF_INVALID, what);
}

/**
 * Whose sequence an account answer proves: an Ed25519 key's (whose SHA-256 is the address), or
 * the hybrid account's at the address (docs/caesar.md, "A hybrid account's sequence").
 */
type SequenceOwner = { readonly publicKey: Uint8Array } | { readonly hybrid: true };

/** The query and the state key of `owner`'s sequence, for the account at `account`. */
function sequenceRead(
  account: Uint8Array,
  owner: SequenceOwner,
): { query: QueryRequest; key: Uint8Array } {
  return 'publicKey' in owner
    ? { query: { path: SEQUENCE_QUERY, data: owner.publicKey }, key: sequenceKey(owner.publicKey) }
    : {
        query: accountSequenceQuery(CAESAR_MODULE_NAME, account),
        key: accountSequenceKey(CAESAR_MODULE_NAME, account),
      };
}

/** Whose sequence an account request asks for, if any. */
function sequenceOwner(request: {
  readonly publicKey?: Uint8Array | undefined;
  readonly hybrid?: boolean | undefined;
}): SequenceOwner | undefined {
  if (request.publicKey !== undefined) return { publicKey: request.publicKey };
  return request.hybrid === true ? { hybrid: true } : undefined;
}

/** The proven router sequence at `key` (not a Caesar key, so checked here). */
function verifySequence(at: Answer, key: Uint8Array, value: ProvenRead): number {
  if (!verifyStateProof(at.stateRoot, key, value.value, decodeStateProof(value.proof))) {
    proofInvalid("the sequence's proof does not verify against the state root");
  }
  return decodeSequence(value.value);
}

interface AccountProofs {
  readonly balance: ProvenRead;
  readonly sequence: ProvenRead | null;
  readonly stakingParams: ProvenRead;
  readonly unbonding: ProvenRead | null;
  readonly index?: ProvenRead;
  readonly delegations: readonly {
    readonly validator: Uint8Array;
    readonly record: ProvenRead;
    readonly delegation: ProvenRead;
  }[];
}

/**
 * The account's view from its proofs. `complete`: the answer must carry the proven delegator
 * index and list exactly the delegations it names (so none is left out).
 */
function accountViewOf(
  at: Answer,
  account: Uint8Array,
  owner: SequenceOwner | undefined,
  proofs: AccountProofs,
  complete: boolean,
): AccountView {
  const balance = verifyCaesarBalance(account, asResponse(at, proofs.balance));
  if ((owner === undefined) !== (proofs.sequence === null)) {
    proofInvalid('the answer has a sequence exactly when a public key or hybrid was given');
  }
  const sequence =
    owner === undefined || proofs.sequence === null
      ? null
      : verifySequence(at, sequenceRead(account, owner).key, proofs.sequence);
  const staking = verifyCaesarStakingParams(asResponse(at, proofs.stakingParams));
  if ((staking === null) !== (proofs.unbonding === null)) {
    proofInvalid('the answer has unbonding entries exactly when the chain has staking');
  }
  if ((staking === null || !complete) && proofs.index !== undefined) {
    proofInvalid('the answer has a delegator index where none was asked for');
  }
  if (staking === null || proofs.unbonding === null) {
    return {
      address: formatAddress(account),
      balance: balance.toString(),
      sequence,
      staking: null,
    };
  }
  const entries: UnbondingEntry[] = verifyCaesarUnbonding(
    account,
    asResponse(at, proofs.unbonding),
  );
  let bonded = 0n;
  // In the order of the validator list, each validator once: a delegation listed twice would be
  // counted twice in `bonded`, though each copy's proofs verify.
  for (const [i, { validator }] of proofs.delegations.entries()) {
    const previous = proofs.delegations[i - 1]?.validator;
    if (previous !== undefined && compareAddresses(previous, validator) >= 0) {
      proofInvalid(
        `the answer lists delegations out of validator order or twice (${formatConsensusAddress(validator)} after ${formatConsensusAddress(previous)})`,
      );
    }
  }
  if (complete) {
    if (proofs.index === undefined) proofInvalid('the answer has no delegator index');
    const index = verifyCaesarDelegatorIndex(account, asResponse(at, proofs.index));
    const listed = proofs.delegations.map(({ validator }) => validator);
    if (
      index.length !== listed.length ||
      index.some((validator, i) => !bytesEqual(validator, listed[i]!))
    ) {
      proofInvalid(
        `the answer lists ${listed.length} delegations, the proven delegator index ${index.length}: one is left out or added`,
      );
    }
  }
  const delegations = proofs.delegations.map(({ validator, record, delegation }) => {
    const found = verifyCaesarValidator(validator, asResponse(at, record));
    const shares = verifyCaesarDelegation(validator, account, asResponse(at, delegation));
    if (found === null || shares === 0n) {
      proofInvalid(
        `the answer lists a delegation to ${formatConsensusAddress(validator)} that does not exist`,
      );
    }
    const worth = sharesValue(found, shares);
    bonded += worth;
    return {
      validator: formatConsensusAddress(validator),
      shares: shares.toString(),
      worth: worth.toString(),
    };
  });
  return {
    address: formatAddress(account),
    balance: balance.toString(),
    sequence,
    staking: {
      delegations,
      unbondings: entries.map((entry) => ({
        validator: formatConsensusAddress(entry.validator),
        amount: entry.amount.toString(),
        creationHeight: entry.creationHeight,
        completionHeight: entry.completionHeight,
      })),
      bonded: bonded.toString(),
      unbonding: entries.reduce((sum, entry) => sum + entry.amount, 0n).toString(),
    },
  };
}

/** Where a `validators` page starts: strictly after an address, or (older clients) at an index. */
interface ValidatorCursor {
  readonly after?: Uint8Array | undefined;
  readonly from?: number | undefined;
}

/**
 * The page of `list` (ascending addresses) that `cursor` and `limit` ask for, and where the next
 * one starts: the last address listed, when more follow. Keyed by address, a page does not
 * shift when validators are created or removed between pages (an index would: one listed twice,
 * another never). `from` keeps the index for clients from before `after`.
 */
function validatorPage(
  list: readonly Uint8Array[],
  cursor: ValidatorCursor,
  limit: number,
): { page: Uint8Array[]; next: string | number | null } {
  if (cursor.from !== undefined) {
    const end = cursor.from + limit;
    return { page: list.slice(cursor.from, end), next: end < list.length ? end : null };
  }
  const { after } = cursor;
  let start = 0;
  if (after !== undefined) {
    let high = list.length;
    while (start < high) {
      const middle = (start + high) >>> 1;
      if (compareAddresses(list[middle]!, after) <= 0) start = middle + 1;
      else high = middle;
    }
  }
  const page = list.slice(start, start + limit);
  const last = page.at(-1);
  return {
    page,
    next: start + limit < list.length && last !== undefined ? formatConsensusAddress(last) : null,
  };
}

function validatorsViewOf(
  at: Answer,
  cursor: ValidatorCursor,
  limit: number,
  proofs: { list: ProvenRead; set: ProvenRead; records: readonly ProvenRead[] },
): { total: number; validators: ValidatorView[]; next: string | number | null } {
  const list = verifyCaesarValidators(asResponse(at, proofs.list));
  const set = verifyCaesarValidatorSet(asResponse(at, proofs.set));
  const { page, next } = validatorPage(list, cursor, limit);
  if (proofs.records.length !== page.length) {
    proofInvalid(`the answer has ${proofs.records.length} records for ${page.length} validators`);
  }
  const validators = page.map((validator, i) => {
    const record = verifyCaesarValidator(validator, asResponse(at, proofs.records[i]!));
    if (record === null) {
      proofInvalid(`validator ${formatConsensusAddress(validator)} is listed but has no record`);
    }
    return validatorViewOf(
      validator,
      record,
      set.some((member) => bytesEqual(member, validator)),
    );
  });
  return { total: list.length, validators, next };
}

function proposalIds(count: number, before: number | undefined, limit: number): number[] {
  const top = Math.min(count, before === undefined ? count : before - 1);
  const ids: number[] = [];
  for (let id = top; id >= 1 && ids.length < limit; id--) ids.push(id);
  return ids;
}

function proposalsViewOf(
  at: Answer,
  before: number | undefined,
  limit: number,
  proofs: { count: ProvenRead; active: ProvenRead; proposals: readonly ProvenRead[] },
) {
  const total = verifyCaesarGovCount(asResponse(at, proofs.count));
  const active = verifyCaesarGovActive(asResponse(at, proofs.active));
  const ids = proposalIds(total, before, limit);
  if (proofs.proposals.length !== ids.length) {
    proofInvalid(`the answer has ${proofs.proposals.length} proposals for ids ${ids.join(', ')}`);
  }
  const proposals = ids.map((id, i) => {
    const record = verifyCaesarProposal(id, asResponse(at, proofs.proposals[i]!));
    if (record === null) proofInvalid(`proposal ${id} is counted but absent`);
    return proposalViewOf(record);
  });
  const last = ids.at(-1);
  return {
    count: total,
    active,
    proposals,
    next: last !== undefined && last > 1 ? last : null,
  };
}

function votesViewOf(at: Answer, id: number, proofs: { proposal: ProvenRead; votes: ProvenRead }) {
  const record = verifyCaesarProposal(id, asResponse(at, proofs.proposal));
  const votes: VoteRecord[] = verifyCaesarVotes(id, asResponse(at, proofs.votes));
  return {
    proposal: record === null ? null : proposalViewOf(record),
    votes: votes.map((vote) => ({
      voter: formatAddress(vote.voter),
      option: OPTION_NAMES[vote.option],
    })),
  };
}

function rewardsViewOf(
  at: Answer,
  validator: Uint8Array | undefined,
  proofs: { stakingParams: ProvenRead; feePool: ProvenRead; validator: ProvenRead | null },
) {
  const staking = verifyCaesarStakingParams(asResponse(at, proofs.stakingParams));
  const feePool = verifyCaesarFeePool(asResponse(at, proofs.feePool));
  if ((validator === undefined) !== (proofs.validator === null)) {
    proofInvalid('the answer has a validator record exactly when one was asked for');
  }
  const record =
    validator === undefined || proofs.validator === null
      ? null
      : verifyCaesarValidator(validator, asResponse(at, proofs.validator));
  return {
    blockReward: staking === null ? null : staking.blockReward.toString(),
    proposerBonusBps: staking === null ? null : staking.proposerBonusBps,
    feePool: feePool.toString(),
    validator:
      validator === undefined || record === null
        ? null
        : {
            address: formatConsensusAddress(validator),
            operator: formatAddress(ed25519Address(record.publicKey)),
            commissionBps: record.commissionBps,
            tokens: record.tokens.toString(),
            shares: record.shares.toString(),
          },
  };
}

function paramsViewOf(
  at: Answer,
  proofs: { token: ProvenRead; staking: ProvenRead; governance: ProvenRead },
) {
  const token: TokenParams | null = verifyCaesarParams(asResponse(at, proofs.token));
  if (token === null) proofInvalid('the chain has no Caesar token parameters');
  const staking = verifyCaesarStakingParams(asResponse(at, proofs.staking));
  // Governance needs staking; its parameters are the defaults until a genesis or proposal sets them.
  const governance = verifyCaesarGovParams(asResponse(at, proofs.governance));
  return {
    token: {
      name: token.name,
      symbol: token.symbol,
      decimals: token.decimals,
      supply: token.supply.toString(),
    },
    staking: staking === null ? null : paramsView(staking),
    governance: staking === null ? null : paramsView(governance),
  };
}

// ---- The server. ----

/** Reads at one height: the first answer fixes it, the others ask for it. */
class Reader {
  private at: Answer | undefined;

  constructor(
    private readonly source: CaesarRpcSource,
    private readonly height: number | undefined,
  ) {}

  read(request: QueryRequest): ProvenRead {
    const at = this.at?.height ?? this.height;
    const answer = this.source.query(at === undefined ? request : { ...request, height: at });
    if (answer.height === null) {
      throw new StoqError(StoqErrorCode.UNAVAILABLE, 'no block is committed yet', {
        reason: 'no-block',
      });
    }
    this.at ??= { height: answer.height, stateRoot: answer.stateRoot };
    if (answer.proof === undefined) {
      throw new StoqError(StoqErrorCode.INTERNAL, `the answer to ${request.path} has no proof`);
    }
    return { value: answer.value, proof: answer.proof };
  }

  answer(): Answer {
    if (this.at === undefined) throw new StoqError(StoqErrorCode.INTERNAL, 'nothing was read');
    return this.at;
  }
}

/**
 * The account's proofs: its delegations are the validators its delegator index names, so one
 * answer reads at most `MAX_DELEGATIONS_PER_ACCOUNT` × 2 + 5 keys, however many validators
 * exist. `complete`: also send the index's proof.
 */
function accountProofs(
  reader: Reader,
  account: Uint8Array,
  owner: SequenceOwner | undefined,
  complete: boolean,
): AccountProofs {
  const balance = reader.read(caesarBalanceQuery(account));
  const sequence = owner === undefined ? null : reader.read(sequenceRead(account, owner).query);
  const stakingParams = reader.read(caesarStakingParamsQuery());
  const at = reader.answer();
  if (verifyCaesarStakingParams(asResponse(at, stakingParams)) === null) {
    return { balance, sequence, stakingParams, unbonding: null, delegations: [] };
  }
  const unbonding = reader.read(caesarUnbondingQuery(account));
  const index = reader.read(caesarDelegatorIndexQuery(account));
  const delegations = verifyCaesarDelegatorIndex(account, asResponse(at, index)).map(
    (validator) => ({
      validator,
      record: reader.read(caesarValidatorQuery(validator)),
      delegation: reader.read(caesarDelegationQuery(validator, account)),
    }),
  );
  return {
    balance,
    sequence,
    stakingParams,
    unbonding,
    ...(complete ? { index } : {}),
    delegations,
  };
}

const DEFAULT_VALIDATORS_PAGE = 100;
const DEFAULT_PROPOSALS_PAGE = 20;

/** Registers `hypermesh.caesar.v1` on `server`, answering from `source`. */
export function registerCaesarRpc(server: ServiceRegistry, source: CaesarRpcSource): void {
  const run = async <T>(work: () => Awaitable<T>): Promise<T> => {
    try {
      return await work();
    } catch (error) {
      throw wireError(error);
    }
  };
  server.register(caesarService, {
    balance: (request) =>
      run(() => {
        const reader = new Reader(source, request.height);
        const proofs = { balance: reader.read(caesarBalanceQuery(request.address)) };
        const at = reader.answer();
        const balance = verifyCaesarBalance(request.address, asResponse(at, proofs.balance));
        return {
          ...at,
          view: { address: formatAddress(request.address), balance: balance.toString() },
          proofs,
        };
      }),
    account: (request) =>
      run(() => {
        if (
          request.publicKey !== undefined &&
          !bytesEqual(ed25519Address(request.publicKey), request.address)
        ) {
          throw new StoqError(
            StoqErrorCode.INVALID_ARGUMENT,
            'publicKey is not the key of this address (the address is SHA-256 of the key)',
            { reason: 'key-mismatch' },
          );
        }
        if (request.publicKey !== undefined && request.hybrid === true) {
          throw new StoqError(
            StoqErrorCode.INVALID_ARGUMENT,
            'publicKey and hybrid exclude each other: a hybrid account has no key address',
            { reason: 'key-and-hybrid' },
          );
        }
        const owner = sequenceOwner(request);
        const complete = request.proveComplete === true;
        const reader = new Reader(source, request.height);
        const proofs = accountProofs(reader, request.address, owner, complete);
        const at = reader.answer();
        return {
          ...at,
          view: accountViewOf(at, request.address, owner, proofs, complete),
          proofs: { ...proofs, delegations: [...proofs.delegations] },
        };
      }),
    validators: (request) =>
      run(() => {
        const cursor = { after: request.after, from: request.from };
        const limit = request.limit ?? DEFAULT_VALIDATORS_PAGE;
        const reader = new Reader(source, request.height);
        const list = reader.read(caesarValidatorsQuery());
        const set = reader.read(caesarValidatorSetQuery());
        const at = reader.answer();
        const addresses = verifyCaesarValidators(asResponse(at, list));
        if (addresses.length > MAX_VALIDATOR_LIST) {
          throw new StoqError(StoqErrorCode.INTERNAL, 'more validators than the module allows');
        }
        const records = validatorPage(addresses, cursor, limit).page.map((validator) =>
          reader.read(caesarValidatorQuery(validator)),
        );
        const proofs = { list, set, records };
        return { ...at, view: validatorsViewOf(at, cursor, limit, proofs), proofs };
      }),
    rewards: (request) =>
      run(() => {
        const reader = new Reader(source, request.height);
        const proofs = {
          stakingParams: reader.read(caesarStakingParamsQuery()),
          feePool: reader.read(caesarFeePoolQuery()),
          validator:
            request.validator === undefined
              ? null
              : reader.read(caesarValidatorQuery(request.validator)),
        };
        const at = reader.answer();
        return { ...at, view: rewardsViewOf(at, request.validator, proofs), proofs };
      }),
    params: (request) =>
      run(() => {
        const reader = new Reader(source, request.height);
        const proofs = {
          token: reader.read(caesarParamsQuery()),
          staking: reader.read(caesarStakingParamsQuery()),
          governance: reader.read(caesarGovParamsQuery()),
        };
        const at = reader.answer();
        return { ...at, view: paramsViewOf(at, proofs), proofs };
      }),
    proposals: (request) =>
      run(() => {
        const limit = request.limit ?? DEFAULT_PROPOSALS_PAGE;
        const reader = new Reader(source, request.height);
        const countRead = reader.read(caesarGovCountQuery());
        const active = reader.read(caesarGovActiveQuery());
        const at = reader.answer();
        const total = verifyCaesarGovCount(asResponse(at, countRead));
        const proposals = proposalIds(total, request.before, limit).map((id) =>
          reader.read(caesarProposalQuery(id)),
        );
        const proofs = { count: countRead, active, proposals };
        return { ...at, view: proposalsViewOf(at, request.before, limit, proofs), proofs };
      }),
    votes: (request) =>
      run(() => {
        const reader = new Reader(source, request.height);
        const proofs = {
          proposal: reader.read(caesarProposalQuery(request.proposal)),
          votes: reader.read(caesarVotesQuery(request.proposal)),
        };
        const at = reader.answer();
        return { ...at, view: votesViewOf(at, request.proposal, proofs), proofs };
      }),
    submitTx: (request, ctx) =>
      run(async () => {
        let module: string;
        try {
          module = decodeTransaction(request.tx).module;
        } catch (error) {
          if (!(error instanceof TransactionError)) throw error;
          return { ok: false as const, code: error.code, message: error.message };
        }
        notCaesar(module);
        return admit(source, request, submitterOf(ctx.peer));
      }),
    stake: (request, ctx) =>
      run(() => submitStaking(source, 'stake', request, submitterOf(ctx.peer))),
    unstake: (request, ctx) =>
      run(() => submitStaking(source, 'unstake', request, submitterOf(ctx.peer))),
    delegate: (request, ctx) =>
      run(() => submitStaking(source, 'delegate', request, submitterOf(ctx.peer))),
    receipt: (request) =>
      run(() => {
        // The receipt first: a committed transaction may linger in the mempool until its update.
        const found = source.receipt(request.txHash);
        if (found !== null) return receiptView(found);
        if (source.pending(request.txHash)) {
          return { status: 'pending' as const, txHash: request.txHash };
        }
        throw new StoqError(StoqErrorCode.NOT_FOUND, 'no receipt for this transaction', {
          reason: 'no-receipt',
        });
      }),
    history: (request) =>
      run(() => {
        const page = source.history(request.account, request.before, request.limit);
        return { receipts: page.receipts.map(receiptView), next: page.next };
      }),
  });
}

/** INVALID_ARGUMENT for another module's transaction: this service admits Caesar's only. */
function notCaesar(module: string): void {
  if (module === CAESAR_MODULE_NAME) return;
  throw new StoqError(
    StoqErrorCode.INVALID_ARGUMENT,
    `this service takes ${CAESAR_MODULE_NAME} transactions, not ${module} (use the node API)`,
    { reason: 'not-caesar', module },
  );
}

type SubmitRequest = z.output<typeof submitRequest>;

/** The node's admission, answered as `submitTx` answers (`duplicate` when asked for). */
async function admit(
  source: CaesarRpcSource,
  request: SubmitRequest,
  caller: string,
): Promise<z.output<typeof submitResponse>> {
  const result = await source.submit(request.tx, caller);
  if (result.ok) {
    return request.reportDuplicate === true
      ? { ok: true as const, txHash: result.txHash, duplicate: result.duplicate === true }
      : { ok: true as const, txHash: result.txHash };
  }
  return {
    ok: false as const,
    code: result.code,
    message: result.message,
    ...(result.txHash === undefined ? {} : { txHash: result.txHash }),
  };
}

/**
 * `stake`, `unstake`, `delegate`: the transaction is decoded (envelope and Caesar body) and
 * refused with INVALID_ARGUMENT unless `method` admits it (`detail.reason` `wrong-kind`, with
 * the kinds expected and the one given), before anything reaches admission. Admission then
 * checks it in full (signature, sequence, stamp, the ledger's rules), as for `submitTx`.
 */
async function submitStaking(
  source: CaesarRpcSource,
  method: StakingMethod,
  request: SubmitRequest,
  caller: string,
): Promise<z.output<typeof submitResponse>> {
  const { tx } = request;
  let envelope: ReturnType<typeof decodeTransaction>;
  try {
    envelope = decodeTransaction(tx);
  } catch (error) {
    if (!(error instanceof TransactionError)) throw error;
    throw new StoqError(StoqErrorCode.INVALID_ARGUMENT, `not a transaction: ${error.message}`, {
      reason: 'not-a-transaction',
      code: error.code,
    });
  }
  notCaesar(envelope.module);
  let body: CaesarTx;
  try {
    body = decodeCaesarBody(envelope.body);
  } catch (error) {
    if (!(error instanceof CaesarError)) throw error;
    throw new StoqError(
      StoqErrorCode.INVALID_ARGUMENT,
      `not a Caesar transaction body: ${error.message}`,
      { reason: 'malformed-body', code: error.code },
    );
  }
  const expected = STAKING_METHOD_KINDS[method];
  if (!stakingMethodAdmits(method, body, envelope.sender)) {
    const given = kindOf(body);
    const described =
      body.op === DELEGATE_OP && method === 'stake' ? 'delegate to another validator' : given;
    throw new StoqError(
      StoqErrorCode.INVALID_ARGUMENT,
      `${method} admits ${expected.join(' or ')}, not ${described} (${STAKING_ROUTES})`,
      { reason: 'wrong-kind', method, expected: [...expected], given },
    );
  }
  return admit(source, request, caller);
}

const STAKING_ROUTES =
  'create-validator and self-bonds go to stake, unbond to unstake, delegate to delegate, anything else to submitTx';

function receiptView(found: TxReceiptView): TxReceiptView {
  return {
    txHash: found.txHash,
    height: found.height,
    index: found.index,
    code: found.code,
    log: found.log,
    events: found.events.map((event) => ({
      type: event.type,
      attributes: { ...event.attributes },
      accounts: [...event.accounts],
    })),
  };
}

// ---- The client. ----

/** Every proven answer: the height and state root all its values were read at. */
export interface Proven<T> {
  readonly height: number;
  readonly stateRoot: Uint8Array;
  readonly view: T;
}

/**
 * A `receipt` answer: the committed transaction's receipt, or `pending` while the node's mempool
 * holds it (poll again). A transaction the node has neither committed nor pending is a
 * `NOT_FOUND` rejection.
 */
export type CaesarReceiptAnswer =
  | { readonly status: 'committed'; readonly receipt: TxReceiptView }
  | { readonly status: 'pending' };

export interface CaesarRpcClient {
  /** The balance of `address` in base units, its proof checked. */
  balance(address: Uint8Array, height?: number, options?: CallOptions): Promise<Proven<bigint>>;
  /**
   * Balance, delegations (with their worth) and unbonding entries, every value proven; with
   * `publicKey` (whose SHA-256 is the address) also the router's next sequence for that key, or
   * with `hybrid` the next sequence of the hybrid account at the address.
   * The delegations are proven complete: the answer carries the account's proven delegator
   * index and exactly one proven delegation per validator it names.
   */
  account(
    address: Uint8Array,
    request?: { publicKey?: Uint8Array; hybrid?: boolean; height?: number },
    options?: CallOptions,
  ): Promise<Proven<AccountView>>;
  /**
   * A page of the validators in address order (the whole list is proven, so none can be left
   * out), starting strictly after `after`: the previous page's `next` (40 hex digits, or the
   * 20 bytes), absent for the first page. `next` is the last address listed when more follow.
   * Pages read at different heights (no `height`) neither repeat nor skip a validator that
   * exists throughout; pass the first page's height to read them all at one height.
   */
  validators(
    request?: { after?: Uint8Array | string; limit?: number; height?: number },
    options?: CallOptions,
  ): Promise<Proven<{ total: number; validators: ValidatorView[]; next: string | null }>>;
  rewards(
    request?: { validator?: Uint8Array; height?: number },
    options?: CallOptions,
  ): Promise<Proven<ReturnType<typeof rewardsViewOf>>>;
  params(height?: number, options?: CallOptions): Promise<Proven<ReturnType<typeof paramsViewOf>>>;
  /** Proposals newest first, `before` an id (the previous page's `next`). */
  proposals(
    request?: { before?: number; limit?: number; height?: number },
    options?: CallOptions,
  ): Promise<Proven<ReturnType<typeof proposalsViewOf>>>;
  votes(
    proposal: number,
    height?: number,
    options?: CallOptions,
  ): Promise<Proven<ReturnType<typeof votesViewOf>>>;
  /**
   * Admission, as the node API's `submitTx`: `{ok: true, txHash, duplicate}` (`duplicate`: the
   * node already held this very transaction; so do `stake`, `unstake` and `delegate`), or the
   * refusal's code.
   */
  submitTx(tx: Uint8Array, options?: CallOptions): Promise<TxSubmitResult>;
  /**
   * `create-validator`, or a self-bond (a `delegate` to the sender's own validator); another
   * transaction is refused with INVALID_ARGUMENT (`detail.reason` `wrong-kind`), not admitted.
   */
  stake(tx: Uint8Array, options?: CallOptions): Promise<TxSubmitResult>;
  /** An `unbond` (plain or hybrid); another transaction is refused as by `stake`. */
  unstake(tx: Uint8Array, options?: CallOptions): Promise<TxSubmitResult>;
  /** A `delegate` (plain or hybrid); another transaction is refused as by `stake`. */
  delegate(tx: Uint8Array, options?: CallOptions): Promise<TxSubmitResult>;
  /**
   * The receipt of a committed transaction, or `pending` while the node's mempool holds it.
   * Rejects with NOT_FOUND (`detail.reason` `no-receipt`) for a transaction the node has
   * neither committed nor pending (never seen, refused at admission, or dropped from its mempool).
   */
  receipt(txHash: Uint8Array, options?: CallOptions): Promise<CaesarReceiptAnswer>;
  history(
    request: {
      account: Uint8Array;
      before?: { height: number; index: number };
      limit: number;
    },
    options?: CallOptions,
  ): Promise<AccountHistoryPage>;
}

export type CaesarRpcTarget =
  { readonly endpoint: StoqEndpoint; readonly peer: string } | { readonly session: SessionSource };

/** Keys sorted, so two views compare equal whatever order their fields arrived in. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) =>
      a < b ? -1 : a > b ? 1 : 0,
    );
    return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonical(item)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * Refuses an answer read at another height than `requested` (when one was asked for): its
 * proofs would prove the state of another block than the caller means.
 */
function requireHeight<T extends Answer>(requested: number | undefined, answer: T): T {
  if (requested === undefined || answer.height === requested) return answer;
  throw new CaesarStateError(
    CaesarStateErrorCode.HEIGHT_MISMATCH,
    `asked for the state at height ${requested}, the node answered at height ${answer.height}`,
    { requested, answered: answer.height },
  );
}

/** The view computed from the verified proofs, which must be the one the node stated. */
function checked<T>(answer: Answer & { view: unknown }, proven: T): Proven<T> {
  if (canonical(answer.view) !== canonical(proven)) {
    proofInvalid("the node's view differs from what its proofs show");
  }
  return { height: answer.height, stateRoot: answer.stateRoot, view: proven };
}

/** A `validators` cursor given as text: the 40 hex digits of a page's `next`. */
function validatorCursor(text: string): Uint8Array {
  if (!/^[0-9a-fA-F]{40}$/.test(text)) {
    throw new StoqError(
      StoqErrorCode.INVALID_ARGUMENT,
      `after must be a validator address of 40 hex digits (a page's next), got ${JSON.stringify(text.slice(0, 64))}`,
      { reason: 'bad-cursor' },
    );
  }
  return fromHex(text);
}

export function createCaesarRpcClient(target: CaesarRpcTarget): CaesarRpcClient {
  const rpc: RpcClient<CaesarRpcService> =
    'endpoint' in target
      ? target.endpoint.client(caesarService, target.peer)
      : createClient(caesarService, target.session);
  const h = (value: number | undefined) => (value === undefined ? {} : { height: value });
  return {
    balance: async (account, at, options) => {
      const answer = requireHeight(
        at,
        await rpc.call('balance', { address: account, ...h(at) }, options),
      );
      const balance = verifyCaesarBalance(account, asResponse(answer, answer.proofs.balance));
      checked(answer, { address: formatAddress(account), balance: balance.toString() });
      return { height: answer.height, stateRoot: answer.stateRoot, view: balance };
    },
    account: async (account, request = {}, options) => {
      const asked = await rpc.call(
        'account',
        {
          address: account,
          ...(request.publicKey === undefined ? {} : { publicKey: request.publicKey }),
          ...(request.hybrid === true ? { hybrid: true as const } : {}),
          ...h(request.height),
          proveComplete: true,
        },
        options,
      );
      const answer = requireHeight(request.height, asked);
      return checked(
        answer,
        accountViewOf(answer, account, sequenceOwner(request), answer.proofs, true),
      );
    },
    validators: async (request = {}, options) => {
      const after =
        typeof request.after === 'string' ? validatorCursor(request.after) : request.after;
      const limit = request.limit ?? DEFAULT_VALIDATORS_PAGE;
      const answer = requireHeight(
        request.height,
        await rpc.call(
          'validators',
          { ...(after === undefined ? {} : { after }), limit, ...h(request.height) },
          options,
        ),
      );
      const view = validatorsViewOf(answer, { after }, limit, answer.proofs);
      // Without `from`, the proven page names an address (or null), never an index.
      return checked(answer, { ...view, next: typeof view.next === 'string' ? view.next : null });
    },
    rewards: async (request = {}, options) => {
      const answer = requireHeight(
        request.height,
        await rpc.call(
          'rewards',
          {
            ...(request.validator === undefined ? {} : { validator: request.validator }),
            ...h(request.height),
          },
          options,
        ),
      );
      return checked(answer, rewardsViewOf(answer, request.validator, answer.proofs));
    },
    params: async (at, options) => {
      const answer = requireHeight(at, await rpc.call('params', h(at), options));
      return checked(answer, paramsViewOf(answer, answer.proofs));
    },
    proposals: async (request = {}, options) => {
      const limit = request.limit ?? DEFAULT_PROPOSALS_PAGE;
      const answer = requireHeight(
        request.height,
        await rpc.call(
          'proposals',
          {
            limit,
            ...(request.before === undefined ? {} : { before: request.before }),
            ...h(request.height),
          },
          options,
        ),
      );
      return checked(answer, proposalsViewOf(answer, request.before, limit, answer.proofs));
    },
    votes: async (proposal, at, options) => {
      const answer = requireHeight(at, await rpc.call('votes', { proposal, ...h(at) }, options));
      return checked(answer, votesViewOf(answer, proposal, answer.proofs));
    },
    submitTx: (tx, options) => rpc.call('submitTx', { tx, reportDuplicate: true }, options),
    stake: (tx, options) => rpc.call('stake', { tx, reportDuplicate: true }, options),
    unstake: (tx, options) => rpc.call('unstake', { tx, reportDuplicate: true }, options),
    delegate: (tx, options) => rpc.call('delegate', { tx, reportDuplicate: true }, options),
    receipt: async (hash, options) => {
      const answer = await rpc.call('receipt', { txHash: hash }, options);
      return 'status' in answer ? { status: 'pending' } : { status: 'committed', receipt: answer };
    },
    history: (request, options) =>
      rpc.call(
        'history',
        {
          account: request.account,
          limit: request.limit,
          ...(request.before === undefined ? {} : { before: request.before }),
        },
        options,
      ),
  };
}
