/**
 * The TrustChain certificate-transparency log (layer 5): an RFC 6962/9162 Merkle log in the
 * node's SQLite file, C2SP checkpoints signed by several keys, tlog-tiles, and split-view
 * evidence. See docs/ct.md.
 */
export { CtError, CtErrorCode } from './errors.js';
export {
  ISSUER_KEY_HASH_BYTES,
  MAX_EXTRA_DATA_BYTES,
  MAX_LEAF_BYTES,
  decodeMerkleTreeLeaf,
  encodeCertificateChain,
  encodeMerkleTreeLeaf,
  encodePrecertChainEntry,
} from './leaf.js';
export type { SignedEntry, TimestampedEntry } from './leaf.js';
export {
  EMPTY_COMPACT_RANGE,
  appendToCompactRange,
  checkCompactRange,
  compactRangeRoot,
} from './compact-range.js';
export type { CompactRange } from './compact-range.js';
export { CtLog, MAX_BATCH_ENTRIES, MAX_ENTRIES_PER_READ, openCtLog } from './log-store.js';
export type {
  AppendResult,
  CtEntryInput,
  CtLogEntry,
  CtLogOptions,
  SignedCheckpoint,
} from './log-store.js';
export {
  FALCON_NOTE_IDENTIFIER,
  addCosignatures,
  ed25519KeyId,
  falconKeyId,
  formatCheckpointBody,
  hasQuorum,
  openRfc6962Signature,
  parseCheckpointBody,
  rfc6962KeyId,
  rfc6962LogId,
  signCheckpointEd25519,
  signCheckpointFalcon,
  signTreeHeadRfc6962,
  treeHeadSignatureInput,
  verifyCheckpoint,
  verifySignatures,
} from './checkpoint.js';
export type {
  Checkpoint,
  CheckpointVerifierSet,
  Ed25519Cosigner,
  FalconCosigner,
  Rfc6962LogKey,
  Rfc6962Signature,
  TreeHead,
  VerifiedCheckpoint,
} from './checkpoint.js';
export {
  MAX_NOTE_BYTES,
  MAX_NOTE_SIGNATURES,
  formatSignedNote,
  isValidKeyName,
  noteKeyId,
  parseSignedNote,
} from './note.js';
export type { NoteSignature, SignedNote } from './note.js';
export { detectSplitView, verifySplitViewEvidence } from './split-view.js';
export type { SplitViewEvidence, VerifiedSplitView } from './split-view.js';
export { MAX_TILE_LEVEL, TILE_HEIGHT, TILE_WIDTH, formatTilePath, parseTilePath } from './tiles.js';
export type { TileCoordinate } from './tiles.js';
