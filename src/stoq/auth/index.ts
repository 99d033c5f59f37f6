/** The STOQ authentication exchange: see authenticator.ts and docs/stoq-auth.md. */
export * from './authenticator.js';
export * from './certificate-cache.js';
export * from './delegation.js';
export * from './exchange.js';
export * from './framing.js';
export * from './messages.js';
export * from './peer.js';
export * from './reasons.js';
export * from './transcript.js';
