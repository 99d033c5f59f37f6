import { bytesEqual, concatBytes } from '../../../src/crypto/bytes.js';
import { sha256 } from '../../../src/crypto/hash.js';
import type { BlockContent, BlockTemplate } from '../../../src/consensus/block.js';
import { evidenceKey } from '../../../src/consensus/evidence.js';
import { EVIDENCE_MAX_AGE } from '../../../src/consensus/height-context.js';
import type { Block, DuplicateVoteEvidence } from '../../../src/consensus/types.js';
import type { ValidatorSetUpdate } from '../../../src/consensus/validator-set.js';
import type { Prng } from './prng.js';
import { stampTransaction } from './proofs.js';
import type { ValidatorPlan } from './validator-plan.js';

/** A transaction whose first byte is this is invalid to the application. */
export const INVALID_TRANSACTION_MARK = 0xff;

export const GENESIS_STATE_ROOT = sha256(new TextEncoder().encode('hypermesh-sim/genesis-state'));

/** The state root after executing `block` on `stateRoot`: a hash chain over the blocks. */
export function nextStateRoot(stateRoot: Uint8Array, block: Block): Uint8Array {
  return sha256(
    concatBytes(
      stateRoot,
      block.header.transactionsRoot,
      Uint8Array.of(block.header.height & 0xff),
    ),
  );
}

/**
 * A deterministic toy application: its state root is a hash chain over the executed blocks'
 * transactions, so correct nodes that executed the same blocks agree on it. It rejects blocks
 * with a marked transaction, a wrong state root, evidence it has already committed, or (with a
 * plan) other validator-update transactions than planned, and it includes the evidence its
 * node found and the planned update transactions in the blocks that node proposes. With
 * consensus proofs (`stamped`), every transaction it makes carries a hashcash stamp.
 */
export class SimApplication {
  stateRoot: Uint8Array = GENESIS_STATE_ROOT;
  private readonly committedEvidence = new Set<string>();
  private pendingEvidence: DuplicateVoteEvidence[] = [];

  /** `plan`: the run's validator-set changes (validator-plan.ts), if it has any. */
  constructor(
    private readonly plan?: ValidatorPlan,
    private readonly stamped = false,
  ) {}

  /** The validator updates executing `block` returns (none without a plan). */
  updatesOf(block: Block): ValidatorSetUpdate[] {
    return this.plan === undefined ? [] : this.plan.updatesOf(block);
  }

  addEvidence(evidence: DuplicateVoteEvidence): void {
    const key = evidenceKey(evidence);
    if (this.committedEvidence.has(key)) return;
    if (this.pendingEvidence.some((item) => evidenceKey(item) === key)) return;
    this.pendingEvidence.push(evidence);
  }

  /** prepare-proposal: a few random transactions and the pending evidence. */
  buildContent(template: BlockTemplate, prng: Prng, invalid = false): BlockContent {
    const transactions: Uint8Array[] = [];
    const count = prng.int(0, 3);
    for (let i = 0; i < count; i++) {
      const transaction = prng.bytes(12);
      if (transaction[0] === INVALID_TRANSACTION_MARK) transaction[0] = 0;
      transactions.push(transaction);
    }
    if (invalid) transactions.push(Uint8Array.of(INVALID_TRANSACTION_MARK, template.height));
    const carried = this.stamped ? transactions.map(stampTransaction) : transactions;
    if (this.plan !== undefined) carried.push(...this.plan.transactionsAt(template.height));
    return {
      transactions: carried,
      evidence: this.pendingEvidence
        .filter(
          (item) =>
            item.voteA.height < template.height &&
            item.voteA.height >= template.height - EVIDENCE_MAX_AGE,
        )
        .slice(0, 4),
      appStateRoot: this.stateRoot,
      consensusProof: new Uint8Array(0),
    };
  }

  /** process-proposal: the application's half of valid(v). */
  validate(block: Block): boolean {
    if (block.transactions.some((transaction) => transaction[0] === INVALID_TRANSACTION_MARK)) {
      return false;
    }
    if (!bytesEqual(block.header.appStateRoot, this.stateRoot)) return false;
    if (this.plan !== undefined && !this.plan.isPlanned(block)) return false;
    return block.evidence.every((item) => !this.committedEvidence.has(evidenceKey(item)));
  }

  execute(block: Block): void {
    this.stateRoot = nextStateRoot(this.stateRoot, block);
    for (const item of block.evidence) this.committedEvidence.add(evidenceKey(item));
    this.pendingEvidence = this.pendingEvidence.filter(
      (item) => !this.committedEvidence.has(evidenceKey(item)),
    );
  }
}
