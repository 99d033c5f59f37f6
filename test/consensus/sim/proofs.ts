import { concatBytes, toHex } from '../../../src/crypto/bytes.js';
import { defaultFalcon, FALCON1024_PUBLIC_KEY_BYTES } from '../../../src/crypto/falcon.js';
import { sha256, taggedHash } from '../../../src/crypto/hash.js';
import type { BlockTemplate } from '../../../src/consensus/block.js';
import type { BlockProofs } from '../../../src/consensus/driver/ports.js';
import type { GenesisDocument } from '../../../src/consensus/genesis.js';
import type { HeightContext } from '../../../src/consensus/height-context.js';
import {
  createBlockProofs,
  verifyCommittedBlock,
  type BlockProofVerdict,
  type StampOf,
} from '../../../src/consensus/pos/index.js';
import { mintStamp } from '../../../src/consensus/proof/hashcash.js';
import { StoragePlot } from '../../../src/consensus/proof/storage-plot.js';
import type { TimeoutConfig } from '../../../src/consensus/timeouts.js';
import type { Block, QuorumCertificate } from '../../../src/consensus/types.js';
import { TEST_PROOF_PARAMS } from '../pos-fixture.js';
import type { ValidatorKeys } from './node.js';

/**
 * The four-part consensus proof in the simulation (docs/consensus-proof.md), with the real code
 * of src/consensus/pos: every validator has a small PoSpace plot registered as its storage root,
 * transactions carry hashcash stamps, honest proposers attach `createBlockProofs(...).build`
 * proofs, honest validators run its `checkProposal` before they prevote (as the node's
 * `checkAndExecute` does), and the invariant checker runs `verifyCommittedBlock` — all four
 * parts, the block rules and re-execution — on every block a correct node commits. The
 * parameters are the pos tests' small ones (pos-fixture.ts), so each check costs well under a
 * millisecond and still bites.
 */
export const SIM_PROOF_PARAMS = TEST_PROOF_PARAMS;

/** A stand-in FALCON-1024 key for runs without FALCON (nothing verifies it then). */
export function standInPqKey(publicKey: Uint8Array): Uint8Array {
  const key = new Uint8Array(FALCON1024_PUBLIC_KEY_BYTES);
  for (let offset = 0, counter = 0; offset < key.length; offset += 32, counter++) {
    const block = sha256(concatBytes(publicKey, Uint8Array.of(counter)));
    key.set(block.subarray(0, Math.min(32, key.length - offset)), offset);
  }
  key[0] = 0x0a;
  return key;
}

/** Bytes of the stamp nonce at the end of a simulated transaction (big-endian u32). */
export const STAMP_BYTES = 4;

function transactionHash(payload: Uint8Array): Uint8Array {
  return taggedHash('hypermesh-sim/tx', payload);
}

/** A simulated transaction with its hashcash stamp: `payload || u32(nonce)`. */
export function stampTransaction(payload: Uint8Array): Uint8Array {
  const nonce = mintStamp(transactionHash(payload), SIM_PROOF_PARAMS.work.stampDifficulty);
  if (nonce > 0xffffffff) throw new Error('stamp nonce does not fit 32 bits');
  const trailer = new Uint8Array(STAMP_BYTES);
  new DataView(trailer.buffer).setUint32(0, nonce);
  return concatBytes(payload, trailer);
}

/**
 * The simulated envelope (work-part.ts `StampOf`): the hash of the payload, derived from the
 * bytes, and the trailing nonce. Anything without a payload is not an envelope.
 */
export const simStampOf: StampOf = (tx) => {
  if (tx.length <= STAMP_BYTES) return undefined;
  const payload = tx.subarray(0, tx.length - STAMP_BYTES);
  const nonce = new DataView(tx.buffer, tx.byteOffset + payload.length, STAMP_BYTES).getUint32(0);
  return { txHash: transactionHash(payload), nonce };
};

/** Plots of the key pool, built once per process (a plot is a function of the key only). */
const plots = new Map<string, StoragePlot>();

export function plotOf(publicKey: Uint8Array): StoragePlot {
  const id = toHex(publicKey);
  let plot = plots.get(id);
  if (plot === undefined) {
    plot = StoragePlot.build(publicKey, SIM_PROOF_PARAMS.space);
    plots.set(id, plot);
  }
  return plot;
}

export interface SimGenesisInput {
  readonly chainId: string;
  readonly genesisTime: number;
  /** Genesis validators (power > 0), each with its plot root as `storageRoot`. */
  readonly validators: readonly { readonly keys: ValidatorKeys; readonly power: number }[];
  readonly timeouts: TimeoutConfig;
  readonly requirePq: boolean;
}

/** The genesis document the proof code reads: chain id, proof parameters, requirePq. */
export function simGenesisDocument(input: SimGenesisInput): GenesisDocument {
  return {
    chainId: input.chainId,
    genesisTime: input.genesisTime,
    validators: input.validators.map(({ keys, power }, index) => ({
      name: `sim-${index}`,
      publicKey: keys.publicKey,
      pqPublicKey: keys.pq?.publicKey ?? standInPqKey(keys.publicKey),
      power,
      storageRoot: plotOf(keys.publicKey).root,
    })),
    consensus: {
      timeouts: input.timeouts,
      commitDelayMs: 0,
      maxBlockBytes: 1 << 20,
      maxBlockTxs: 10_000,
      requirePq: input.requirePq,
    },
    proof: SIM_PROOF_PARAMS,
  };
}

/**
 * The proof code of one run: a builder per validator, and one checker shared by all nodes whose
 * answers are memoised per block object and validator set — `checkProposal` is a pure function
 * of the two, and every node holds the very block objects the network delivered, so the cache
 * changes no answer (like the simulator's memoised signature verifier).
 */
export class SimProofs {
  private readonly checker: BlockProofs;
  private readonly checked = new WeakMap<Block, Map<string, Error | undefined>>();
  private readonly builders = new Map<string, BlockProofs>();

  constructor(
    readonly genesis: GenesisDocument,
    readonly genesisHash: Uint8Array,
  ) {
    this.checker = createBlockProofs({ genesis, genesisHash, stampOf: simStampOf });
  }

  /** The proposer's `consensusProof` bytes for a block on `template` with `transactions`. */
  build(
    keys: ValidatorKeys,
    template: BlockTemplate,
    transactions: readonly Uint8Array[],
  ): Uint8Array {
    let builder = this.builders.get(keys.address);
    if (builder === undefined) {
      builder = createBlockProofs({
        genesis: this.genesis,
        genesisHash: this.genesisHash,
        stampOf: simStampOf,
        self: {
          privateKey: keys.privateKey,
          plot: plotOf(keys.publicKey),
          networkAddress: `stoq://${keys.address.slice(0, 16)}.sim:9292`,
        },
      });
      this.builders.set(keys.address, builder);
    }
    return builder.build(template, transactions);
  }

  /** The validator's check before its prevote (driver/block-checks.ts `checkAndExecute`). */
  checkProposal(context: HeightContext, block: Block): Error | undefined {
    let answers = this.checked.get(block);
    if (answers === undefined) {
      answers = new Map();
      this.checked.set(block, answers);
    }
    const key = toHex(context.schedule.validators.hash);
    if (answers.has(key)) return answers.get(key);
    let error: Error | undefined;
    try {
      error = this.checker.checkProposal(context, block);
    } catch (thrown) {
      // The node treats a throwing check as a failed one (block-checks.ts).
      error = thrown instanceof Error ? thrown : new Error(String(thrown));
    }
    answers.set(key, error);
    return error;
  }

  /** The full verifier (`hypermesh block verify`) on a committed block and its commit. */
  verifyCommitted(
    context: HeightContext,
    block: Block,
    commit: QuorumCertificate,
    stateRootBefore: Uint8Array,
  ): BlockProofVerdict {
    return verifyCommittedBlock({
      genesis: this.genesis,
      genesisHash: this.genesisHash,
      block,
      commit,
      context,
      stampOf: simStampOf,
      // The simulated application's header carries the state before the block (application.ts),
      // so re-executing it "on the parent state" gives the root of the state before it.
      reexecute: () => stateRootBefore,
      falcon: defaultFalcon(),
    });
  }
}
