import type { NodeStore } from '../../storage/index.js';
import { evidenceKey } from '../evidence.js';
import { EVIDENCE_MAX_AGE } from '../height-context.js';
import type { DuplicateVoteEvidence } from '../types.js';
import { includedEvidence } from './block-checks.js';

/**
 * Equivocation evidence this node found (the engine's `evidence-found`), waiting to be put in a
 * block this node proposes. One entry per offence (validator, height, round, vote type); an
 * offence leaves the pool once a stored block includes it.
 */
export class EvidencePool {
  private readonly pending = new Map<string, DuplicateVoteEvidence>();

  constructor(
    private readonly store: NodeStore,
    private readonly maxPerBlock: number,
  ) {}

  /** False when the offence was already pending. */
  add(evidence: DuplicateVoteEvidence): boolean {
    const key = evidenceKey(evidence);
    if (this.pending.has(key)) return false;
    this.pending.set(key, evidence);
    return true;
  }

  /**
   * Evidence for a block at `height`: offences of earlier heights, at most `EVIDENCE_MAX_AGE`
   * back, that no stored block holds. Older offences can no longer be included and are dropped.
   */
  forBlock(height: number): DuplicateVoteEvidence[] {
    const chosen: DuplicateVoteEvidence[] = [];
    for (const [key, evidence] of this.pending) {
      if (chosen.length >= this.maxPerBlock) break;
      if (evidence.voteA.height >= height) continue;
      if (evidence.voteA.height < height - EVIDENCE_MAX_AGE) {
        this.pending.delete(key);
        continue;
      }
      if (includedEvidence(this.store, [evidence]) !== undefined) {
        this.pending.delete(key);
        continue;
      }
      chosen.push(evidence);
    }
    return chosen;
  }

  /** Drops the offences a stored block included. */
  committed(evidence: readonly DuplicateVoteEvidence[]): void {
    for (const item of evidence) this.pending.delete(evidenceKey(item));
  }

  get size(): number {
    return this.pending.size;
  }
}
