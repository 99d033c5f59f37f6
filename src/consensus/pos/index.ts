/**
 * The four-part consensus proof over the engine's blocks and commits (docs/consensus-proof.md):
 * the proposer's parts in `header.consensusProof` (PoSpace answers and signed address, PoWork
 * stamps, PoTime hash chain), the commit as PoStake, BFT time and re-execution. Built on the
 * primitives of ../proof.
 */
export * from './anchor.js';
export * from './block-proofs.js';
export * from './encoding.js';
export * from './plot-file.js';
export * from './verify-block.js';
export type { Reexecute, StampOf } from './work-part.js';
