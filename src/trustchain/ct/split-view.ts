import { bytesEqual, toBase64 } from '../../crypto/bytes.js';
import {
  verifyCheckpoint,
  type CheckpointVerifierSet,
  type VerifiedCheckpoint,
} from './checkpoint.js';
import { CtError, CtErrorCode } from './errors.js';

/**
 * Split-view evidence (RFC 9162 §8.3 "Misbehaving logs"): two checkpoints of one log, both
 * validly signed by a quorum, for the same tree size but with different roots. A log can show
 * each only by having signed both, so the pair proves misbehaviour to anyone holding the
 * verifier set; the cosigners that signed both are the ones that equivocated.
 */
export interface SplitViewEvidence {
  readonly origin: string;
  readonly size: number;
  /** The two signed notes, exactly as received. */
  readonly notes: readonly [string, string];
}

export interface VerifiedSplitView {
  readonly evidence: SplitViewEvidence;
  readonly roots: readonly [string, string];
  /** Ed25519 cosigners whose signatures are on both notes. */
  readonly equivocators: readonly string[];
}

function notSplit(message: string): CtError {
  return new CtError(CtErrorCode.NOT_A_SPLIT_VIEW, message);
}

function compare(
  a: VerifiedCheckpoint,
  b: VerifiedCheckpoint,
  evidence: SplitViewEvidence,
): VerifiedSplitView {
  if (a.checkpoint.size !== b.checkpoint.size) {
    throw notSplit(`checkpoints are for sizes ${a.checkpoint.size} and ${b.checkpoint.size}`);
  }
  if (bytesEqual(a.checkpoint.root, b.checkpoint.root)) {
    throw notSplit('both checkpoints have the same root');
  }
  const second = new Set(b.cosigners);
  return {
    evidence,
    roots: [toBase64(a.checkpoint.root), toBase64(b.checkpoint.root)],
    equivocators: a.cosigners.filter((name) => second.has(name)),
  };
}

/**
 * Builds evidence from two signed notes. Each must pass `verifyCheckpoint` against `set`
 * (quorum, FALCON if required); throws `NOT_A_SPLIT_VIEW` when they agree or differ in size,
 * and the verification error when either is not validly signed.
 */
export function detectSplitView(
  noteA: string,
  noteB: string,
  set: CheckpointVerifierSet,
): SplitViewEvidence {
  const a = verifyCheckpoint(noteA, set);
  const b = verifyCheckpoint(noteB, set);
  const evidence: SplitViewEvidence = {
    origin: a.checkpoint.origin,
    size: a.checkpoint.size,
    notes: [noteA, noteB],
  };
  compare(a, b, evidence);
  return evidence;
}

/**
 * Checks evidence received from someone else: both notes verify against `set`, and they name
 * the evidence's origin and size with different roots. Throws `CtError` otherwise.
 */
export function verifySplitViewEvidence(
  evidence: SplitViewEvidence,
  set: CheckpointVerifierSet,
): VerifiedSplitView {
  if (
    typeof evidence !== 'object' ||
    evidence === null ||
    !Array.isArray(evidence.notes) ||
    evidence.notes.length !== 2
  ) {
    throw notSplit('evidence must hold exactly two notes');
  }
  const [noteA, noteB] = evidence.notes;
  const a = verifyCheckpoint(noteA, set);
  const b = verifyCheckpoint(noteB, set);
  if (a.checkpoint.origin !== evidence.origin || a.checkpoint.size !== evidence.size) {
    throw notSplit('evidence origin or size differs from its notes');
  }
  return compare(a, b, evidence);
}
