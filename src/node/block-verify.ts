import { setTimeout as delay, setImmediate as nextTurn } from 'node:timers/promises';
import { toHex } from '../crypto/bytes.js';
import { defaultFalcon } from '../crypto/falcon.js';
import { stampOf } from '../consensus/application/index.js';
import { genesisHash, genesisHeightContext, type GenesisDocument } from '../consensus/genesis.js';
import {
  nextHeightSchedules,
  type HeightContext,
  type HeightSchedules,
} from '../consensus/height-context.js';
import { blockHash } from '../consensus/messages.js';
import type { NodeRpcClient } from '../consensus/net/index.js';
import { verifyCommittedBlock, type BlockProofVerdict } from '../consensus/pos/index.js';
import { WorkFailure } from '../consensus/proof/index.js';
import type { ValidatorSet } from '../consensus/validator-set.js';
import type { Block, QuorumCertificate } from '../consensus/types.js';
import { decodeBlock, decodeQuorumCertificate } from '../consensus/wire.js';
import { EMPTY_STATE_ROOT, StateWitnessError } from '../storage/index.js';
import { StoqError } from '../stoq/index.js';
import { executeWithWitness } from './block-witness.js';
import { CliError } from './cli-error.js';
import { followSetTrail, highestPossibleHeight } from './validator-set-trail.js';
import { genesisApplication } from './validator-node.js';

/**
 * `hypermesh block verify`: fetches a committed block, its commit and its parent from a node
 * and runs `verifyCommittedBlock` (consensus/pos verify-block.ts) on them: the engine's block
 * rules and the four parts, the hash chain recomputed in full — the rules a node applies to a
 * proposal before voting and to a synced block, gathered in one report. The operator has no
 * application state: PoWork's state root is checked by re-executing the block on the node's
 * state witness (block-witness.ts), checked against the parent's state root; without a witness
 * that part is reported as `stamps-only`, not as fully verified — and the report is
 * `incomplete`, not valid, unless the caller asked for no re-execution: the node being checked
 * must not be able to turn the check off by refusing the witness. Likewise a validator set the
 * verifier cannot trust (`replayValidatorSchedules`) leaves the block unchecked — `incomplete`,
 * not `invalid`: the block's rules and parts mean nothing against another height's set.
 */
export interface BlockVerifyReport {
  readonly height: number;
  readonly chainId: string;
  readonly blockHash: string;
  readonly proposer: string;
  readonly transactions: number;
  /** Whether the validator set of the height could be trusted (see `contextFor`). */
  readonly validatorSet: ValidatorSetTrust;
  /** Whether PoWork's state root was re-executed here. */
  readonly reexecution: ReexecutionOutcome;
  /** The commit's signatures: what PoStake verified when it holds. */
  readonly commitSignatures: CommitSignatures;
  /**
   * The block rules and the four parts; null when the validator set of the height is not
   * trusted (`validatorSet.ok` false): they are checked against that set, and a verdict against
   * another one (the genesis set) would call a sound block forged.
   */
  readonly verdict: BlockProofVerdict | null;
  readonly status: BlockVerifyStatus;
  /** `status` is `valid`. */
  readonly ok: boolean;
}

/**
 * `valid`: the set is trusted and the verdict holds, with everything asked for checked.
 * `invalid`: the block and commit the node sent are proven bad — a check of the verdict fails
 * (other than a re-execution on a witness that did not check out), or the block starts a new
 * validator set and its commit does not hold for the set its own header names. `incomplete`:
 * nothing checked fails, but the validator set of the height cannot be trusted (nothing of the
 * block is then checked), or the re-execution asked for did not run or ran on a witness that
 * did not check out (the state root is unchecked).
 */
export type BlockVerifyStatus = 'valid' | 'invalid' | 'incomplete';

/** `hypermesh block verify`'s exit code for each status (docs/node.md). */
export const BLOCK_VERIFY_EXIT_CODES: Readonly<Record<BlockVerifyStatus, number>> = {
  valid: 0,
  invalid: 1,
  incomplete: 3,
};

/** A committed block and its commit, decoded, as a node sent them. */
export interface FetchedBlock {
  readonly block: Block;
  readonly commit: QuorumCertificate;
}

/** Block `height` and its commit from the node (CliError when they do not decode or fit). */
export async function fetchCommittedBlock(
  client: Pick<NodeRpcClient, 'getBlock'>,
  height: number,
): Promise<FetchedBlock> {
  const fetched = await client.getBlock(height, { deadlineMs: 15_000 });
  let block: Block;
  let commit: QuorumCertificate;
  try {
    block = decodeBlock(fetched.block);
    commit = decodeQuorumCertificate(fetched.commit);
  } catch (error) {
    throw new CliError(
      `the node sent block ${height} in a form that does not decode: ${(error as Error).message}`,
      1,
    );
  }
  if (block.header.height !== height) {
    throw new CliError(`asked for block ${height}, the node sent block ${block.header.height}`, 1);
  }
  return { block, commit };
}

/**
 * The commit's precommits and how many carry a FALCON-1024 signature. PoStake verifies every
 * FALCON signature present, and requires one on each precommit only with the genesis
 * `consensus.requirePq`; so when PoStake holds, `falcon` signatures were verified.
 */
export interface CommitSignatures {
  readonly precommits: number;
  readonly falcon: number;
  readonly requirePq: boolean;
}

function commitSignaturesOf(commit: QuorumCertificate, requirePq: boolean): CommitSignatures {
  return {
    precommits: commit.precommits.length,
    falcon: commit.precommits.filter((vote) => vote.pqSignature instanceof Uint8Array).length,
    requirePq,
  };
}

/** How the verifier came to trust the validator set of the block's height. */
export type ValidatorSetTrust =
  | { readonly ok: true; readonly changes: readonly number[] }
  | {
      readonly ok: false;
      readonly height: number;
      readonly reason: string;
      readonly message: string;
    };

/** A validator set the verifier could not trust, and why. */
type UntrustedSet = Extract<ValidatorSetTrust, { readonly ok: false }>;

type DerivedContext =
  | {
      readonly context: HeightContext;
      readonly trust: Extract<ValidatorSetTrust, { readonly ok: true }>;
    }
  | { readonly context: null; readonly trust: UntrustedSet };

/** The schedules every node derives for a height, and the set that decided the height before. */
export interface ReplayedSchedules {
  readonly schedules: HeightSchedules;
  /** The validator set of `height − 1` (the genesis set for height 1). */
  readonly previousSet: ValidatorSet;
  readonly trust: ValidatorSetTrust;
}

/** Schedule steps between two turns of the event loop while the proposer order is replayed. */
const SCHEDULE_STEPS_PER_TURN = 10_000;

/**
 * The height schedules (validator set and proposer order) of `height` as every node derives
 * them (driver/chain.ts, height-context.ts): from the genesis set, the schedule advanced once per
 * earlier height, with the validator updates each block returned taking effect two heights
 * later. The updates come from the node (the verifier has no application state), so first the
 * set of every height is derived from them alone and each set they produce is accepted only
 * after the light-client check of `checkSetHandover` on the first block it decides
 * (`followSetTrail`, validator-set-trail.ts); `blockAt` supplies those blocks (fetched from the
 * node, hashed here, not taken on its word). Only then is the proposer order replayed: its
 * priorities change with every height (`nextHeightProposerSchedule`), so that part costs one
 * schedule step per height, with the event loop free every `SCHEDULE_STEPS_PER_TURN` steps.
 * Cost: `validatorUpdates` of heights 1 .. height − 2 (one call per `MAX_VALIDATOR_UPDATE_SPAN`
 * heights), one block and commit check per change of the set, and the schedule steps. When
 * `trust.ok` is false, `schedules` is the genesis context.
 */
export async function replayValidatorSchedules(
  client: Pick<NodeRpcClient, 'validatorUpdates'>,
  genesis: GenesisDocument,
  height: number,
  blockAt: (height: number) => Promise<FetchedBlock>,
): Promise<ReplayedSchedules> {
  const base = genesisHeightContext(genesis);
  const genesisSet = base.schedule.validators;
  const trail = await followSetTrail({
    client,
    genesis,
    from: { height: 1, validators: genesisSet },
    height,
    blockAt,
  });
  if (!trail.ok) {
    const { ok, ...refusal } = trail;
    return { schedules: base, previousSet: genesisSet, trust: { ok, ...refusal } };
  }
  const updatesAt = new Map(trail.updates.map((entry) => [entry.height, entry.updates]));
  let schedules: HeightSchedules = base;
  let previousSet = genesisSet;
  for (let h = 1; h < height; h++) {
    // The updates applied to the same sets in `followSetTrail`, so they apply here too.
    const next = nextHeightSchedules(schedules, updatesAt.get(h) ?? []);
    previousSet = schedules.schedule.validators;
    schedules = next;
    if (h % SCHEDULE_STEPS_PER_TURN === 0) await nextTurn();
  }
  return { schedules, previousSet, trust: { ok: true, changes: trail.changes } };
}

/**
 * The height context of the target block's height (see `replayValidatorSchedules`), with the
 * parent block as the last committed one; none when the set of the height is not trusted.
 */
async function contextFor(
  client: NodeRpcClient,
  genesis: GenesisDocument,
  target: FetchedBlock,
  parent: FetchedBlock | null,
): Promise<DerivedContext> {
  const base = genesisHeightContext(genesis);
  const height = target.block.header.height;
  if (height === 1 || parent === null) return { context: base, trust: { ok: true, changes: [] } };
  const blockAt = (h: number): Promise<FetchedBlock> =>
    h === height
      ? Promise.resolve(target)
      : h === height - 1
        ? Promise.resolve(parent)
        : fetchCommittedBlock(client, h);
  const { schedules, previousSet, trust } = await replayValidatorSchedules(
    client,
    genesis,
    height,
    blockAt,
  );
  if (!trust.ok) return { context: null, trust };
  return {
    context: {
      ...schedules,
      parent: {
        kind: 'block',
        height: height - 1,
        hash: blockHash(parent.block.header),
        time: parent.block.header.time,
        commit: parent.commit,
        validators: previousSet,
      },
    },
    trust,
  };
}

/**
 * Whether the block was re-executed here: with the node's state witness (block-witness.ts),
 * checked against the parent header's state root; or why not (PoWork is then `stamps-only`).
 */
export type ReexecutionOutcome =
  | {
      readonly ran: true;
      readonly witnessBytes: number;
      /**
       * The node's witness did not check out (malformed, not of the parent's state root, or
       * missing what the execution reads): the node's fault, not the block's, so the report is
       * `incomplete` rather than `invalid` when nothing else failed.
       */
      readonly witnessFault?: string;
    }
  | { readonly ran: false; readonly reason: string };

/**
 * The node's state witness for `height`, or why there is none: the caller asked for no
 * re-execution, or the node refused (a witness too large for one response, a node without the
 * method).
 */
async function witnessFor(
  client: NodeRpcClient,
  height: number,
  wanted: boolean,
): Promise<{ bytes: Uint8Array } | { reason: string }> {
  if (!wanted) return { reason: 'not asked for (--no-reexecute)' };
  for (let attempt = 1; ; attempt++) {
    try {
      return { bytes: await client.blockWitness(height, { deadlineMs: 60_000 }) };
    } catch (error) {
      if (!(error instanceof StoqError)) throw error;
      // The node builds a few witnesses a second (block-witness.ts): ask again a second later.
      if (error.detail.reason === 'witness-busy' && attempt < WITNESS_BUSY_ATTEMPTS) {
        await delay(1_000);
        continue;
      }
      return { reason: `the node gave no state witness: ${error.code}: ${error.message}` };
    }
  }
}

/** How often `block verify` asks a node that is busy building other witnesses. */
const WITNESS_BUSY_ATTEMPTS = 10;

export interface VerifyBlockOptions {
  /** Re-execute the block from the node's state witness (default true). */
  readonly reexecute?: boolean;
}

export async function verifyBlockFromNode(
  client: NodeRpcClient,
  genesis: GenesisDocument,
  height: number,
  options: VerifyBlockOptions = {},
): Promise<BlockVerifyReport> {
  const reexecute = options.reexecute ?? true;
  // A node could serve any block at any height, and the proposer order is replayed over every
  // height below it: a height the chain cannot have reached is refused before anything is asked.
  const possible = highestPossibleHeight(genesis, Date.now());
  if (height > possible) {
    throw new CliError(
      `block ${height} cannot exist yet: blocks are at least 1 ms apart, so the chain can be at most at height ${possible} (its genesis time and a day of clock error)`,
      2,
    );
  }
  const target = await fetchCommittedBlock(client, height);
  const parent = height > 1 ? await fetchCommittedBlock(client, height - 1) : null;
  const derived = await contextFor(client, genesis, target, parent);
  const summary = {
    height,
    chainId: target.block.header.chainId,
    blockHash: toHex(blockHash(target.block.header)),
    proposer: target.block.header.proposer,
    transactions: target.block.transactions.length,
    validatorSet: derived.trust,
    commitSignatures: commitSignaturesOf(target.commit, genesis.consensus.requirePq),
  };
  if (derived.context === null) {
    const status = untrustedSetStatus(derived.trust, height);
    return {
      ...summary,
      reexecution: { ran: false, reason: 'the validator set of the height is not trusted' },
      verdict: null,
      status,
      ok: false,
    };
  }
  const { context } = derived;
  const witness = await witnessFor(client, height, reexecute);
  // The parent header is bound to this block's (parentHash, checked with the block rules), so
  // its state root is the committed state the witness must be of.
  const parentRoot = parent === null ? EMPTY_STATE_ROOT : parent.block.header.appStateRoot;
  let witnessFault: StateWitnessError | null = null;
  const verdict = verifyCommittedBlock({
    genesis,
    genesisHash: genesisHash(genesis),
    block: target.block,
    commit: target.commit,
    context,
    stampOf,
    falcon: defaultFalcon(),
    ...('bytes' in witness
      ? {
          reexecute: () => {
            try {
              return executeWithWitness(
                genesis,
                () => genesisApplication(genesis),
                target.block,
                context,
                witness.bytes,
                parentRoot,
              ).stateRoot;
            } catch (error) {
              if (error instanceof StateWitnessError) witnessFault = error;
              throw error;
            }
          },
        }
      : {}),
  });
  // A witness that does not check out leaves the state root unchecked, as a refused one does;
  // only the re-execution may have failed for it (anything else failing is the block's).
  const fault = witnessFault as StateWitnessError | null;
  const onlyWitnessFailed =
    fault !== null &&
    verdict.block.ok &&
    verdict.parts.every(
      (part) => part.ok || (part.part === 'work' && part.reason === WorkFailure.REEXECUTION_FAILED),
    );
  const status: BlockVerifyStatus =
    !verdict.ok && !onlyWitnessFailed
      ? 'invalid'
      : reexecute && (!('bytes' in witness) || onlyWitnessFailed)
        ? 'incomplete'
        : 'valid';
  return {
    ...summary,
    reexecution:
      'bytes' in witness
        ? {
            ran: true,
            witnessBytes: witness.bytes.length,
            ...(fault === null ? {} : { witnessFault: fault.message }),
          }
        : { ran: false, reason: witness.reason },
    verdict,
    status,
    ok: status === 'valid',
  };
}

/**
 * The status when the set of `height` is not trusted: `incomplete` — the refusal says nothing
 * about this block (a rotation the previous set vouched for with ≤ 1/3 of its power, updates
 * from the node that do not apply or that no block names) — except when this block starts the
 * derived set and its header names that set but its commit does not hold for it. Whatever the
 * true set is, the block is then bad: if it is the named one the commit fails, if not the header
 * names the wrong set.
 */
function untrustedSetStatus(trust: UntrustedSet, height: number): BlockVerifyStatus {
  return trust.reason === 'commit-invalid' && trust.height === height ? 'invalid' : 'incomplete';
}

/** What to do about a set that is not trusted, by the refusal's reason. */
function untrustedSetAdvice(trust: UntrustedSet): string {
  return trust.reason === 'trusted-power-too-low'
    ? 'A change the previous set vouched for with no more than 1/3 of its power can only be checked with application state (a node of your own that synced the chain)'
    : 'Ask another node (--node)';
}

const PART_NAMES = {
  space: 'PoSpace: challenge answers and Merkle paths to the registered storage root',
  work: 'PoWork: transactions root and every hashcash stamp',
  time: 'PoTime: BFT median time and the sequential hash chain from the parent',
} as const;

/** PoStake's line: which signatures were checked, from the genesis rule and the commit. */
function stakeLine(signatures: CommitSignatures): string {
  const { precommits, falcon, requirePq } = signatures;
  const head = 'PoStake: precommits of > 2/3 of the voting power';
  if (requirePq) return `${head}, Ed25519 + FALCON-1024`;
  const optional = 'FALCON-1024 not required by the genesis (requirePq false)';
  return falcon === 0
    ? `${head}, Ed25519 only (${optional})`
    : `${head}, Ed25519, and FALCON-1024 on ${falcon} of ${precommits} (${optional})`;
}

/** One line of the report: the check, its outcome, its coverage or failure reason, and text. */
function row(check: string, outcome: string, coverage: string, text: string): string {
  return `  ${check.padEnd(6)} ${outcome.padEnd(7)} ${coverage.padEnd(11)} ${text}`;
}

/**
 * The report's lines when the set of the height is not trusted: the refusal and the verdict,
 * and no rule or part lines (they would be checked against another set).
 */
function untrustedSetLines(report: BlockVerifyReport, trust: UntrustedSet): string[] {
  if (report.status === 'invalid') {
    return [
      row('set', 'INVALID', trust.reason, trust.message),
      `INVALID: block ${report.height} starts a new validator set and its commit does not hold for the set its header names`,
    ];
  }
  return [
    row('set', 'UNTRUSTED', trust.reason, trust.message),
    `INCOMPLETE: the validator set of height ${report.height} cannot be trusted ` +
      `(${trust.reason} at height ${trust.height}, see "set"), so the block's rules and proof ` +
      `parts were not checked: they need that set. ${untrustedSetAdvice(trust)}`,
  ];
}

/** The human-readable report: one line per check and a final verdict. */
export function formatBlockVerify(report: BlockVerifyReport, node: string): string[] {
  const { verdict } = report;
  const heading = [
    `block ${report.height} of chain ${report.chainId} from ${node}`,
    `  hash ${report.blockHash}, proposer ${report.proposer}, ${report.transactions} transaction(s)`,
  ];
  const trust = report.validatorSet;
  if (!trust.ok) return [...heading, ...untrustedSetLines(report, trust)];
  if (verdict === null) throw new Error('block verify: a report with a trusted set has a verdict');
  const lines = [
    ...heading,
    verdict.block.ok
      ? row(
          'rules',
          'ok',
          '',
          'chain, height, parent, validator set, proposer, time, last commit, roots, evidence',
        )
      : row('rules', 'INVALID', '', verdict.block.message),
  ];
  lines.push(
    row(
      'set',
      'ok',
      '',
      trust.changes.length === 0
        ? 'validator set of the height: the genesis set'
        : `validator set of the height: genesis + ${trust.changes.length} change(s), at height(s) ${trust.changes.join(', ')}, each vouched for by > 1/3 of the previous set`,
    ),
  );
  for (const part of verdict.parts) {
    if (part.ok) {
      const note =
        part.coverage === 'stamps-only'
          ? ` — not re-executed (${report.reexecution.ran ? 'the other checks failed' : report.reexecution.reason}), so the state root is unchecked`
          : part.part === 'work' && report.reexecution.ran
            ? `, and the state root: re-executed here on the node's state witness (${report.reexecution.witnessBytes} bytes, checked against the parent's state root)`
            : part.coverage === 'sampled'
              ? ' — sampled segments of the hash chain'
              : '';
      const name =
        part.part === 'stake' ? stakeLine(report.commitSignatures) : PART_NAMES[part.part];
      lines.push(row(part.part, 'ok', part.coverage, `${name}${note}`));
    } else {
      lines.push(row(part.part, 'INVALID', part.reason, part.message));
    }
  }
  if (report.status === 'incomplete') {
    const why = report.reexecution.ran
      ? `the node's state witness did not check out: ${report.reexecution.witnessFault ?? ''}`
      : report.reexecution.reason;
    lines.push(
      `INCOMPLETE: the state root was not re-executed: ${why}. ` +
        'Retry later or ask another node (--node); --no-reexecute accepts the block without it',
    );
  } else {
    lines.push(report.ok ? 'valid' : 'INVALID');
  }
  return lines;
}

export function blockVerifyJson(report: BlockVerifyReport, node: string): unknown {
  return JSON.parse(
    JSON.stringify({ node, ...report }, (_key, value: unknown) =>
      value instanceof Uint8Array
        ? toHex(value)
        : typeof value === 'bigint'
          ? value.toString()
          : value,
    ),
  );
}
