import { bytesEqual } from '../../../src/crypto/bytes.js';
import { sha256 } from '../../../src/crypto/hash.js';
import type { Block } from '../../../src/consensus/types.js';
import {
  createValidatorSet,
  type ValidatorSet,
  type ValidatorSetUpdate,
} from '../../../src/consensus/validator-set.js';
import type { ValidatorKeys } from './node.js';
import { STAMP_BYTES, stampTransaction, standInPqKey } from './proofs.js';

/** One planned change: block `height` returns an update setting node `node`'s power. */
export interface PlannedValidatorChange {
  readonly height: number;
  readonly node: number;
  /** 0 removes the node from the set. */
  readonly power: number;
}

/** First byte of a validator-update transaction of the simulated application. */
export const UPDATE_TRANSACTION_MARK = 0xfe;
const UPDATE_TRANSACTION_BYTES = 6;

/**
 * The validator-set changes of one simulated run, as the simulated application carries them:
 * the block at a planned height must contain exactly that height's update transactions
 * (`[0xfe, node, power as u32]`), which its execution returns as validator updates. An honest
 * proposer includes them; a block without them (or with others) is invalid. So every
 * committed chain changes its set exactly as planned, whoever proposed — which lets the
 * scenario keep the faulty validators below a third of every height's power.
 *
 * It also holds the invariant checker's own model of the set of every height, written from the
 * rule (updates of block h decide from h + 2), not from the engine's code.
 */
export class ValidatorPlan {
  private readonly byHeight = new Map<number, PlannedValidatorChange[]>();
  private readonly sets = new Map<number, ValidatorSet>();

  constructor(
    readonly changes: readonly PlannedValidatorChange[],
    private readonly keys: readonly ValidatorKeys[],
    private readonly genesisPowers: readonly number[],
    /** Runs with consensus proofs: update transactions carry a stamp (proofs.ts). */
    private readonly stamped = false,
  ) {
    for (const change of changes) {
      const list = this.byHeight.get(change.height) ?? [];
      list.push(change);
      this.byHeight.set(change.height, list);
    }
  }

  /** The update transactions block `height` must carry. */
  transactionsAt(height: number): Uint8Array[] {
    return (this.byHeight.get(height) ?? []).map(({ node, power }) => {
      const tx = Uint8Array.of(
        UPDATE_TRANSACTION_MARK,
        node,
        (power >>> 24) & 0xff,
        (power >>> 16) & 0xff,
        (power >>> 8) & 0xff,
        power & 0xff,
      );
      return this.stamped ? stampTransaction(tx) : tx;
    });
  }

  /** The update transactions in `block`, in block order. */
  private updateTransactions(block: Block): Uint8Array[] {
    const length = UPDATE_TRANSACTION_BYTES + (this.stamped ? STAMP_BYTES : 0);
    return block.transactions.filter(
      (tx) => tx.length === length && tx[0] === UPDATE_TRANSACTION_MARK,
    );
  }

  /** The block carries exactly its height's planned update transactions. */
  isPlanned(block: Block): boolean {
    const found = this.updateTransactions(block);
    const expected = this.transactionsAt(block.header.height);
    return found.length === expected.length && found.every((tx, i) => bytesEqual(tx, expected[i]!));
  }

  /**
   * The validator updates executing `block` returns. An update that adds a node (not in the
   * set its updates apply to, that of the next height) carries the node's FALCON key and
   * storage root, as staking would; others carry only the key and power.
   */
  updatesOf(block: Block): ValidatorSetUpdate[] {
    const updates: ValidatorSetUpdate[] = [];
    const members = this.membersAt(block.header.height + 1);
    for (const tx of this.updateTransactions(block)) {
      const node = tx[1]!;
      const key = this.keys[node];
      if (key === undefined) continue;
      const power = ((tx[2]! << 24) | (tx[3]! << 16) | (tx[4]! << 8) | tx[5]!) >>> 0;
      const joins = (members[node]?.power ?? 0) === 0;
      updates.push({
        publicKey: key.publicKey,
        power,
        ...(joins
          ? {
              pqPublicKey: key.pq?.publicKey ?? standInPqKey(key.publicKey),
              storageRoot: key.storageRoot ?? sha256(key.publicKey),
            }
          : {}),
      });
    }
    return updates;
  }

  /**
   * Each node's power at `height` by the model (0: not a validator) and whether an update
   * (rather than genesis) put it in the set, so its entry carries the update's FALCON key and
   * storage root.
   */
  membersAt(height: number): { power: number; fromUpdate: boolean }[] {
    const members = this.genesisPowers.map((power) => ({ power, fromUpdate: false }));
    for (const change of [...this.changes].sort((a, b) => a.height - b.height)) {
      if (change.height + 2 > height) continue;
      const member = members[change.node]!;
      if (member.power === 0 && change.power > 0) member.fromUpdate = true;
      member.power = change.power;
    }
    return members;
  }

  powersAt(height: number): number[] {
    return this.membersAt(height).map((member) => member.power);
  }

  /** The validator set of `height` by the model. */
  setAt(height: number): ValidatorSet {
    // The set changes only at planned heights + 2: share one object per stretch.
    let from = 1;
    for (const change of this.changes) {
      if (change.height + 2 <= height) from = Math.max(from, change.height + 2);
    }
    let set = this.sets.get(from);
    if (set === undefined) {
      set = createValidatorSet(
        this.membersAt(from).flatMap(({ power, fromUpdate }, node) => {
          if (power === 0) return [];
          const key = this.keys[node]!;
          const pqPublicKey =
            key.pq?.publicKey ?? (fromUpdate ? standInPqKey(key.publicKey) : undefined);
          // With proofs every validator registers its plot's root, at genesis or when it joins.
          const storageRoot = key.storageRoot ?? (fromUpdate ? sha256(key.publicKey) : undefined);
          return [
            {
              publicKey: key.publicKey,
              power,
              ...(pqPublicKey === undefined ? {} : { pqPublicKey }),
              ...(storageRoot === undefined ? {} : { storageRoot }),
            },
          ];
        }),
      );
      this.sets.set(from, set);
    }
    return set;
  }
}
