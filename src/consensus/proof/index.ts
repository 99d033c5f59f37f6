/**
 * The four-part consensus proof ("Proof of State"): pure construction and verification.
 * Imports only from crypto/ and codec/; no I/O, no clock, no randomness of its own.
 * See docs/consensus-proof.md.
 */
export * from './anchor.js';
export * from './bft-time.js';
export * from './consensus-proof.js';
export * from './encoding.js';
export * from './errors.js';
export * from './hashcash.js';
export * from './header.js';
export * from './params.js';
export * from './precommit.js';
export * from './quorum-certificate.js';
export * from './sequential-work.js';
export * from './space.js';
export * from './storage-plot.js';
export * from './time.js';
export * from './validators.js';
export * from './verdict.js';
export * from './work.js';
