import { concatBytes } from '../../../src/crypto/bytes.js';
import { taggedHash } from '../../../src/crypto/hash.js';
import {
  buildBlock,
  expectedBlockTime,
  type BlockContent,
  type BlockTemplate,
} from '../../../src/consensus/block.js';
import type { HeightContext } from '../../../src/consensus/height-context.js';
import {
  decodeBlockProof,
  encodeBlockProof,
  type BlockProof,
} from '../../../src/consensus/pos/index.js';
import { verifyStamp } from '../../../src/consensus/proof/hashcash.js';
import { computeSequentialWork } from '../../../src/consensus/proof/sequential-work.js';
import type { Block, QuorumCertificate } from '../../../src/consensus/types.js';
import type { Prng } from './prng.js';
import { SIM_PROOF_PARAMS, STAMP_BYTES, stampTransaction } from './proofs.js';

/**
 * The forged consensus proofs of the `bad-proof-proposer` (options.ts). Each proposal it makes
 * breaks one part of the proof (docs/consensus-proof.md), the parts taken in turn:
 *
 *   space    a Merkle path or answer block of a challenge answer, the answer's index, the
 *            address signature, or the commitment root is wrong
 *   stake    the block's PoStake inputs: the parent's commit it carries is short of 2/3 of the
 *            power or has a bad signature, or the header names another validator set
 *   work     a stamp's nonce, the number of stamps, a transaction without enough work, or the
 *            state root (re-execution disagrees)
 *   time     a checkpoint of the sequential hash chain, its seed, a whole chain for another
 *            position, a missing checkpoint, or a header time that is not the BFT time
 *   garbage  the proof encoding truncated, random bytes, empty, or with a trailing byte
 *
 * Everything else in the block is honest: transactions with stamps, the right parent, the
 * evidence the node found.
 */
export const PROOF_FORGERIES = ['space', 'stake', 'work', 'time', 'garbage'] as const;
export type ProofForgery = (typeof PROOF_FORGERIES)[number];

export const FORGERY_VARIANTS: Readonly<Record<ProofForgery, readonly string[]>> = {
  space: ['merkle-path', 'answer-block', 'answer-index', 'address-signature', 'commitment-root'],
  stake: ['short-commit', 'bad-commit-signature', 'validator-set'],
  work: ['stamp-nonce', 'stamp-count', 'insufficient-stamp', 'state-root'],
  time: ['checkpoint', 'seed', 'other-position', 'short-chain', 'bft-time'],
  garbage: ['truncated', 'random', 'empty', 'trailing-byte'],
};

export interface ForgeryInput {
  /** The engine's template for the proposal. */
  readonly template: BlockTemplate;
  /** What the honest application would put in the block (stamped transactions). */
  readonly content: BlockContent;
  /** The proposer's context of this height. */
  readonly context: HeightContext;
  /** The proposer's honest proof builder (proofs.ts `SimProofs.build` with its keys). */
  readonly prove: (template: BlockTemplate, transactions: readonly Uint8Array[]) => Uint8Array;
  readonly prng: Prng;
}

export interface ForgedValue {
  readonly block: Block;
  /** `kind/variant`, e.g. `space/merkle-path`. */
  readonly name: string;
  /**
   * Only the proof bytes or the state root are wrong: the engine takes the block as its own value
   * (the application built it), proposes it and prevotes for it. Otherwise a header rule is
   * broken, which the engine refuses in its own value too: the adversary signs the proposal and
   * sends it around the engine.
   */
  readonly viaEngine: boolean;
}

/** A copy of `bytes` with one byte changed. */
function flipped(bytes: Uint8Array, prng: Prng): Uint8Array {
  const copy = bytes.slice();
  if (copy.length === 0) return Uint8Array.of(1);
  copy[prng.int(0, copy.length - 1)]! ^= prng.int(1, 255);
  return copy;
}

function replaceAt<T>(items: readonly T[], index: number, item: T): T[] {
  return items.map((old, i) => (i === index ? item : old));
}

/** A stamped transaction the honest application could have made. */
function extraTransaction(prng: Prng): Uint8Array {
  return stampTransaction(prng.bytes(10).map((byte) => byte & 0x7f));
}

/** A transaction whose trailing nonce is not a valid stamp, and the stamp it claims. */
function unstampedTransaction(prng: Prng): Uint8Array {
  const payload = prng.bytes(10).map((byte) => byte & 0x7f);
  const txHash = taggedHash('hypermesh-sim/tx', payload);
  let nonce = prng.int(0, 1 << 30);
  while (verifyStamp(txHash, nonce, SIM_PROOF_PARAMS.work.stampDifficulty)) nonce++;
  const trailer = new Uint8Array(STAMP_BYTES);
  new DataView(trailer.buffer).setUint32(0, nonce);
  return concatBytes(payload, trailer);
}

/** The parent's commit with precommits dropped until they hold at most 2/3 of the power. */
function shortCommit(context: HeightContext, commit: QuorumCertificate): QuorumCertificate {
  const { parent } = context;
  if (parent.kind !== 'block') return commit;
  const powerOf = (address: string) =>
    parent.validators.validators.find((validator) => validator.address === address)?.power ?? 0;
  const total = parent.validators.totalPower;
  const precommits = [...commit.precommits];
  let power = precommits.reduce((sum, vote) => sum + powerOf(vote.validator), 0);
  while (precommits.length > 0 && 3 * power > 2 * total) {
    power -= powerOf(precommits.pop()!.validator);
  }
  return { ...commit, precommits };
}

/** The block with a wrong proof of `kind` (a variant picked by `input.prng`). */
export function forgeValue(
  kind: ProofForgery,
  input: ForgeryInput,
  variant: string = input.prng.pick(FORGERY_VARIANTS[kind]),
): ForgedValue {
  const { template, context, prove, prng } = input;
  let { content } = input;
  const name = `${kind}/${variant}`;
  /** The block with the honest proof changed by `change` (decoded, changed, re-encoded). */
  const proofBlock = (change: (proof: BlockProof) => BlockProof): ForgedValue => {
    const proof = decodeBlockProof(prove(template, content.transactions));
    return {
      block: buildBlock(template, { ...content, consensusProof: encodeBlockProof(change(proof)) }),
      name,
      viaEngine: true,
    };
  };
  /** The block with these proof bytes. */
  const bytesBlock = (consensusProof: Uint8Array): ForgedValue => ({
    block: buildBlock(template, { ...content, consensusProof }),
    name,
    viaEngine: true,
  });
  /** A block on a template that breaks a header rule, with an honest proof for it. */
  const headerBlock = (forged: BlockTemplate): ForgedValue => ({
    block: buildBlock(forged, {
      ...content,
      consensusProof: prove(forged, content.transactions),
    }),
    name,
    viaEngine: false,
  });
  const space = (change: (proof: BlockProof['space']) => BlockProof['space']) =>
    proofBlock((proof) => ({ ...proof, space: change(proof.space) }));
  const answer = (proof: BlockProof['space']) => prng.int(0, proof.answers.length - 1);

  switch (name) {
    case 'space/merkle-path':
      return space((proof) => {
        const i = answer(proof);
        const target = proof.answers[i]!;
        const j = prng.int(0, target.path.length - 1);
        const path = replaceAt(target.path, j, flipped(target.path[j]!, prng));
        return { ...proof, answers: replaceAt(proof.answers, i, { ...target, path }) };
      });
    case 'space/answer-block':
      return space((proof) => {
        const i = answer(proof);
        const target = proof.answers[i]!;
        const changed = { ...target, block: flipped(target.block, prng) };
        return { ...proof, answers: replaceAt(proof.answers, i, changed) };
      });
    case 'space/answer-index':
      return space((proof) => {
        const i = answer(proof);
        const target = proof.answers[i]!;
        const index = (target.index + 1) % SIM_PROOF_PARAMS.space.blockCount;
        return { ...proof, answers: replaceAt(proof.answers, i, { ...target, index }) };
      });
    case 'space/address-signature':
      return space((proof) => ({
        ...proof,
        addressSignature: flipped(proof.addressSignature, prng),
      }));
    case 'space/commitment-root':
      return space((proof) => ({ ...proof, commitmentRoot: flipped(proof.commitmentRoot, prng) }));

    case 'stake/short-commit':
    case 'stake/bad-commit-signature': {
      const lastCommit = template.lastCommit;
      if (lastCommit === null) {
        // The first block carries no commit: name another validator set instead.
        return headerBlock({ ...template, validatorsHash: prng.bytes(32) });
      }
      let commit: QuorumCertificate;
      if (variant === 'short-commit') {
        commit = shortCommit(context, lastCommit);
      } else {
        const k = prng.int(0, lastCommit.precommits.length - 1);
        const vote = lastCommit.precommits[k]!;
        commit = {
          ...lastCommit,
          precommits: replaceAt(lastCommit.precommits, k, {
            ...vote,
            signature: flipped(vote.signature, prng),
          }),
        };
      }
      // The header time follows the forged commit, so only PoStake's rule is broken.
      return headerBlock({
        ...template,
        lastCommit: commit,
        time: expectedBlockTime(context, commit),
      });
    }
    case 'stake/validator-set':
      return headerBlock({ ...template, validatorsHash: prng.bytes(32) });

    case 'work/stamp-nonce':
      if (content.transactions.length === 0) {
        content = { ...content, transactions: [extraTransaction(prng)] };
      }
      return proofBlock((proof) => {
        const i = prng.int(0, proof.stamps.length - 1);
        const stamp = proof.stamps[i]!;
        return {
          ...proof,
          stamps: replaceAt(proof.stamps, i, { ...stamp, nonce: stamp.nonce + 1 }),
        };
      });
    case 'work/stamp-count':
      return proofBlock((proof) => ({
        ...proof,
        stamps:
          proof.stamps.length > 0
            ? proof.stamps.slice(0, -1)
            : [{ txHash: prng.bytes(32), nonce: 0 }],
      }));
    case 'work/insufficient-stamp': {
      // The proof carries the transaction's own stamp, which lacks the genesis difficulty.
      const weak = unstampedTransaction(prng);
      const honest = content.transactions;
      const proof = decodeBlockProof(prove(template, honest));
      const payload = weak.subarray(0, weak.length - STAMP_BYTES);
      const nonce = new DataView(weak.buffer, weak.byteOffset + payload.length).getUint32(0);
      content = { ...content, transactions: [...honest, weak] };
      return bytesBlock(
        encodeBlockProof({
          ...proof,
          stamps: [...proof.stamps, { txHash: taggedHash('hypermesh-sim/tx', payload), nonce }],
        }),
      );
    }
    case 'work/state-root':
      content = { ...content, appStateRoot: prng.bytes(32) };
      return bytesBlock(prove(template, content.transactions));

    case 'time/checkpoint':
      return proofBlock((proof) => {
        const { checkpoints } = proof.sequentialWork;
        const j = prng.int(0, checkpoints.length - 1);
        return {
          ...proof,
          sequentialWork: {
            ...proof.sequentialWork,
            checkpoints: replaceAt(checkpoints, j, flipped(checkpoints[j]!, prng)),
          },
        };
      });
    case 'time/seed':
      return proofBlock((proof) => ({
        ...proof,
        sequentialWork: { ...proof.sequentialWork, seed: prng.bytes(32) },
      }));
    case 'time/other-position':
      return proofBlock((proof) => ({
        ...proof,
        sequentialWork: computeSequentialWork(prng.bytes(32), SIM_PROOF_PARAMS.time),
      }));
    case 'time/short-chain':
      return proofBlock((proof) => ({
        ...proof,
        sequentialWork: {
          ...proof.sequentialWork,
          checkpoints: proof.sequentialWork.checkpoints.slice(0, -1),
        },
      }));
    case 'time/bft-time':
      return headerBlock({ ...template, time: template.time + 1 + prng.int(0, 5000) });

    case 'garbage/truncated': {
      const honest = prove(template, content.transactions);
      return bytesBlock(honest.slice(0, prng.int(0, honest.length - 1)));
    }
    case 'garbage/random':
      return bytesBlock(prng.bytes(prng.int(1, 64)));
    case 'garbage/empty':
      return bytesBlock(new Uint8Array(0));
    case 'garbage/trailing-byte':
      return bytesBlock(concatBytes(prove(template, content.transactions), Uint8Array.of(0)));
    default:
      throw new Error(`no forgery ${name}`);
  }
}
