/**
 * The primitives of the four-part consensus proof ("Proof of State"): the PoSpace storage plot
 * and its challenge answers, hashcash stamps (PoWork), the sequential hash chain (PoTime), their
 * parameters and failure reasons. Pure: imports only crypto/ and codec/, no I/O, no clock, no
 * randomness of its own. How they are put together over the engine's blocks and commits is
 * ../pos. See docs/consensus-proof.md.
 */
export * from './anchor.js';
export * from './errors.js';
export * from './hashcash.js';
export * from './params.js';
export * from './sequential-work.js';
export * from './space.js';
export * from './storage-plot.js';
export * from './verdict.js';
