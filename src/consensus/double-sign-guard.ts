import { bytesEqual } from '../crypto/bytes.js';
import type { VoteType } from './types.js';

/**
 * The signer's last line of defence against equivocation after a crash (CometBFT privval
 * "FilePV" rules): it remembers the last height/round/step it signed and refuses anything
 * earlier, and anything different at the same height/round/step. Re-signing the same value at
 * the same step returns the stored signature. The driver must persist the updated record
 * before it releases a signature.
 */
export type SigningStep = 'propose' | VoteType;

const STEP_ORDER: Readonly<Record<SigningStep, number>> = { propose: 0, prevote: 1, precommit: 2 };

export interface SignedRecord<Signed> {
  readonly height: number;
  readonly round: number;
  readonly step: SigningStep;
  /** The value signed (block hash, or null for nil). */
  readonly blockHash: Uint8Array | null;
  readonly signed: Signed;
}

export type GuardDecision<Signed> =
  | { readonly kind: 'sign' }
  | { readonly kind: 'reuse'; readonly signed: Signed }
  | {
      readonly kind: 'refuse';
      readonly reason: 'height-regression' | 'round-regression' | 'step-regression' | 'conflict';
    };

export function checkSigning<Signed>(
  last: SignedRecord<Signed> | null,
  request: {
    readonly height: number;
    readonly round: number;
    readonly step: SigningStep;
    readonly blockHash: Uint8Array | null;
  },
): GuardDecision<Signed> {
  if (last === null || request.height > last.height) return { kind: 'sign' };
  if (request.height < last.height) return { kind: 'refuse', reason: 'height-regression' };
  if (request.round > last.round) return { kind: 'sign' };
  if (request.round < last.round) return { kind: 'refuse', reason: 'round-regression' };
  const order = STEP_ORDER[request.step] - STEP_ORDER[last.step];
  if (order > 0) return { kind: 'sign' };
  if (order < 0) return { kind: 'refuse', reason: 'step-regression' };
  const same =
    request.blockHash === null || last.blockHash === null
      ? request.blockHash === last.blockHash
      : bytesEqual(request.blockHash, last.blockHash);
  return same ? { kind: 'reuse', signed: last.signed } : { kind: 'refuse', reason: 'conflict' };
}
