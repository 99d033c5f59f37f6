/**
 * The consensus driver (layer 4): runs the pure Tendermint engine against the network, the
 * clock, the signer, the WAL, the store and the application.
 */
export * from './block-checks.js';
export * from './chain.js';
export * from './driver.js';
export * from './driver-types.js';
export * from './block-sync.js';
export * from './gossip.js';
export * from './errors.js';
export * from './guarded-signer.js';
export * from './late-precommits.js';
export * from './ports.js';
export * from './signer-state.js';
export * from './signer-state-missing.js';
export * from './test-equivocation.js';
export * from './verifier.js';
export * from './wal-log.js';
