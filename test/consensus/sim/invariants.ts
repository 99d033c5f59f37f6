import { bytesEqual, fromHex, toHex } from '../../../src/crypto/bytes.js';
import type { KeyObject } from 'node:crypto';
import { ed25519PublicKeyFromRaw, ed25519Verify } from '../../../src/crypto/ed25519.js';
import { encodeCanonical } from '../../../src/codec/cbor.js';
import { blockHash, VOTE_DOMAIN } from '../../../src/consensus/messages.js';
import type { HeightContext } from '../../../src/consensus/height-context.js';
import type { Block, QuorumCertificate, Vote } from '../../../src/consensus/types.js';
import type { ValidatorSet } from '../../../src/consensus/validator-set.js';
import type { BlockProofVerdict } from '../../../src/consensus/pos/index.js';
import { GENESIS_STATE_ROOT, nextStateRoot } from './application.js';

export type ViolationKind =
  | 'agreement'
  | 'committed-block-changed'
  | 'double-commit'
  | 'invalid-quorum-certificate'
  | 'honest-equivocation'
  | 'validator-set'
  | 'invalid-proof'
  | 'liveness';

export interface Violation {
  readonly kind: ViolationKind;
  readonly message: string;
  readonly timeMs: number;
}

/**
 * The simulator's safety and liveness invariants (TESTING.md), checked after every step. The
 * quorum-certificate check is written here from the definitions, independently of the engine's
 * own `checkQuorumCertificate`, so a bug there cannot hide itself.
 */
export class InvariantChecker {
  readonly violations: Violation[] = [];
  /** First block hash committed by a correct node at each height. */
  private readonly decided = new Map<number, string>();
  /** Per node, the hashes of its committed blocks by height. */
  private readonly chains = new Map<number, string[]>();
  /** Per node, the block objects it committed, in height order. */
  private readonly committedBlocks = new Map<number, Block[]>();
  /** Per correct validator, what it signed at each height/round/step. */
  private readonly signed = new Map<string, string>();

  /** First block committed by a correct node at each height (the model of the state roots). */
  private readonly decidedBlocks = new Map<number, Block>();
  /** The simulated application's state root before each height, by the model. */
  private readonly stateRoots: Uint8Array[] = [new Uint8Array(0), GENESIS_STATE_ROOT];
  /** Blocks whose consensus proof was verified, by hash. */
  private readonly verifiedProofs = new Set<string>();

  /** Per height, the schedule (set hash and proposer priorities) the first correct node had. */
  private readonly schedules = new Map<number, string>();

  /** Sign bytes by vote object (every node holds the same vote objects; they are not mutated). */
  private readonly signBytesCache = new WeakMap<Vote, Uint8Array>();
  private readonly keys = new WeakMap<ValidatorSet, ReadonlyMap<string, KeyObject>>();
  private readonly setAt: (height: number) => ValidatorSet;

  /**
   * `verify` defaults to Ed25519 from the crypto layer; the simulator passes its memoised one
   * (the same answers), so a signature the nodes already checked over the same bytes is not
   * verified twice. The bytes are built here, so an engine bug in them still shows.
   */
  /**
   * `validators`: the set of every height — one fixed set, or the model of a run whose set
   * changes (validator-plan.ts), written from the rule rather than by the engine's code.
   */
  constructor(
    private readonly chainId: string,
    validators: ValidatorSet | ((height: number) => ValidatorSet),
    private readonly honest: (node: number) => boolean,
    private readonly verify: (
      signature: Uint8Array,
      message: Uint8Array,
      key: KeyObject,
    ) => boolean = ed25519Verify,
  ) {
    this.setAt = typeof validators === 'function' ? validators : () => validators;
  }

  private keysOf(set: ValidatorSet): ReadonlyMap<string, KeyObject> {
    let keys = this.keys.get(set);
    if (keys === undefined) {
      keys = new Map(
        set.validators.map((validator, index) => [
          validator.address,
          set.verificationKeys[index] ?? ed25519PublicKeyFromRaw(validator.publicKey),
        ]),
      );
      this.keys.set(set, keys);
    }
    return keys;
  }

  private violate(kind: ViolationKind, message: string, timeMs: number): void {
    this.violations.push({ kind, message, timeMs });
  }

  /** (a) agreement, (b) a node never commits a height twice, (c) the commit is a valid QC. */
  onCommit(node: number, block: Block, commit: QuorumCertificate, timeMs: number): void {
    if (!this.honest(node)) return;
    const hash = toHex(blockHash(block.header));
    const height = block.header.height;
    const chain = this.chains.get(node) ?? [];
    this.chains.set(node, chain);
    if (chain[height] !== undefined) {
      this.violate('double-commit', `node ${node} committed height ${height} twice`, timeMs);
    }
    if (height !== Math.max(chain.length, 1)) {
      this.violate('double-commit', `node ${node} committed height ${height} out of order`, timeMs);
    }
    chain[height] = hash;
    const blocks = this.committedBlocks.get(node) ?? [];
    this.committedBlocks.set(node, blocks);
    blocks.push(block);
    const expectedSet = this.setAt(height);
    if (!bytesEqual(block.header.validatorsHash, expectedSet.hash)) {
      this.violate(
        'validator-set',
        `node ${node} height ${height}: the header names another validator set than the height's`,
        timeMs,
      );
    }
    const quorumProblem = this.quorumCertificateProblem(block, commit, fromHex(hash));
    if (quorumProblem !== undefined) {
      this.violate(
        'invalid-quorum-certificate',
        `node ${node} height ${height}: ${quorumProblem}`,
        timeMs,
      );
    }
    const first = this.decided.get(height);
    if (first === undefined) {
      this.decided.set(height, hash);
      this.decidedBlocks.set(height, block);
    } else if (first !== hash) {
      this.violate(
        'agreement',
        `node ${node} committed ${hash.slice(0, 12)} at height ${height}, another correct node ${first.slice(0, 12)}`,
        timeMs,
      );
    }
  }

  /**
   * The state root the simulated application has before `height` (application.ts): a hash chain
   * over the decided blocks, computed here from the rule rather than read from a node.
   */
  private stateRootBefore(height: number): Uint8Array {
    for (let h = this.stateRoots.length; h <= height; h++) {
      const previous = this.decidedBlocks.get(h - 1);
      if (previous === undefined) throw new Error(`no block decided at height ${h - 1}`);
      this.stateRoots[h] = nextStateRoot(this.stateRoots[h - 1]!, previous);
    }
    return this.stateRoots[height]!;
  }

  /**
   * (d) with consensus proofs, a correct node never commits a block whose proof fails the full
   * verifier (`verifyCommittedBlock`: the block rules and all four parts — PoSpace, PoStake over
   * the commit, PoWork with re-execution against the model's state root, PoTime). Run once per
   * committed block, with the first correct commit of it; every later commit of the block is
   * checked as a quorum certificate by `onCommit`, which is PoStake's rule.
   */
  checkCommittedProof(
    node: number,
    block: Block,
    verify: (stateRootBefore: Uint8Array) => BlockProofVerdict,
    timeMs: number,
  ): void {
    if (!this.honest(node)) return;
    const hash = toHex(blockHash(block.header));
    if (this.verifiedProofs.has(hash)) return;
    this.verifiedProofs.add(hash);
    const height = block.header.height;
    const verdict = verify(this.stateRootBefore(height));
    if (verdict.ok) return;
    const failures = [
      ...(verdict.block.ok ? [] : [`block rules: ${verdict.block.message}`]),
      ...verdict.parts.flatMap((part) =>
        part.ok ? [] : [`${part.part}: ${part.reason} (${part.message})`],
      ),
    ];
    this.violate(
      'invalid-proof',
      `node ${node} committed block ${hash.slice(0, 12)} at height ${height} whose consensus proof fails: ${failures.join('; ')}`,
      timeMs,
    );
  }

  /**
   * (b) the blocks a node stores never change: after every step the store still holds, at each
   * height, the very block object it committed (cheap); `checkStoresFully` re-hashes them all.
   */
  checkStore(node: number, stored: readonly { readonly block: Block }[], timeMs: number): void {
    if (!this.honest(node)) return;
    const committed = this.committedBlocks.get(node) ?? [];
    if (stored.length < committed.length) {
      this.violate('committed-block-changed', `node ${node} lost committed blocks`, timeMs);
      return;
    }
    const last = committed.length - 1;
    if (last >= 0 && stored[last]?.block !== committed[last]) {
      this.violate('committed-block-changed', `node ${node} replaced block ${last + 1}`, timeMs);
    }
  }

  /** Re-hashes every stored block of every correct node (at the end of a run). */
  checkStoresFully(
    stores: ReadonlyMap<number, readonly { readonly block: Block }[]>,
    timeMs: number,
  ): void {
    for (const [node, stored] of stores) {
      if (!this.honest(node)) continue;
      const chain = this.chains.get(node) ?? [];
      for (const { block } of stored) {
        if (chain[block.header.height] !== toHex(blockHash(block.header))) {
          this.violate(
            'committed-block-changed',
            `node ${node} block ${block.header.height} changed`,
            timeMs,
          );
        }
      }
    }
  }

  /** A correct validator never signs two different votes at one height/round/step. */
  onSigned(node: number, validator: string, vote: Vote, timeMs: number): void {
    if (!this.honest(node)) return;
    const key = `${validator}/${vote.height}/${vote.round}/${vote.type}`;
    const value = vote.blockHash === null ? 'nil' : toHex(vote.blockHash);
    const previous = this.signed.get(key);
    if (previous === undefined) this.signed.set(key, value);
    else if (previous !== value) {
      this.violate(
        'honest-equivocation',
        `correct validator ${validator.slice(0, 8)} signed ${key} twice`,
        timeMs,
      );
    }
  }

  /**
   * A correct node's context of a height (after a commit or a restart): its validator set is
   * the model's, and its proposer priorities are those every other correct node had there.
   */
  onContext(node: number, context: HeightContext, timeMs: number): void {
    if (!this.honest(node)) return;
    const { height, schedule } = context;
    if (!bytesEqual(schedule.validators.hash, this.setAt(height).hash)) {
      this.violate(
        'validator-set',
        `node ${node} decides height ${height} with another validator set than the height's`,
        timeMs,
      );
    }
    const next = context.nextSchedule;
    const fingerprint = [
      toHex(schedule.validators.hash),
      schedule.priorities.join(','),
      next === undefined ? '-' : `${toHex(next.validators.hash)}/${next.priorities.join(',')}`,
    ].join('|');
    const first = this.schedules.get(height);
    if (first === undefined) this.schedules.set(height, fingerprint);
    else if (first !== fingerprint) {
      this.violate(
        'validator-set',
        `node ${node} has other proposer priorities or next validators at height ${height} than another correct node`,
        timeMs,
      );
    }
  }

  onLivenessFailure(message: string, timeMs: number): void {
    this.violate('liveness', message, timeMs);
  }

  /** Why `commit` is not a quorum certificate for `block`, or undefined. */
  quorumCertificateProblem(
    block: Block,
    commit: QuorumCertificate,
    hash: Uint8Array = blockHash(block.header),
  ): string | undefined {
    if (!bytesEqual(hash, commit.blockHash)) return 'commit is for another block';
    if (commit.height !== block.header.height) return 'commit is for another height';
    // The set of the block's height: a removed validator's precommit is a non-validator's.
    const set = this.setAt(commit.height);
    const seen = new Set<string>();
    let power = 0;
    for (const vote of commit.precommits) {
      if (
        vote.type !== 'precommit' ||
        vote.height !== commit.height ||
        vote.round !== commit.round
      ) {
        return 'a vote is not a precommit of the commit round';
      }
      if (vote.blockHash === null || !bytesEqual(vote.blockHash, hash)) {
        return 'a precommit is for another value';
      }
      if (seen.has(vote.validator)) return 'a validator is counted twice';
      seen.add(vote.validator);
      const validator = set.validators.find((v) => v.address === vote.validator);
      const key = this.keysOf(set).get(vote.validator);
      if (validator === undefined || key === undefined)
        return 'a precommit is from a non-validator';
      if (!this.verify(vote.signature, this.signBytes(vote), key)) {
        return 'a precommit signature is invalid';
      }
      power += validator.power;
    }
    if (!(3 * power > 2 * set.totalPower)) {
      return `precommits hold ${power} of ${set.totalPower}, not more than 2/3`;
    }
    return undefined;
  }

  /** Sign bytes built here from their definition, not by the engine's fast encoder. */
  private signBytes(vote: Vote): Uint8Array {
    let bytes = this.signBytesCache.get(vote);
    if (bytes === undefined) {
      bytes = encodeCanonical({
        domain: VOTE_DOMAIN,
        chainId: this.chainId,
        type: vote.type,
        height: vote.height,
        round: vote.round,
        blockHash: vote.blockHash,
        timestamp: vote.timestamp,
        validator: vote.validator,
      });
      this.signBytesCache.set(vote, bytes);
    }
    return bytes;
  }
}
