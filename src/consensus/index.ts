/**
 * The consensus engine (layer 4): Tendermint as a pure state machine, its message formats and
 * verification, and the pieces a driver needs (signing guard, write-ahead-log record).
 * The four-part consensus proof lives in ./pos (over the primitives of ./proof).
 */
export * from './block.js';
export * from './commit.js';
export * from './double-sign-guard.js';
export * from './errors.js';
export * from './events.js';
export * from './evidence.js';
export * from './height-context.js';
export * from './messages.js';
export * from './proposer.js';
export * from './signer.js';
export * from './state.js';
export { startTendermint, step } from './tendermint.js';
export * from './timeouts.js';
export * from './types.js';
export * from './validator-set.js';
export * from './verify.js';
export * from './vote-set.js';
export * from './wal.js';
